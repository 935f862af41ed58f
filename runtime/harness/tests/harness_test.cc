// The turn loop against a real node daemon (gRPC on a unix socket, a generated test model)
// and a real state sidecar (SQLite in a temporary directory): the transcript is durable
// before a reply returns, turn N+1 prefills only what is new, a runtime restart keeps the KV
// hot, a daemon that lost the session is rebuilt from the transcript, a prompt too long for
// the context is shortened with a marker, and an unknown session is refused.
#include "runtime/harness/harness.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/harness/tests/data_plane.h"

namespace agentry::harness {
namespace {

class HarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(plane_.Start(), "");
    StartRuntime();
  }

  // A runtime process's objects; called again, it is a restarted runtime.
  void StartRuntime(const std::string& instructions = "You are the triage agent of team A.") {
    state_client_ = std::make_unique<StateClient>(plane_.state_target());
    node_client_ = std::make_unique<NodeClient>(plane_.node_target());
    harness_ = std::make_unique<Harness>(HarnessOptions{.agent = "team-a/triage",
                                                        .model = "tiny",
                                                        .system_prompt = instructions,
                                                        .max_tokens = 8},
                                         state_client_.get(), node_client_.get());
  }

  TurnReply Turn(const std::string& session, const std::string& text,
                 std::string* streamed = nullptr) {
    std::string seen;
    StatusOr<TurnReply> r = harness_->Turn(session, text, [&](const std::string& piece) {
      seen += piece;
      return true;
    });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (streamed != nullptr) *streamed = seen;
    return r.ok() ? *r : TurnReply{};
  }

  // As if the node daemon restarted: it no longer has the session.
  void ForgetNodeSession(const std::string& id) {
    node::v1::OpenSessionRequest open;
    open.set_agent("team-a/triage");
    open.set_session_id(id);
    open.set_model("tiny");
    StatusOr<node::v1::OpenSessionResponse> handle = node_client_->OpenSession(open);
    ASSERT_TRUE(handle.ok());
    ASSERT_TRUE(node_client_->CloseSession(handle->session()).ok());
  }

  std::vector<state::v1::Event> Transcript(const std::string& session) {
    StatusOr<std::vector<state::v1::Event>> t = state_client_->ReadTranscript(session);
    EXPECT_TRUE(t.ok());
    return t.ok() ? *t : std::vector<state::v1::Event>{};
  }

  LocalDataPlane plane_;
  std::unique_ptr<StateClient> state_client_;
  std::unique_ptr<NodeClient> node_client_;
  std::unique_ptr<Harness> harness_;
};

TEST_F(HarnessTest, TurnsAreDurableAndTheSecondPrefillsOnlyWhatIsNew) {
  ASSERT_TRUE(harness_->OpenSession("s1", "alice").ok());
  std::string streamed;
  const TurnReply first = Turn("s1", "Is the staging cluster up?", &streamed);
  EXPECT_FALSE(first.rebuilt);  // nothing earlier to rebuild
  EXPECT_EQ(first.user_seq, 1);
  EXPECT_EQ(first.reply_seq, 2);
  EXPECT_EQ(streamed, first.text);
  EXPECT_GT(first.generated_tokens, 0);
  const TurnReply second = Turn("s1", "And production?");
  EXPECT_FALSE(second.rebuilt);
  EXPECT_EQ(second.user_seq, 3);
  // Hot KV: the history is not prefilled again.
  EXPECT_GT(second.cached_tokens, first.prompt_tokens);
  EXPECT_LT(second.prompt_tokens, first.prompt_tokens);

  const std::vector<state::v1::Event> t = Transcript("s1");
  ASSERT_EQ(t.size(), 4U);
  EXPECT_EQ(t[0].kind(), "user");
  EXPECT_EQ(t[0].content(), "Is the staging cluster up?");
  EXPECT_EQ(t[1].kind(), "assistant");
  EXPECT_EQ(t[1].content(), first.text);
  EXPECT_EQ(t[3].content(), second.text);
  state::v1::GetUsageRequest usage;
  usage.set_session_id("s1");
  StatusOr<state::v1::Usage> u = state_client_->GetUsage(usage);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->counters().at("turns"), 2);
  EXPECT_EQ(u->counters().at("prompt_tokens"), first.prompt_tokens + second.prompt_tokens);
}

TEST_F(HarnessTest, ARestartedRuntimeFindsTheSessionHot) {
  ASSERT_TRUE(harness_->OpenSession("s1", "alice").ok());
  Turn("s1", "Hello.");
  StartRuntime();
  const TurnReply next = Turn("s1", "Still there?");
  EXPECT_FALSE(next.rebuilt);
  EXPECT_GT(next.cached_tokens, 0);
}

TEST_F(HarnessTest, ASessionTheDaemonLostIsRebuiltFromTheTranscript) {
  ASSERT_TRUE(harness_->OpenSession("s1", "alice").ok());
  Turn("s1", "Remember the word falcon.");
  // The daemon restarted (or dropped the session): it no longer has it.
  ForgetNodeSession("s1");
  const TurnReply next = Turn("s1", "Which word?");
  EXPECT_TRUE(next.rebuilt);
  EXPECT_EQ(next.cached_tokens, 0);
  EXPECT_EQ(next.omitted_messages, 0);
  // The rebuilt prompt holds the whole conversation: more than the new message alone.
  EXPECT_GT(next.prompt_tokens, 20);
  EXPECT_EQ(Transcript("s1").size(), 4U);
}

TEST_F(HarnessTest, APromptTooLongForTheContextKeepsTheNewestMessagesAndSaysSo) {
  ASSERT_TRUE(harness_->OpenSession("s1", "alice").ok());
  // Each turn's message is long; after a few, the whole conversation exceeds 256 tokens.
  std::string long_text;
  for (int i = 0; i < 6; ++i) long_text += "word" + std::to_string(i) + " ";
  int64_t omitted_on_the_way = 0;
  for (int turn = 0; turn < 6; ++turn) omitted_on_the_way += Turn("s1", long_text).omitted_messages;
  // The hot context filled up on the way: that turn was rebuilt, shortened.
  EXPECT_GT(omitted_on_the_way, 0);
  // Force a rebuild: the daemon forgets the session.
  ForgetNodeSession("s1");
  const TurnReply next = Turn("s1", long_text);
  EXPECT_TRUE(next.rebuilt);
  EXPECT_GT(next.omitted_messages, 0);
  EXPECT_EQ(Transcript("s1").size(), 14U);  // nothing is dropped from the transcript itself
}

// A turn that failed leaves its user message in the transcript with no reply. The next
// prompt leaves it out: here it alone is longer than the context, so reading it again would
// cut the conversation down to the newest message.
TEST_F(HarnessTest, AFailedTurnsMessageIsLeftOutOfLaterPrompts) {
  ASSERT_TRUE(harness_->OpenSession("s1", "alice").ok());
  const TurnReply first = Turn("s1", "Remember the word falcon.");
  std::string too_long;
  for (int i = 0; i < 200; ++i) too_long += "word" + std::to_string(i) + " ";
  StatusOr<TurnReply> failed =
      harness_->Turn("s1", too_long, [](const std::string&) { return true; });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kOutOfRange) << failed.status().ToString();
  const TurnReply next = Turn("s1", "Which word?");
  EXPECT_TRUE(next.rebuilt);
  EXPECT_EQ(next.omitted_messages, 0);
  // The first turn and its reply are in the prompt (the failed message could not have fit).
  EXPECT_GT(next.prompt_tokens, first.prompt_tokens);
  const std::vector<state::v1::Event> t = Transcript("s1");
  ASSERT_EQ(t.size(), 5U);  // the failed message stays in the transcript
  EXPECT_EQ(t[2].kind(), "user");
  EXPECT_EQ(t[2].content(), too_long);
  EXPECT_EQ(t[4].kind(), "assistant");
}

// A turn its caller stops (DELETE, cancel, a client that hung up) keeps the partial reply
// and still counts the tokens it used; the session goes on hot.
TEST_F(HarnessTest, AStoppedTurnKeepsItsPartialReplyAndCountsItsTokens) {
  ASSERT_TRUE(harness_->OpenSession("s1", "alice").ok());
  int pieces = 0;
  StatusOr<TurnReply> stopped =
      harness_->Turn("s1", "Tell me everything.", [&](const std::string&) { return ++pieces < 2; });
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  ASSERT_EQ(stopped->finish_reason, nodepb::FINISH_REASON_CANCELLED);
  EXPECT_GT(stopped->prompt_tokens, 0);
  EXPECT_GE(stopped->generated_tokens, 2);
  const std::vector<state::v1::Event> events = Transcript("s1");
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[1].content(), stopped->text);
  state::v1::GetUsageRequest usage_request;
  usage_request.set_session_id("s1");
  StatusOr<state::v1::Usage> usage = state_client_->GetUsage(usage_request);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->counters().at("prompt_tokens"), stopped->prompt_tokens);
  EXPECT_EQ(usage->counters().at("completion_tokens"), stopped->generated_tokens);
  const TurnReply next = Turn("s1", "Go on.");
  EXPECT_FALSE(next.rebuilt);
  EXPECT_GT(next.cached_tokens, 0);
}

// A session snapshotted when the runtime stopped, whose daemon then lost it (restarted, or
// the pod moved to another node), is restored and sent only what is new: its reply is token
// for token the reply of a session that never lost its KV (greedy).
class HarnessLongContextTest : public HarnessTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(plane_.Start(/*context=*/2048), "");
    StartRuntime();
  }
};

TEST_F(HarnessLongContextTest, ASnapshottedSessionIsRestoredAndContinuesAsIfNeverLost) {
  for (const char* id : {"s1", "control"}) {
    ASSERT_TRUE(harness_->OpenSession(id, "alice").ok());
    Turn(id, "Word: falcon.");
    Turn(id, "Number: 42.");
  }
  StatusOr<int> saved = harness_->SaveSnapshots();
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(*saved, 2);
  ForgetNodeSession("s1");
  StartRuntime();  // a new runtime process, too
  const TurnReply restored = Turn("s1", "Which?");
  const TurnReply control = Turn("control", "Which?");
  EXPECT_TRUE(restored.restored);
  EXPECT_FALSE(restored.rebuilt);
  EXPECT_EQ(restored.text, control.text);
  EXPECT_EQ(restored.prompt_tokens, control.prompt_tokens);  // only the new message
  EXPECT_EQ(restored.cached_tokens, control.cached_tokens);
  // Hot again afterwards.
  EXPECT_FALSE(Turn("s1", "Ok.").restored);

  // Under other instructions the snapshot is not used: the session is rebuilt.
  ASSERT_TRUE(harness_->SaveSnapshots().ok());
  ForgetNodeSession("s1");
  StartRuntime("You are the triage agent of team B.");
  const TurnReply changed = Turn("s1", "Hi.");
  EXPECT_FALSE(changed.restored);
  EXPECT_TRUE(changed.rebuilt);
}

// What a runtime pod reports as its agent's modelError: whether its node daemon serves the
// model, and what it serves instead.
TEST_F(HarnessTest, TheNodeDaemonSaysWhetherItServesAModel) {
  EXPECT_TRUE(node_client_->CheckModelServed("tiny").ok());
  const Status missing = node_client_->CheckModelServed("llama-70b");
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("does not serve model llama-70b (it serves: tiny)"),
            std::string::npos)
      << missing.message();
  NodeClient nobody("unix:" + ::testing::TempDir() + "/no-daemon.sock");
  EXPECT_EQ(nobody.CheckModelServed("tiny").code(), StatusCode::kUnavailable);
}

TEST_F(HarnessTest, AnUnknownSessionIsNotFoundAndWritesNothing) {
  StatusOr<TurnReply> r = harness_->Turn("nope", "hi", [](const std::string&) { return true; });
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("session nope: not found"), std::string::npos);
  EXPECT_EQ(state_client_->ListSessions({})->sessions_size(), 0);
}

}  // namespace
}  // namespace agentry::harness
