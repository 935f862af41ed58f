// The session manager on a real (random-weight) model: hot KV between turns, eviction and
// restore that change no token, the prefix cache that changes no bit, snapshots, cancel,
// concurrent sessions, and the errors malformed requests get.
#include "nodeagent/scheduler/session_manager.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nodeagent/engine/test_model.h"
#include "nodeagent/scheduler/session_snapshot.h"

namespace agentry::scheduler {
namespace {

class SessionManagerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "/scheduler_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(*dir_ + "/spill");
    engine::TestModelSpec spec;
    spec.ctx = 512;
    spec.seed = 7;
    StatusOr<std::string> bytes = engine::BuildTestModel(spec);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    std::ofstream(*dir_ + "/model.gguf", std::ios::binary) << *bytes;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  void SetUp() override { ASSERT_TRUE(models_.Add("tiny", *dir_ + "/model.gguf", "chatml").ok()); }

  std::unique_ptr<SessionManager> Manager(uint64_t kv_capacity, bool spill_to_disk = false) {
    devices::Device cpu;
    cpu.id = "cpu";
    SessionManagerOptions options;
    options.context_length = 512;
    options.kv_capacity_bytes = kv_capacity;
    options.threads = 2;
    options.prefill_chunk = 16;
    if (spill_to_disk) options.spill_dir = *dir_ + "/spill";
    return std::make_unique<SessionManager>(&models_, std::vector<devices::Device>{cpu}, options,
                                            &registry_);
  }

  // One session's KV bytes at the test's context length.
  uint64_t SessionBytes() {
    std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
    StatusOr<SessionPlacement> s = m->Open({.agent = "a", .session_id = "probe", .model = "tiny"});
    EXPECT_TRUE(s.ok());
    return m->ListDevices()[0].kv_used_bytes;
  }

  static std::string Handle(SessionManager* m, const std::string& agent, const std::string& id) {
    StatusOr<SessionPlacement> s = m->Open({.agent = agent, .session_id = id, .model = "tiny"});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->handle : "";
  }

  static GenerationResult Turn(SessionManager* m, const std::string& handle,
                               const std::string& user, int32_t max_tokens = 12,
                               std::vector<int32_t>* tokens = nullptr) {
    StatusOr<GenerationResult> r =
        m->Generate({.handle = handle, .messages = {{"user", user}}, .max_tokens = max_tokens},
                    [&](const GenerationDelta& d) {
                      if (tokens != nullptr)
                        tokens->insert(tokens->end(), d.tokens.begin(), d.tokens.end());
                      return true;
                    });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : GenerationResult{};
  }

  static std::string* dir_;
  ModelRegistry models_;
  metrics::Registry registry_;
};
std::string* SessionManagerTest::dir_ = nullptr;

constexpr std::array<const char*, 4> kTurns = {"hello there", "what is the ticket status of 4821",
                                               "and who filed it", "thanks, close it"};

TEST_F(SessionManagerTest, SecondTurnPrefillsOnlyItsNewTokens) {
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  const std::string h = Handle(m.get(), "ns/agent", "c1");
  const GenerationResult first = Turn(m.get(), h, kTurns[0]);
  EXPECT_EQ(first.usage.cached_tokens, 0);
  EXPECT_GT(first.usage.prompt_tokens, 0);
  EXPECT_EQ(first.usage.generated_tokens, 12);
  EXPECT_EQ(first.finish, FinishReason::kLength);
  const GenerationResult second = Turn(m.get(), h, kTurns[1]);
  // Everything up to the first reply's end is reused; only the reply's closing marker and
  // the new message are evaluated.
  // (The last generated token is not evaluated until the next turn needs it.)
  EXPECT_EQ(second.usage.cached_tokens, first.usage.prompt_tokens + 11);
  // What is evaluated is about what a new conversation of that one message needs: the
  // message, its markers and the first reply's last token and end marker.
  const GenerationResult fresh = Turn(m.get(), Handle(m.get(), "ns/other", "c2"), kTurns[1]);
  EXPECT_LE(second.usage.prompt_tokens, fresh.usage.prompt_tokens + 16);
  EXPECT_EQ(second.usage.kv_tokens, second.usage.cached_tokens + second.usage.prompt_tokens + 11);
}

// Raw-token turns: each continues the sequence, the previous reply included (its last token,
// generated but not evaluated, is evaluated first).
TEST_F(SessionManagerTest, RawTokenTurnsContinueAfterTheReply) {
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  const std::string h = Handle(m.get(), "ns/agent", "raw");
  const auto sink = [](const GenerationDelta&) { return true; };
  StatusOr<GenerationResult> first =
      m->Generate({.handle = h, .tokens = {5, 6, 7, 8}, .max_tokens = 4}, sink);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->usage.kv_tokens, 4 + 3);
  StatusOr<GenerationResult> second =
      m->Generate({.handle = h, .tokens = {9, 10}, .max_tokens = 1}, sink);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->usage.cached_tokens, 4 + 3);
  EXPECT_EQ(second->usage.prompt_tokens, 1 + 2);
  EXPECT_EQ(m->Generate({.handle = h, .messages = {{"user", "x"}}}, sink).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(SessionManagerTest, EvictedSessionsContinueWithTheSameTokens) {
  // Reference: three sessions that never leave memory.
  std::vector<std::vector<int32_t>> want(3), got(3);
  {
    std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
    std::vector<std::string> h;
    h.reserve(3);
    for (int i = 0; i < 3; ++i) h.push_back(Handle(m.get(), "ns/agent", "c" + std::to_string(i)));
    for (const std::string turn : kTurns) {
      for (int i = 0; i < 3; ++i) {
        Turn(m.get(), h[i], turn + " #" + std::to_string(i), 12, &want[i]);
      }
    }
  }
  // Room for two: every turn of the third evicts the least recently used, to disk and to
  // memory.
  for (bool disk : {true, false}) {
    std::unique_ptr<SessionManager> m = Manager(2 * SessionBytes(), disk);
    std::vector<std::string> h;
    h.reserve(3);
    for (int i = 0; i < 3; ++i) h.push_back(Handle(m.get(), "ns/agent", "c" + std::to_string(i)));
    int restored = 0;
    for (auto& g : got) g.clear();
    for (const std::string turn : kTurns) {
      for (int i = 0; i < 3; ++i) {
        restored +=
            Turn(m.get(), h[i], turn + " #" + std::to_string(i), 12, &got[i]).usage.restored;
      }
    }
    EXPECT_GE(restored, 8) << "disk " << disk;
    for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], want[i]) << "session " << i << " disk " << disk;
    const std::vector<SessionInfo> list = m->ListSessions("");
    EXPECT_EQ(std::count_if(list.begin(), list.end(),
                            [](const SessionInfo& s) { return s.state == "evicted"; }),
              1);
  }
}

TEST_F(SessionManagerTest, SessionsOfOneAgentShareTheirPromptPrefixBitForBit) {
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  const std::string instructions =
      "You triage support tickets for the platform team. Use get_ticket to look a ticket up, "
      "update_ticket to change its status, and never guess a ticket number.";
  const auto open_turn = [&](const std::string& agent, const std::string& id,
                             std::vector<int32_t>* tokens) {
    const std::string h = Handle(m.get(), agent, id);
    StatusOr<GenerationResult> r =
        m->Generate({.handle = h,
                     .messages = {{"system", instructions}, {"user", "status of ticket 77?"}},
                     .max_tokens = 10},
                    [&](const GenerationDelta& d) {
                      tokens->insert(tokens->end(), d.tokens.begin(), d.tokens.end());
                      return true;
                    });
    EXPECT_TRUE(r.ok());
    return std::make_pair(h, r.ok() ? r->usage : GenerationUsage{});
  };
  std::vector<int32_t> first, shared, alone;
  open_turn("ns/triage", "c1", &first);
  const auto [h_shared, usage_shared] = open_turn("ns/triage", "c2", &shared);
  const auto [h_alone, usage_alone] = open_turn("ns/other", "c3", &alone);
  EXPECT_GE(usage_shared.cached_tokens, 32);  // whole chunks of the instructions
  EXPECT_EQ(usage_shared.cached_tokens % 16, 0);
  EXPECT_EQ(usage_alone.cached_tokens, 0);  // another agent shares nothing
  EXPECT_EQ(shared, alone);
  // The copied prefix and everything computed after it are the same bytes.
  StatusOr<std::string> a = m->Snapshot(h_shared);
  StatusOr<std::string> b = m->Snapshot(h_alone);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(DecodeSessionState(*a)->kv, DecodeSessionState(*b)->kv);
}

TEST_F(SessionManagerTest, SnapshotRestoresIntoAFreshDaemon) {
  std::vector<int32_t> want, got;
  std::string snapshot;
  {
    std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
    const std::string h = Handle(m.get(), "ns/agent", "c1");
    Turn(m.get(), h, kTurns[0]);
    StatusOr<std::string> s = m->Snapshot(h);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    snapshot = *s;
    Turn(m.get(), h, kTurns[1], 12, &want);
  }
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  StatusOr<SessionPlacement> p =
      m->Restore({.agent = "ns/agent", .session_id = "moved", .model = "tiny"}, snapshot);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const GenerationResult r = Turn(m.get(), p->handle, kTurns[1], 12, &got);
  EXPECT_EQ(got, want);
  EXPECT_GT(r.usage.cached_tokens, 0);
}

TEST_F(SessionManagerTest, BadSnapshotsAreRefusedAndChangeNothing) {
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  const std::string h = Handle(m.get(), "ns/agent", "c1");
  Turn(m.get(), h, kTurns[0]);
  StatusOr<std::string> good = m->Snapshot(h);
  ASSERT_TRUE(good.ok());
  const OpenSessionParams same{.agent = "ns/agent", .session_id = "c1", .model = "tiny"};
  std::string flipped = *good;
  flipped[flipped.size() / 2] ^= 0x20;
  EXPECT_EQ(m->Restore(same, flipped).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(m->Restore(same, good->substr(0, 40)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(m->Restore(same, "not a snapshot").status().code(), StatusCode::kInvalidArgument);
  // Well-formed bytes whose KV and tokens disagree: refused before any session opens.
  SessionState short_tokens = *DecodeSessionState(*good);
  short_tokens.tokens.pop_back();
  short_tokens.text_end.pop_back();
  short_tokens.exact_prefix = std::min<int64_t>(short_tokens.exact_prefix, 1);
  const Status mismatch = m->Restore({.agent = "ns/agent", .session_id = "new", .model = "tiny"},
                                     EncodeSessionState(short_tokens))
                              .status();
  EXPECT_EQ(mismatch.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.message().find("positions but the token list"), std::string::npos)
      << mismatch.message();
  EXPECT_EQ(m->ListSessions("").size(), 1u);
  StatusOr<std::string> after = m->Snapshot(h);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *good);
}

TEST_F(SessionManagerTest, CancelStopsAGenerationMidway) {
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  const std::string h = Handle(m.get(), "ns/agent", "c1");
  std::atomic<int> seen{0};
  StatusOr<GenerationResult> r =
      m->Generate({.handle = h, .messages = {{"user", "go on"}}, .max_tokens = 200},
                  [&](const GenerationDelta& d) {
                    if (!d.tokens.empty() && ++seen == 5) {
                      EXPECT_TRUE(*m->Cancel(h));
                    }
                    return true;
                  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->finish, FinishReason::kCancelled);
  EXPECT_EQ(r->usage.generated_tokens, 5);
  EXPECT_FALSE(*m->Cancel(h));  // nothing running now
  // A receiver that goes away cancels too; the session stays usable.
  r = m->Generate({.handle = h, .messages = {{"user", "again"}}, .max_tokens = 50},
                  [](const GenerationDelta&) { return false; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish, FinishReason::kCancelled);
  EXPECT_EQ(Turn(m.get(), h, "and now").finish, FinishReason::kLength);
}

TEST_F(SessionManagerTest, ConcurrentSessionsGetWhatTheyWouldAlone) {
  constexpr int kSessions = 4;
  std::vector<std::vector<int32_t>> want(kSessions), got(kSessions);
  {
    std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
    for (int i = 0; i < kSessions; ++i) {
      const std::string h = Handle(m.get(), "ns/agent", "c" + std::to_string(i));
      for (const std::string turn : kTurns) Turn(m.get(), h, turn + std::to_string(i), 8, &want[i]);
    }
  }
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  // The step batcher's histogram: sequences per forward step.
  metrics::Histogram& batch_size =
      registry_
          .AddHistogram("agentry_nodeagent_batch_size",
                        "Sequences per forward step (continuous batching).", {},
                        {1, 2, 4, 8, 16, 32, 64})
          .WithLabels({});
  const metrics::Histogram::Snapshot before = batch_size.Read();
  std::vector<std::thread> threads;
  threads.reserve(kSessions);
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      const std::string h = Handle(m.get(), "ns/agent", "c" + std::to_string(i));
      for (const std::string turn : kTurns) Turn(m.get(), h, turn + std::to_string(i), 8, &got[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kSessions; ++i) EXPECT_EQ(got[i], want[i]) << "session " << i;
  // And they did share steps: more sequences than steps (each session alone is one a step).
  const metrics::Histogram::Snapshot after = batch_size.Read();
  const double sequences = after.sum - before.sum;
  const auto steps = static_cast<double>(after.count - before.count);
  std::printf("%d concurrent sessions: %.0f sequences in %.0f steps\n", kSessions, sequences,
              steps);
  EXPECT_GT(sequences, steps);
}

TEST_F(SessionManagerTest, MalformedRequestsGetClearErrors) {
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  const std::string h = Handle(m.get(), "ns/agent", "c1");
  const auto sink = [](const GenerationDelta&) { return true; };
  const auto error = [&](const GenerateParams& p) { return m->Generate(p, sink).status(); };
  EXPECT_EQ(error({.handle = "nope", .messages = {{"user", "x"}}}).code(), StatusCode::kNotFound);
  EXPECT_EQ(error({.handle = h}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(error({.handle = h, .messages = {{"user", "x"}}, .tokens = {1}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(error({.handle = h, .messages = {{"", "x"}}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(error({.handle = h, .messages = {{"user", "x"}}, .stop = {""}}).code(),
            StatusCode::kInvalidArgument);
  const Status not_json =
      error({.handle = h, .messages = {{"user", "x"}}, .json_schema = "{\"type\":"});
  EXPECT_EQ(not_json.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(not_json.message().find("json_schema: not valid JSON"), std::string::npos)
      << not_json.message();
  const Status unsupported = error({.handle = h,
                                    .messages = {{"user", "x"}},
                                    .json_schema = R"({"type":"string","pattern":"^a"})"});
  EXPECT_EQ(unsupported.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unsupported.message().find("json_schema.pattern: unsupported keyword"),
            std::string::npos)
      << unsupported.message();
  const Status too_long = error({.handle = h, .messages = {{"user", std::string(6000, 'x')}}});
  EXPECT_EQ(too_long.code(), StatusCode::kOutOfRange);
  EXPECT_NE(too_long.message().find("context of 512"), std::string::npos) << too_long.message();
  const Status model = m->Open({.agent = "a", .session_id = "b", .model = "gpt"}).status();
  EXPECT_EQ(model.code(), StatusCode::kNotFound);
  EXPECT_NE(model.message().find("served: tiny"), std::string::npos) << model.message();
  EXPECT_EQ(m->Open({.agent = "a", .session_id = "b", .model = "tiny", .device_id = "nvidia3"})
                .status()
                .code(),
            StatusCode::kNotFound);
  // None of it touched the session.
  EXPECT_EQ(Turn(m.get(), h, kTurns[0]).usage.cached_tokens, 0);
  m->StopAccepting();
  EXPECT_EQ(error({.handle = h, .messages = {{"user", "x"}}}).code(), StatusCode::kUnavailable);
}

// A random-weight model left to itself writes no JSON; under a schema every reply is a value
// that satisfies it, the turn ends there, and the next turn goes on from the same session.
TEST_F(SessionManagerTest, JsonSchemaConstrainsTheReply) {
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  const std::string h = Handle(m.get(), "ns/agent", "c1");
  const std::string schema = R"({"type":"object","additionalProperties":false,
      "properties":{"status":{"enum":["open","closed"]},"ok":{"type":"boolean"}},
      "required":["status","ok"]})";
  for (int turn = 0; turn < 3; ++turn) {
    std::string text;
    StatusOr<GenerationResult> r =
        m->Generate({.handle = h,
                     .messages = {{"user", kTurns[turn]}},
                     .sampling = {.temperature = 1.0f, .seed = static_cast<uint64_t>(turn)},
                     .max_tokens = 200,
                     .json_schema = schema},
                    [&](const GenerationDelta& d) {
                      text += d.text;
                      return true;
                    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->finish, FinishReason::kStop) << text;
    const nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(value.is_discarded()) << text;
    ASSERT_TRUE(value.is_object()) << text;
    EXPECT_EQ(value.size(), 2u) << text;
    EXPECT_TRUE(value["status"] == "open" || value["status"] == "closed") << text;
    EXPECT_TRUE(value["ok"].is_boolean()) << text;
  }
  // Unconstrained, the same model writes something else (what the schema changed is real).
  std::string free_text;
  StatusOr<GenerationResult> r =
      m->Generate({.handle = h, .messages = {{"user", kTurns[3]}}, .max_tokens = 40},
                  [&](const GenerationDelta& d) {
                    free_text += d.text;
                    return true;
                  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(nlohmann::json::parse(free_text, nullptr, false).is_discarded()) << free_text;
}

// A tool-call constraint leaves a reply that does not open its tag alone, and holds one that
// does to a whole call. The random model writes no tag of its own, so the tag is taken from
// what it writes unconstrained with the same seed: the first draw is the same (nothing is
// masked before the tag), and from the tag on the call's grammar decides.
TEST_F(SessionManagerTest, AToolCallConstraintHoldsOnlyAReplyThatOpensItsTag) {
  std::unique_ptr<SessionManager> m = Manager(uint64_t{1} << 30);
  const auto reply = [&](const std::string& id, std::optional<ToolCallFormat> format) {
    StatusOr<GenerationResult> r = m->Generate({.handle = Handle(m.get(), "ns/agent", id),
                                                .messages = {{"user", kTurns[0]}},
                                                .sampling = {.temperature = 1.0f, .seed = 3},
                                                .max_tokens = 300,
                                                .tool_calls = std::move(format)},
                                               [](const GenerationDelta&) { return true; });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : GenerationResult{};
  };
  const nlohmann::json schema = nlohmann::json::parse(R"({"type":"object",
      "properties":{"id":{"type":"integer"},"urgent":{"type":"boolean"}},"required":["id"]})");
  const std::vector<constrain::ToolSchema> tools = {{"get_ticket", schema}, {"ping", nullptr}};
  const GenerationResult free_reply = reply("free", std::nullopt);
  const size_t first = free_reply.text.find_first_not_of(" \t\r\n");
  ASSERT_NE(first, std::string::npos) << free_reply.text;
  const std::string tag = free_reply.text.substr(first, 1);

  const GenerationResult untagged =
      reply("untagged", ToolCallFormat{"<tool_call>", "</tool_call>", tools});
  EXPECT_EQ(untagged.text, free_reply.text);
  EXPECT_FALSE(untagged.tool_call);

  const GenerationResult call = reply("call", ToolCallFormat{tag, "</tool_call>", tools});
  EXPECT_TRUE(call.tool_call) << call.text;
  EXPECT_EQ(call.finish, FinishReason::kStop);
  const std::string_view text = call.text;
  ASSERT_TRUE(text.substr(first).starts_with(tag)) << text;
  ASSERT_TRUE(text.ends_with("</tool_call>")) << text;
  const std::string_view body =
      text.substr(first + tag.size(), text.size() - first - tag.size() - 12);
  const nlohmann::json value = nlohmann::json::parse(body, nullptr, false);
  ASSERT_TRUE(value.is_object()) << text;
  ASSERT_TRUE(value["name"] == "get_ticket" || value["name"] == "ping") << text;
  const nlohmann::json& args = value["arguments"];
  ASSERT_TRUE(args.is_object()) << text;
  if (value["name"] == "ping") {
    EXPECT_TRUE(args.empty()) << text;
  } else {
    EXPECT_TRUE(args["id"].is_number_integer()) << text;
    EXPECT_TRUE(!args.contains("urgent") || args["urgent"].is_boolean()) << text;
  }
  // Both tool-call replies had the same tools: their grammar was compiled once.
  EXPECT_EQ(m->tool_call_grammars().compiled(), 1);

  const auto error = [&](ToolCallFormat format) {
    return m
        ->Generate({.handle = Handle(m.get(), "ns/agent", "bad"),
                    .messages = {{"user", "x"}},
                    .tool_calls = std::move(format)},
                   [](const GenerationDelta&) { return true; })
        .status();
  };
  const Status bad_schema =
      error({"<tool_call>", "</tool_call>", {{"q", nlohmann::json::parse(R"({"pattern":"^a"})")}}});
  EXPECT_EQ(bad_schema.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_schema.message().find("tool_calls.tools[0] (q).parameters.pattern"),
            std::string::npos)
      << bad_schema.message();
  EXPECT_EQ(error({"", "</tool_call>", tools}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(error({"<tool_call>", "", {}}).code(), StatusCode::kInvalidArgument);
}

TEST_F(SessionManagerTest, ASessionLargerThanTheBudgetIsRefused) {
  std::unique_ptr<SessionManager> m = Manager(SessionBytes() - 1);
  const Status s = m->Open({.agent = "a", .session_id = "b", .model = "tiny"}).status();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("exceeds device cpu's KV budget"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace agentry::scheduler
