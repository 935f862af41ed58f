#include "cli/up.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <cpprest/http_client.h>

#include "common/config/agent_spec.h"
#include "common/file.h"
#include "common/stop_signals.h"

namespace agentry::cli {
namespace {

namespace fs = std::filesystem;

struct Child {
  std::string name;
  pid_t pid = -1;
};

// Starts `agentry ARGS...` (this same binary) with its output going to `log`.
Child Spawn(const std::string& name, const std::vector<std::string>& args, const std::string& log) {
  Child child{name, fork()};
  if (child.pid == 0) {
    // The children take Ctrl-C from this process, not from the terminal: a clean stop goes
    // node daemon last, after the runtime has stopped using it. If this process dies without
    // stopping them (killed), they get SIGTERM rather than living on as orphans.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) _exit(1);  // the parent died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    std::string self = "agentry";
    argv.push_back(self.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  return child;
}

bool Alive(const Child& c) { return c.pid > 0 && waitpid(c.pid, nullptr, WNOHANG) == 0; }

// SIGTERM, then up to `grace` for it to exit, then SIGKILL. True when it exited by itself.
bool Stop(Child* c, std::chrono::seconds grace) {
  if (c->pid <= 0) return true;
  kill(c->pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
      c->pid = -1;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(c->pid, SIGKILL);
  waitpid(c->pid, &status, 0);
  c->pid = -1;
  return false;
}

bool RuntimeReady(const std::string& url) {
  try {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(2));
    web::http::client::http_client client(url, config);
    return client.request(web::http::methods::GET, "/readyz").get().status_code() == 200;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

int RunUp(const UpOptions& options) {
  StatusOr<std::string> text = ReadFileToString(options.manifest);
  if (!text.ok()) {
    std::fprintf(stderr, "agentry up: %s\n", text.status().message().c_str());
    return 2;
  }
  StatusOr<config::ManagedAgent> agent = config::ParseManagedAgent(*text, options.manifest);
  if (!agent.ok()) {
    std::fprintf(stderr, "agentry up: %s\n", agent.status().message().c_str());
    return 2;
  }
  if (options.port == 0) {
    std::fprintf(stderr, "agentry up: --port: a port number (0 would hide where the API is)\n");
    return 2;
  }
  std::string model_file = options.model_file;
  if (model_file.empty()) {
    model_file = agent->spec.model.source.file;
    // A relative path in the manifest is relative to the manifest.
    if (!model_file.empty() && fs::path(model_file).is_relative()) {
      model_file = (fs::path(options.manifest).parent_path() / model_file).string();
    }
  }
  if (model_file.empty()) {
    std::fprintf(stderr,
                 "agentry up: %s: spec.model.source names no local file (a cluster's pvc is not "
                 "reachable here); give one with --model-file\n",
                 options.manifest.c_str());
    return 2;
  }
  if (!fs::exists(model_file)) {
    std::fprintf(stderr, "agentry up: model file %s does not exist\n", model_file.c_str());
    return 2;
  }
  const std::string dir = options.dir.empty() ? ".agentry/" + agent->metadata.name : options.dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "agentry up: %s: %s\n", dir.c_str(), ec.message().c_str());
    return 2;
  }
  // This process waits for Ctrl-C with sigwait; the children unblock them for themselves.
  StopSignals stop({SIGCHLD});

  const std::string model = agent->spec.model.name;
  const std::string node_socket = dir + "/node.sock";
  const std::string state_socket = dir + "/state.sock";
  const std::string port = std::to_string(options.port);
  Child node =
      Spawn("node daemon",
            {"nodeagent", "--model", model + "=" + model_file, "--socket", node_socket, "--context",
             std::to_string(agent->spec.model.context_length), "--metrics-port", "0"},
            dir + "/nodeagent.log");
  Child state =
      Spawn("state sidecar",
            {"state", "--dir", dir + "/state", "--socket", state_socket, "--metrics-port", "0"},
            dir + "/state.log");
  Child runtime = Spawn("runtime",
                        {"runtime", "-c", options.manifest, "--host", options.host, "--port", port,
                         "--state-socket", state_socket, "--node-socket", node_socket,
                         "--max-tokens", std::to_string(options.max_tokens)},
                        dir + "/runtime.log");
  std::vector<Child*> children = {&runtime, &state, &node};  // stop order
  // Where the API is, for `agentry chat NAME`: written once it is ready, removed at the stop.
  const std::string endpoint = dir + "/endpoint";
  fs::remove(endpoint, ec);  // one left by an `up` that was killed
  const auto stop_all = [&] {
    fs::remove(endpoint, ec);
    bool clean = true;
    for (Child* c : children) clean = Stop(c, std::chrono::seconds(15)) && clean;
    return clean;
  };

  const std::string url = "http://" + options.host + ":" + port;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!(fs::exists(node_socket) && RuntimeReady(url))) {
    for (Child* c : children) {
      if (!Alive(*c)) {
        std::fprintf(stderr, "agentry up: the %s did not start; see %s\n", c->name.c_str(),
                     dir.c_str());
        c->pid = -1;
        stop_all();
        return 1;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "agentry up: not ready after 120 s; see the logs in %s\n", dir.c_str());
      stop_all();
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  {
    const std::string partial = endpoint + ".partial";
    std::ofstream(partial) << url << "\n";
    fs::rename(partial, endpoint, ec);
  }
  std::printf(
      "agentry up: %s/%s is serving at %s\n"
      "  chat:      agentry chat %s\n"
      "  sessions:  POST %s/v1/sessions, then POST %s/v1/sessions/{id}/messages\n"
      "  OpenAI:    POST %s/v1/chat/completions\n"
      "  logs and state: %s   (Ctrl-C stops everything)\n",
      agent->metadata.namespace_name.c_str(), agent->metadata.name.c_str(), url.c_str(),
      options.dir.empty() ? agent->metadata.name.c_str() : ("--dir " + dir).c_str(), url.c_str(),
      url.c_str(), url.c_str(), dir.c_str());
  std::fflush(stdout);

  int signal = 0;
  while (true) {
    signal = stop.Wait();
    if (signal != SIGCHLD) break;
    for (Child* c : children) {
      if (!Alive(*c)) {
        std::fprintf(stderr, "agentry up: the %s stopped; stopping the rest (logs in %s)\n",
                     c->name.c_str(), dir.c_str());
        c->pid = -1;
        stop_all();
        return 1;
      }
    }
  }
  std::printf("agentry up: stopping\n");
  return stop_all() ? 0 : 1;
}

}  // namespace agentry::cli
