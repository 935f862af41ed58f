// The trained agent model served by the node daemon over its real socket: held-out
// conversations driven turn by turn through gRPC, several sessions at once with their turns
// interleaved. Each session keeps its KV hot between turns, gets exactly the replies it gets
// when it runs alone, and the model does the agent's job through the daemon: it calls the
// right tool and recalls what the user said.
//
// Needs the trained model: AGENTRY_AGENT_MODEL=FILE (bench/agent-model passes the one it
// trains), else the one `make demo` trains (build/agent-model/model-q8_0.gguf); skips, saying
// so, when neither exists (training it takes 13 to 18 minutes, too long for the test suite).
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "agentry/node/v1/node.grpc.pb.h"
#include "train/corpus/triage_corpus.h"
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "nodeagent/server/node_service.h"
#include "runtime/prompt/agent_prompt.h"

namespace agentry::train {
namespace {

namespace pb = agentry::node::v1;

std::string AgentModel() {
  if (const char* given = std::getenv("AGENTRY_AGENT_MODEL")) return given;
  const std::string built = std::string(AGENTRY_SOURCE_DIR) + "/build/agent-model/model-q8_0.gguf";
  return std::filesystem::exists(built) ? built : "";
}

// One held-out conversation's turns as the daemon sees them: each call sends the messages
// that came since the last assistant message (the system prompt and the user's first words,
// then user messages or tool results), and the model's own replies stay in the session.
struct Turn {
  std::vector<engine::ChatMessage> send;
  Check check;  // what the assistant message after `send` should do
};
std::vector<Turn> Turns(const Conversation& conv) {
  std::vector<Turn> turns;
  turns.reserve(conv.checks.size());
  size_t from = 0;
  for (const Check& check : conv.checks) {
    Turn t;
    t.send.assign(conv.messages.begin() + static_cast<int64_t>(from),
                  conv.messages.begin() + static_cast<int64_t>(check.message));
    t.check = check;
    turns.push_back(t);
    from = check.message + 1;  // skip the ground-truth reply: the session has the model's own
  }
  return turns;
}

struct Reply {
  std::string text;
  int64_t prompt_tokens = 0;  // evaluated by this turn
  int64_t cached_tokens = 0;  // reused from the session's KV
  pb::FinishReason finish = pb::FINISH_REASON_UNSPECIFIED;
};

class AgentDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = AgentModel();
    if (model_.empty()) {
      GTEST_SKIP() << "no trained agent model: set AGENTRY_AGENT_MODEL=FILE, or run `make demo` "
                      "(it trains build/agent-model/model-q8_0.gguf)";
    }
    dir_ = ::testing::TempDir() + "/agent_daemon_test_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(models_.Add("triage", model_).ok());
    devices::Device cpu;
    cpu.id = "cpu";
    scheduler::SessionManagerOptions options;
    options.context_length = 1024;
    options.threads = 2;
    sessions_ = std::make_unique<scheduler::SessionManager>(
        &models_, std::vector<devices::Device>{cpu}, options, nullptr);
    socket_ = dir_ + "/node.sock";
    server_ = std::make_unique<server::NodeServer>(sessions_.get(), &models_,
                                                   server::NodeServerOptions{socket_});
    ASSERT_TRUE(server_->Start().ok());
    stub_ = pb::NodeAgent::NewStub(
        grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string Open(const std::string& id) {
    grpc::ClientContext ctx;
    pb::OpenSessionRequest req;
    req.set_agent("ns/triage");
    req.set_session_id(id);
    req.set_model("triage");
    req.mutable_sampling()->set_temperature(0.0f);
    pb::OpenSessionResponse resp;
    const grpc::Status s = stub_->OpenSession(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.session();
  }

  Reply Generate(const std::string& session, const std::vector<engine::ChatMessage>& send) {
    grpc::ClientContext ctx;
    pb::GenerateRequest req;
    req.set_session(session);
    for (const engine::ChatMessage& m : send) {
      pb::Message* pm = req.add_messages();
      pm->set_role(m.role);
      pm->set_content(m.content);
    }
    req.set_max_tokens(96);
    auto reader = stub_->Generate(&ctx, req);
    Reply reply;
    pb::GenerateResponse r;
    while (reader->Read(&r)) {
      reply.text += r.text();
      if (r.has_usage()) {
        reply.prompt_tokens = r.usage().prompt_tokens();
        reply.cached_tokens = r.usage().cached_tokens();
      }
      if (r.finish_reason() != pb::FINISH_REASON_UNSPECIFIED) reply.finish = r.finish_reason();
    }
    const grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return reply;
  }

  // Every turn of held-out conversation `index` through one session.
  std::vector<Reply> RunConversation(const std::string& session_id, uint64_t index) {
    const std::string session = Open(session_id);
    std::vector<Reply> replies;
    for (const Turn& t : Turns(GenerateConversation(1, Split::kHeldOut, index))) {
      replies.push_back(Generate(session, t.send));
    }
    return replies;
  }

  std::string model_, dir_, socket_;
  scheduler::ModelRegistry models_;
  std::unique_ptr<scheduler::SessionManager> sessions_;
  std::unique_ptr<server::NodeServer> server_;
  std::unique_ptr<pb::NodeAgent::Stub> stub_;
};

TEST_F(AgentDaemonTest, ConcurrentSessionsDoTheAgentsJobWithHotKv) {
  constexpr int kConversations = 16;
  std::vector<std::vector<Reply>> together(kConversations);
  {
    std::vector<std::thread> threads;
    threads.reserve(kConversations);
    for (int i = 0; i < kConversations; ++i) {
      threads.emplace_back([&, i] { together[i] = RunConversation("c" + std::to_string(i), i); });
    }
    for (std::thread& t : threads) t.join();
  }
  int tool_checks = 0, right_tool = 0, recall_checks = 0, recalled = 0;
  for (int i = 0; i < kConversations; ++i) {
    const std::vector<Turn> turns = Turns(GenerateConversation(1, Split::kHeldOut, i));
    ASSERT_EQ(together[i].size(), turns.size());
    // Alone, in a fresh session, the conversation gets the same replies, token for token.
    const std::vector<Reply> alone = RunConversation("alone" + std::to_string(i), i);
    for (size_t k = 0; k < turns.size(); ++k) {
      const Reply& r = together[i][k];
      SCOPED_TRACE("conversation " + std::to_string(i) + ", turn " + std::to_string(k) + ": " +
                   r.text);
      EXPECT_EQ(r.text, alone[k].text);
      EXPECT_EQ(r.finish, pb::FINISH_REASON_STOP);
      // Every turn after the first reuses the session's KV: at least all the input the
      // turns before it evaluated (only the last reply's tail may be evaluated again).
      if (k > 0) {
        const Reply& before = together[i][k - 1];
        EXPECT_GE(r.cached_tokens, before.cached_tokens + before.prompt_tokens);
      }
      const StatusOr<runtime::ToolCall> call = runtime::ParseToolCall(r.text);
      if (turns[k].check.kind == CheckKind::kToolCall) {
        ++tool_checks;
        right_tool += call.ok() && call->name == turns[k].check.tool ? 1 : 0;
      } else if (turns[k].check.kind == CheckKind::kRecall) {
        ++recall_checks;
        recalled += !call.ok() && r.text.find(turns[k].check.fact) != std::string::npos ? 1 : 0;
      }
    }
  }
  std::printf("through the daemon: right tool %d/%d, recalled %d/%d\n", right_tool, tool_checks,
              recalled, recall_checks);
  // The held-out figures (docs/agent-model.md) are 94.9 % and 82.9 % under teacher forcing;
  // here the model's own replies stay in the history, and few conversations make a noisy
  // rate, so the bar is lower: most, not all.
  ASSERT_GT(tool_checks, 0);
  ASSERT_GT(recall_checks, 0);
  EXPECT_GE(right_tool * 4, tool_checks * 3);
  EXPECT_GE(recalled * 2, recall_checks);
}

}  // namespace
}  // namespace agentry::train
