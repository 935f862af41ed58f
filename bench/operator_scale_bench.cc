// bench/operator_scale_bench.cc — 1,000 ManagedAgents against the fake API server
// (common/kube/testing): how long agentry-operator takes to reach steady state, how many API
// requests that costs per agent, the operator's resident memory, and that it then writes
// nothing. The operator runs as its own process (the binary users run), so its memory is
// its own; the fake API server runs in this one.
//
//   operator_scale_bench OPERATOR_BINARY [AGENTS]      (make bench passes the build's)
//
// Goals (issue 9): under 60 s to steady state, under 200 MiB resident, memory linear in
// the number of agents (printed at AGENTS/4 and AGENTS), zero writes at steady state.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/kube/testing/fake_api_server.h"

namespace {

using agentry::kube::testing::FakeApiServer;
using agentry::kube::testing::Verb;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

Json Agent(int i) {
  return {{"apiVersion", "agentry.dev/v1alpha1"},
          {"kind", "ManagedAgent"},
          {"metadata", {{"name", "agent-" + std::to_string(i)}, {"namespace", "team-a"}}},
          {"spec",
           {{"model", {{"name", "m"}, {"source", {{"pvc", "models"}, {"path", "m.gguf"}}}}},
            {"instructions", "You triage support tickets."},
            {"tools", Json::array({{{"name", "get_ticket"},
                                    {"parameters", {{"type", "object"}}},
                                    {"http", {{"url", "http://tickets.team-a.svc/api/{id}"}}}}})},
            {"egress", {{"allow", Json::array({{{"host", "tickets.team-a.svc"}}})}}},
            {"replicas", 1 + i % 2}}}};
}

int64_t RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// Agents whose status the operator wrote for their current generation.
int Observed(const FakeApiServer& api) {
  int n = 0;
  for (const Json& a : api.List("managedagents", "team-a")) {
    if (a.contains("status") && a["status"].value("observedGeneration", int64_t{-1}) ==
                                    a["metadata"].value("generation", int64_t{0})) {
      ++n;
    }
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: operator_scale_bench OPERATOR_BINARY [AGENTS]\n");
    return 2;
  }
  const std::string binary = argv[1];
  const int agents = argc > 2 ? std::atoi(argv[2]) : 1000;
  FakeApiServer api({.history_limit = 100000});
  if (!api.Start().ok()) return 1;
  (void)api.Put({{"apiVersion", "v1"},
                 {"kind", "PersistentVolumeClaim"},
                 {"metadata", {{"name", "models"}, {"namespace", "team-a"}}}});
  const std::string kubeconfig = "/tmp/operator_scale_bench." + std::to_string(getpid());
  std::ofstream(kubeconfig) << "current-context: c\ncontexts: [{name: c, context: {cluster: k, "
                               "namespace: agentry-system}}]\nclusters: [{name: k, cluster: "
                               "{server: \""
                            << api.base_url() << "\"}}]\n";
  const int quarter = agents / 4;
  for (int i = 0; i < quarter; ++i) (void)api.Put(Agent(i));

  const pid_t pid = fork();
  if (pid == 0) {
    // Without leader election: a leader renews its Lease (a GET and a PUT every 2 s), which
    // would hide whether reconciling itself has gone quiet.
    execl(binary.c_str(), binary.c_str(), "--kubeconfig", kubeconfig.c_str(), "--metrics-port", "0",
          "--workers", "4", "--no-leader-elect", static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto wait_for = [&](int n, Clock::time_point since) {
    while (Observed(api) < n) {
      if (Clock::now() - since > std::chrono::minutes(5)) return -1.0;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // Settled: nothing written for a second.
    for (uint64_t writes = api.writes();;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      if (api.writes() == writes) break;
      writes = api.writes();
    }
    return std::chrono::duration<double>(Clock::now() - since).count();
  };
  const auto t0 = Clock::now();
  const double first = wait_for(quarter, t0);
  const int64_t rss_quarter = RssKiB(pid);

  api.ResetCounts();
  const auto t1 = Clock::now();
  for (int i = quarter; i < agents; ++i) (void)api.Put(Agent(i));
  const double rest = wait_for(agents, t1);
  const uint64_t requests =
      api.count(Verb::kGet) + api.count(Verb::kList) + api.count(Verb::kWatch) + api.writes();
  const uint64_t writes = api.writes();
  const int64_t rss_all = RssKiB(pid);

  api.ResetCounts();
  std::this_thread::sleep_for(std::chrono::seconds(5));
  const uint64_t idle_writes = api.writes();
  const uint64_t idle_requests = idle_writes + api.count(Verb::kGet) + api.count(Verb::kList);
  if (std::getenv("OPERATOR_BENCH_VERBOSE") != nullptr) {
    for (const auto& [name, verb] : {std::pair{"get", Verb::kGet},
                                     {"list", Verb::kList},
                                     {"watch", Verb::kWatch},
                                     {"create", Verb::kCreate},
                                     {"update", Verb::kUpdate},
                                     {"patch", Verb::kPatch},
                                     {"delete", Verb::kDelete}}) {
      std::fprintf(stderr, "idle %s: %llu\n", name,
                   static_cast<unsigned long long>(api.count(verb)));
    }
  }

  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  std::remove(kubeconfig.c_str());
  const int added = agents - quarter;
  std::printf("\n| measure | value | goal |\n|---|---|---|\n");
  std::printf("| %d agents from an empty operator to steady state | %.1f s | |\n", quarter, first);
  std::printf("| %d more agents to steady state | %.1f s | < 60 s for 1000 |\n", added, rest);
  std::printf("| API requests per added agent (gets, lists, watches, writes) | %.1f | |\n",
              static_cast<double>(requests) / added);
  std::printf("| writes per added agent | %.1f | |\n", static_cast<double>(writes) / added);
  std::printf("| operator resident memory, %d agents | %.1f MiB | |\n", quarter,
              static_cast<double>(rss_quarter) / 1024);
  std::printf("| operator resident memory, %d agents | %.1f MiB | < 200 MiB |\n", agents,
              static_cast<double>(rss_all) / 1024);
  std::printf("| writes (other requests) in 5 s at steady state | %llu (%llu) | 0 |\n",
              static_cast<unsigned long long>(idle_writes),
              static_cast<unsigned long long>(idle_requests - idle_writes));
  return first < 0 || rest < 0 ? 1 : 0;
}
