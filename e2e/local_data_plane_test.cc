// The local data plane end to end, as separate processes of the `agentry` binary on a
// generated test model: `agentry up` serving two turns and stopping on Ctrl-C, and each of
// the three processes killed with SIGKILL in the middle of a turn, restarted, with nothing
// acknowledged lost and the session going on.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <cpprest/http_client.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "common/testing/child_process.h"
#include "common/testing/free_port.h"
#include "common/testing/run_command.h"
#include "nodeagent/engine/test_model.h"

namespace agentry {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::FreePort;
using testing::RunCommand;

// One `agentry ARGS...` process, output to `log`; SIGKILLed when dropped.
class Process : public testing::ChildProcess {
 public:
  Process(const std::vector<std::string>& args, const std::string& log,
          const std::function<void()>& before_exec = nullptr)
      : ChildProcess(AGENTRY_BINARY, args, log, before_exec) {}
};

struct Reply {
  int status = 0;
  Json json;
  std::string body;
};

Reply Post(const std::string& url, const std::string& path, const Json& body) {
  try {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(60));
    web::http::client::http_client client(url, config);
    web::http::http_response r =
        client.request(web::http::methods::POST, path, body.dump(), "application/json").get();
    Reply out{r.status_code(), nullptr, r.extract_utf8string(true).get()};
    out.json = Json::parse(out.body, nullptr, /*allow_exceptions=*/false);
    return out;
  } catch (const std::exception& e) {
    return {0, nullptr, e.what()};
  }
}

Json Get(const std::string& url, const std::string& path) {
  try {
    web::http::client::http_client client(url);
    return Json::parse(
        client.request(web::http::methods::GET, path).get().extract_utf8string(true).get(), nullptr,
        false);
  } catch (const std::exception&) {
    return nullptr;
  }
}

bool Ready(const std::string& url) {
  try {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(2));
    web::http::client::http_client client(url, config);
    return client.request(web::http::methods::GET, "/readyz").get().status_code() == 200;
  } catch (const std::exception&) {
    return false;
  }
}

class LocalDataPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/age2e-" + std::to_string(getpid());
    fs::create_directories(dir_);
    engine::TestModelSpec spec;
    // Large enough that a long reply takes a second or more: the kills below land mid-turn.
    spec.dim = 256;
    spec.layers = 4;
    spec.heads = 8;
    spec.kv_heads = 4;
    spec.ctx = 16384;
    spec.seed = 5;
    spec.chat_template = "chatml";
    StatusOr<std::string> bytes = engine::BuildTestModel(spec);
    ASSERT_TRUE(bytes.ok());
    std::ofstream(dir_ + "/model.gguf", std::ios::binary) << *bytes;
    std::ofstream(dir_ + "/agent.yaml") << R"(apiVersion: agentry.dev/v1alpha1
kind: ManagedAgent
metadata: {name: helper, namespace: e2e}
spec:
  model:
    name: tiny
    source: {file: model.gguf}
    contextLength: 16384
  instructions: You help.
)";
    port_ = FreePort();
    url_ = "http://127.0.0.1:" + std::to_string(port_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The three processes as a pod runs them, started one by one.
  std::unique_ptr<Process> StartNode() const {
    return std::make_unique<Process>(
        std::vector<std::string>{"nodeagent", "--model", "tiny=" + dir_ + "/model.gguf", "--socket",
                                 node_socket(), "--metrics-port", "0", "-t", "1"},
        dir_ + "/node.log");
  }
  // `file_size_limit`: a full volume as far as the sidecar can tell (writes past it fail
  // EFBIG; SIGXFSZ ignored, as it stays across exec).
  std::unique_ptr<Process> StartState(rlim_t file_size_limit = RLIM_INFINITY) const {
    return std::make_unique<Process>(
        std::vector<std::string>{"state", "--dir", dir_ + "/state", "--socket", state_socket(),
                                 "--metrics-port", "0"},
        dir_ + "/state.log", [file_size_limit] {
          if (file_size_limit == RLIM_INFINITY) return;
          signal(SIGXFSZ, SIG_IGN);
          const rlimit limit{file_size_limit, file_size_limit};
          setrlimit(RLIMIT_FSIZE, &limit);
        });
  }
  std::unique_ptr<Process> StartRuntime(int max_tokens = 2000) const {
    return std::make_unique<Process>(
        std::vector<std::string>{"runtime", "-c", dir_ + "/agent.yaml", "--port",
                                 std::to_string(port_), "--state-socket", state_socket(),
                                 "--node-socket", node_socket(), "--max-tokens",
                                 std::to_string(max_tokens)},
        dir_ + "/runtime.log");
  }
  bool WaitReady() const {
    for (int i = 0; i < 600; ++i) {
      if (fs::exists(node_socket()) && Ready(url_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string node_socket() const { return dir_ + "/node.sock"; }
  std::string state_socket() const { return dir_ + "/state.sock"; }

  std::string dir_;
  uint16_t port_ = 0;
  std::string url_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Polls `done` every 20 ms for up to `seconds`.
bool WaitFor(const std::function<bool()>& done, int seconds = 60) {
  for (int i = 0; i < seconds * 50; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// `agentry up`, talked to with `agentry chat` (found by its endpoint file) and over HTTP.
TEST_F(LocalDataPlaneTest, AgentryUpServesTurnsAndStopsEverythingOnCtrlC) {
  Process up({"up", "-f", dir_ + "/agent.yaml", "--dir", dir_ + "/up", "--port",
              std::to_string(port_), "--max-tokens", "8"},
             dir_ + "/up.out");
  ASSERT_TRUE(WaitFor([&] {
    return ReadAll(dir_ + "/up.out").find("is serving at " + url_) != std::string::npos;
  }));
  // The chat client finds the runtime from the endpoint file; two turns, the second on the
  // first's KV.
  const auto [chat_exit, chat] =
      RunCommand("printf 'My name is Dana.\\nWhat is my name?\\n' | " +
                 std::string(AGENTRY_BINARY) + " chat --dir " + dir_ + "/up --stats --session c1");
  EXPECT_EQ(chat_exit, 0) << chat;
  EXPECT_NE(chat.find("e2e/helper at " + url_ + ", session c1 (new)"), std::string::npos) << chat;
  EXPECT_NE(chat.find("you> My name is Dana.\nhelper> "), std::string::npos) << chat;
  EXPECT_NE(chat.find("you> What is my name?\nhelper> "), std::string::npos) << chat;
  // The second turn's stats line: "[N prompt tokens prefilled, M reused from ...".
  std::vector<int> reused;
  for (size_t at = chat.find(" prefilled, "); at != std::string::npos;
       at = chat.find(" prefilled, ", at + 1)) {
    reused.push_back(static_cast<int>(std::strtol(chat.c_str() + at + 12, nullptr, 10)));
  }
  ASSERT_EQ(reused.size(), 2U) << chat;
  EXPECT_EQ(reused[0], 0) << chat;
  EXPECT_GT(reused[1], 0) << "turn 2 should reuse turn 1's KV:\n" << chat;
  // Resuming the session sees its history.
  const auto [again_exit, again] = RunCommand("printf '' | " + std::string(AGENTRY_BINARY) +
                                              " chat --dir " + dir_ + "/up --session c1");
  EXPECT_NE(again.find("session c1 (4 earlier messages)"), std::string::npos) << again;
  ASSERT_EQ(Post(url_, "/v1/sessions", {{"id", "s"}}).status, 201);
  const Reply first = Post(url_, "/v1/sessions/s/messages", {{"content", "My name is Dana."}});
  ASSERT_EQ(first.status, 200) << first.body;
  const Reply second = Post(url_, "/v1/sessions/s/messages", {{"content", "What is my name?"}});
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_GT(second.json["usage"]["cached_tokens"].get<int>(), 0);  // turn 2 on turn 1's KV
  EXPECT_EQ(up.Signal(SIGINT), 0);
  // Everything stopped: the sockets and the endpoint file are gone and nothing answers.
  EXPECT_FALSE(fs::exists(dir_ + "/up/node.sock"));
  EXPECT_FALSE(fs::exists(dir_ + "/up/state.sock"));
  EXPECT_FALSE(fs::exists(dir_ + "/up/endpoint"));
  EXPECT_FALSE(Ready(url_));
  const auto [gone_exit, gone] =
      RunCommand(std::string(AGENTRY_BINARY) + " chat --dir " + dir_ + "/up < /dev/null");
  EXPECT_EQ(gone_exit, 1) << gone;
  EXPECT_NE(gone.find("is `agentry up` running for this agent?"), std::string::npos) << gone;

  // Started again: the runtime snapshotted the sessions when it stopped, so the new node
  // daemon restores session c1 and prefills only the new message.
  Process again_up({"up", "-f", dir_ + "/agent.yaml", "--dir", dir_ + "/up", "--port",
                    std::to_string(port_), "--max-tokens", "8"},
                   dir_ + "/up.out");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ + "/up/endpoint"); }));
  const auto [resumed_exit, resumed] =
      RunCommand("printf 'And now?\\n' | " + std::string(AGENTRY_BINARY) + " chat --dir " + dir_ +
                 "/up --stats --session c1");
  EXPECT_EQ(resumed_exit, 0) << resumed;
  EXPECT_NE(resumed.find("; restored from a snapshot]"), std::string::npos) << resumed;

  // The audit chain holds every step and verifies; edited on the volume, it names the record.
  const std::string audit = std::string(AGENTRY_BINARY) + " audit verify --dir " + dir_ + "/up";
  const auto [verified_exit, verified] = RunCommand(audit);
  EXPECT_EQ(verified_exit, 0) << verified;
  EXPECT_NE(verified.find("audit chain verified: "), std::string::npos) << verified;
  const auto [list_exit, listed] =
      RunCommand(std::string(AGENTRY_BINARY) + " audit list --dir " + dir_ + "/up --session c1");
  EXPECT_EQ(list_exit, 0) << listed;
  EXPECT_EQ(Count(listed, "\"action\":\"model.call\""), 3U) << listed;  // three turns of c1
  EXPECT_EQ(again_up.Signal(SIGINT), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/up/state/state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE audit SET actor = 'user:mallory' WHERE seq = 2", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Process third_up({"up", "-f", dir_ + "/agent.yaml", "--dir", dir_ + "/up", "--port",
                    std::to_string(port_), "--max-tokens", "8"},
                   dir_ + "/up.out");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ + "/up/endpoint"); }));
  const auto [broken_exit, broken] = RunCommand(audit);
  EXPECT_EQ(broken_exit, 1) << broken;
  EXPECT_NE(broken.find("audit chain BROKEN at record 2"), std::string::npos) << broken;
  EXPECT_EQ(third_up.Signal(SIGINT), 0);
}

// Ctrl-C in `agentry chat` while a reply streams stops that reply (kept, marked [stopped]) and
// the chat goes on; Ctrl-C at the prompt ends it (exit 130).
TEST_F(LocalDataPlaneTest, CtrlCInChatStopsTheReplyAndTheChatGoesOn) {
  Process up({"up", "-f", dir_ + "/agent.yaml", "--dir", dir_ + "/up", "--port",
              std::to_string(port_), "--max-tokens", "100000"},
             dir_ + "/up.out");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(dir_ + "/up/endpoint"); }));
  int to_chat[2];
  ASSERT_EQ(pipe(to_chat), 0);
  const std::string out = dir_ + "/chat.out";
  testing::ChildProcess chat(AGENTRY_BINARY, {"chat", "--dir", dir_ + "/up", "--session", "c"}, out,
                             [&] {
                               dup2(to_chat[0], 0);
                               close(to_chat[1]);
                             });
  close(to_chat[0]);
  const auto say = [&](const std::string& line) {
    const std::string text = line + "\n";
    return write(to_chat[1], text.data(), text.size()) == static_cast<ssize_t>(text.size());
  };
  // A random model may end a reply after a few tokens, before the signal lands; then the
  // signal finds the prompt and ends the chat, which is the other half of this test.
  bool stopped = false;
  int code = 0;
  for (int attempt = 0; attempt < 5 && !stopped; ++attempt) {
    ASSERT_TRUE(say("Tell me a long story, part " + std::to_string(attempt) + "."));
    // Wait until the reply is streaming (some text after this turn's "helper> ").
    ASSERT_TRUE(WaitFor([&] {
      const std::string text = ReadAll(out);
      return Count(text, "helper> ") == static_cast<size_t>(attempt + 1) &&
             text.size() - text.rfind("helper> ") > 40;
    })) << ReadAll(out);
    chat.Send(SIGINT);
    ASSERT_TRUE(WaitFor(
        [&] { return ReadAll(out).find("[stopped]") != std::string::npos || chat.Ended(&code); }));
    stopped = ReadAll(out).find("[stopped]") != std::string::npos;
    if (!stopped) {
      EXPECT_EQ(code, 130) << ReadAll(out);
      GTEST_SKIP() << "every reply ended before Ctrl-C reached it; the prompt's Ctrl-C ended the "
                      "chat with 130";
    }
  }
  ASSERT_TRUE(stopped) << ReadAll(out);
  // The session goes on: the next message is answered, and the stopped reply is in the
  // transcript.
  ASSERT_TRUE(say("/session"));
  ASSERT_TRUE(WaitFor([&] { return ReadAll(out).find("session c\n") != std::string::npos; }));
  const Json session = Get(url_, "/v1/sessions/c");
  EXPECT_EQ(session["state"], "active");
  EXPECT_EQ(session["turn_running"], false);
  EXPECT_EQ(session["transcript"].size() % 2, 0U) << session.dump();
  // Ctrl-C at the prompt ends the chat.
  chat.Send(SIGINT);
  ASSERT_TRUE(WaitFor([&] { return chat.Ended(&code); }, 10));
  EXPECT_EQ(code, 130) << ReadAll(out);
  close(to_chat[1]);
}

TEST_F(LocalDataPlaneTest, EachProcessKilledMidTurnLosesNothingAcknowledgedAndTheSessionGoesOn) {
  auto node = StartNode();
  auto state = StartState();
  auto runtime = StartRuntime();
  ASSERT_TRUE(WaitReady());
  ASSERT_EQ(Post(url_, "/v1/sessions", {{"id", "s"}}).status, 201);

  std::vector<std::string> acknowledged;  // replies the client received
  const auto turn = [&](const std::string& text) {
    Reply r = Post(url_, "/v1/sessions/s/messages", {{"content", text}});
    if (r.status == 200) acknowledged.push_back(r.json["content"].get<std::string>());
    return r;
  };
  ASSERT_EQ(turn("Hello.").status, 200);

  // Each process in turn: a long turn starts, and once it is running the process is killed
  // and restarted. A killed runtime drops the client's connection; a killed node daemon
  // fails the turn (503) unless the reply was already complete (a random model may end its
  // reply after a token or two: then another long turn is tried); a killed state sidecar is
  // retried through, and the turn completes.
  for (const std::string victim : {"runtime", "state", "node"}) {
    const int expected_status = victim == "runtime" ? 0 : victim == "node" ? 503 : 200;
    Reply interrupted;
    for (int attempt = 0; attempt < 6; ++attempt) {
      std::thread long_turn([&] {
        interrupted = turn("Tell me everything about the " + victim + ", part " +
                           std::to_string(attempt) + ".");
      });
      bool running = false;
      for (int i = 0; i < 500 && !running; ++i) {
        const Json s = Get(url_, "/v1/sessions/s");
        running = s.is_object() && s["turn_running"] == true;
        if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (victim == "runtime") {
        runtime->Signal(SIGKILL);
        runtime = StartRuntime();
      } else if (victim == "state") {
        state->Signal(SIGKILL);
        state = StartState();
      } else {
        node->Signal(SIGKILL);
        node = StartNode();
      }
      long_turn.join();
      ASSERT_TRUE(WaitReady()) << victim;
      if (interrupted.status == expected_status) break;
    }
    EXPECT_EQ(interrupted.status, expected_status) << victim << ": " << interrupted.body;
    // The session goes on.
    Reply next;
    for (int attempt = 0; attempt < 50; ++attempt) {
      next = turn("Still there after the " + victim + " restarted?");
      if (next.status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_EQ(next.status, 200) << victim << ": " << next.body;
  }

  // Every acknowledged reply is in the transcript, in order, once.
  const Json session = Get(url_, "/v1/sessions/s");
  ASSERT_TRUE(session.is_object());
  std::vector<std::string> replies;
  for (const Json& e : session["transcript"]) {
    if (e["role"] == "assistant") replies.push_back(e["content"].get<std::string>());
  }
  size_t found = 0;
  for (const std::string& r : replies) {
    if (found < acknowledged.size() && r == acknowledged[found]) ++found;
  }
  EXPECT_EQ(found, acknowledged.size()) << session.dump(1);
  EXPECT_GE(acknowledged.size(), 4U);
}

// The state volume fills up under the runtime: the turn that cannot be stored is answered 507
// with the sidecar's reason, every turn acknowledged before is in the transcript, and once
// space is back (the sidecar restarted without the limit) the session goes on.
TEST_F(LocalDataPlaneTest, AFullStateVolumeIs507AndLosesNothingAcknowledged) {
  auto node = StartNode();
  auto state = StartState(/*file_size_limit=*/256 << 10);
  auto runtime = StartRuntime(/*max_tokens=*/4);
  ASSERT_TRUE(WaitReady());
  ASSERT_EQ(Post(url_, "/v1/sessions", {{"id", "s"}}).status, 201);
  std::vector<std::pair<std::string, std::string>> acknowledged;  // message, reply
  Reply refused;
  for (int i = 0; i < 100; ++i) {
    const std::string message = "part " + std::to_string(i) + " " + std::string(4 << 10, 'x');
    Reply r = Post(url_, "/v1/sessions/s/messages", {{"content", message}});
    if (r.status != 200) {
      refused = r;
      break;
    }
    acknowledged.emplace_back(message, r.json["content"].get<std::string>());
  }
  ASSERT_FALSE(acknowledged.empty()) << refused.body;
  ASSERT_EQ(refused.status, 507) << refused.body;
  EXPECT_EQ(refused.json["error"]["code"], "RESOURCE_EXHAUSTED");
  EXPECT_NE(refused.body.find("the state volume is full"), std::string::npos) << refused.body;
  // Every acknowledged turn is there, in order, once.
  const auto check_transcript = [&] {
    const Json session = Get(url_, "/v1/sessions/s");
    const Json& events = session["transcript"];
    size_t at = 0;
    for (const auto& [message, reply] : acknowledged) {
      while (at < events.size() && events[at]["content"] != message) ++at;
      ASSERT_LT(at + 1, events.size()) << "lost: " << message.substr(0, 8);
      EXPECT_EQ(events[at + 1]["role"], "assistant");
      EXPECT_EQ(events[at + 1]["content"], reply);
      ++at;
    }
  };
  check_transcript();
  // Space is back: the same session takes its next turn.
  state = StartState();
  const Reply next = Post(url_, "/v1/sessions/s/messages", {{"content", "Still there?"}});
  EXPECT_EQ(next.status, 200) << next.body;
  check_transcript();
}

}  // namespace
}  // namespace agentry
