// The session HTTP API on a real loopback port, over the harness, a real node daemon and a
// real state sidecar: sessions, replies as JSON and as server-sent events, the transcript and
// usage, one turn at a time, DELETE stopping a running turn, and clear errors.
#include "runtime/api/session_api.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <cpprest/http_client.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/http/sse.h"
#include "common/metrics/registry.h"
#include "common/testing/raw_http_client.h"
#include "common/utc_day.h"
#include "runtime/api/openai_api.h"
#include "runtime/harness/tests/data_plane.h"

namespace agentry::api {
namespace {

using Json = nlohmann::json;

struct Reply {
  int status = 0;
  std::string body;
  Json json;
  std::string session;      // X-Agentry-Session
  std::string retry_after;  // Retry-After
};

class SessionApiTest : public ::testing::Test {
 protected:
  void Start(int32_t max_tokens, int64_t context = 256, SessionLimits limits = {},
             TokenBudgets budgets = {}) {
    ASSERT_EQ(plane_.Start(context), "");
    state_ = std::make_unique<harness::StateClient>(plane_.state_target());
    node_ = std::make_unique<harness::NodeClient>(plane_.node_target());
    harness_ = std::make_unique<harness::Harness>(
        harness::HarnessOptions{.agent = "team-a/triage",
                                .model = "tiny",
                                .system_prompt = "You are the triage agent of team A.",
                                .max_tokens = max_tokens},
        state_.get(), node_.get());
    audit_ = std::make_unique<AuditLog>(state_.get(), &registry_);
    api_ =
        std::make_unique<SessionApi>(harness_.get(), state_.get(),
                                     SessionApiOptions{.limits = limits,
                                                       .budgets = budgets,
                                                       .on_behalf_of = on_behalf_of_,
                                                       .now_ms = [this] { return now_ms_.load(); },
                                                       .metrics = &registry_,
                                                       .audit = audit_.get()});
    openai_ = std::make_unique<OpenAiApi>(harness_.get(), state_.get(), api_.get());
    server_ = std::make_unique<http::HttpServer>(http::HttpServerOptions{.registry = &registry_});
    ASSERT_TRUE(api_->Register(server_.get()).ok());
    ASSERT_TRUE(openai_->Register(server_.get()).ok());
    ASSERT_TRUE(audit_->Register(server_.get()).ok());
    ASSERT_TRUE(server_->Start().ok());
  }

  Reply Send(const std::string& method, const std::string& path, const std::string& body = "",
             const std::string& accept = "") {
    web::http::client::http_client client(server_->base_url());
    web::http::http_request request(method);
    request.set_request_uri(path);
    if (!body.empty()) request.set_body(body, "application/json");
    if (!accept.empty()) request.headers().add("Accept", accept);
    web::http::http_response response = client.request(request).get();
    Reply r;
    r.status = response.status_code();
    r.body = response.extract_utf8string(true).get();
    const auto header = [&](const char* name) {
      return response.headers().has(name) ? response.headers()[name] : std::string();
    };
    r.session = header("X-Agentry-Session");
    r.retry_after = header("Retry-After");
    r.json = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    return r;
  }

  harness::LocalDataPlane plane_;
  metrics::Registry registry_;
  // The API's clock (the state sidecar keeps the real one): starts at the real time.
  std::atomic<int64_t> now_ms_{std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()};
  std::unique_ptr<harness::StateClient> state_;
  std::unique_ptr<harness::NodeClient> node_;
  std::unique_ptr<harness::Harness> harness_;
  std::string on_behalf_of_ = "optional";  // spec.identity.onBehalfOf for Start()
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<SessionApi> api_;
  std::unique_ptr<OpenAiApi> openai_;
  std::unique_ptr<http::HttpServer> server_;
};

// The events of a server-sent event stream: (name, data).
std::vector<std::pair<std::string, Json>> ParseEvents(const std::string& body) {
  std::vector<std::pair<std::string, Json>> events;
  for (const http::SseEvent& e : http::SseParser().Feed(body)) {
    events.emplace_back(e.name, Json::parse(e.data));
  }
  return events;
}

TEST_F(SessionApiTest, ASessionTakesMessagesAndShowsItsTranscriptAndUsage) {
  Start(8);
  const Reply created = Send("POST", "/v1/sessions", R"({"id":"s1","on_behalf_of":"alice"})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json["id"], "s1");
  EXPECT_EQ(created.json["state"], "active");
  const Reply first = Send("POST", "/v1/sessions/s1/messages", R"({"content":"Is staging up?"})");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json["user_seq"], 1);
  EXPECT_EQ(first.json["reply_seq"], 2);
  EXPECT_GT(first.json["usage"]["completion_tokens"].get<int>(), 0);
  const Reply second = Send("POST", "/v1/sessions/s1/messages", R"({"content":"And prod?"})");
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_GT(second.json["usage"]["cached_tokens"].get<int>(), 0);

  const Reply got = Send("GET", "/v1/sessions/s1");
  ASSERT_EQ(got.status, 200) << got.body;
  ASSERT_EQ(got.json["transcript"].size(), 4U);
  EXPECT_EQ(got.json["transcript"][0]["role"], "user");
  EXPECT_EQ(got.json["transcript"][0]["content"], "Is staging up?");
  EXPECT_EQ(got.json["transcript"][1]["content"], first.json["content"]);
  EXPECT_EQ(got.json["usage"]["turns"], 2);
  EXPECT_EQ(got.json["turn_running"], false);
  const Reply list = Send("GET", "/v1/sessions");
  ASSERT_EQ(list.json["sessions"].size(), 1U);
  // A session without an id gets one.
  const Reply anonymous = Send("POST", "/v1/sessions", "");
  ASSERT_EQ(anonymous.status, 201);
  EXPECT_EQ(anonymous.json["id"].get<std::string>().rfind("s-", 0), 0U);
}

TEST_F(SessionApiTest, AStreamedReplyArrivesAsTokenEventsThenDone) {
  Start(8);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
  const Reply streamed =
      Send("POST", "/v1/sessions/s1/messages", R"({"content":"Hello","stream":true})");
  ASSERT_EQ(streamed.status, 200);
  const auto events = ParseEvents(streamed.body);
  ASSERT_GE(events.size(), 2U) << streamed.body;
  std::string text;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].first, "token");
    text += events[i].second["text"].get<std::string>();
  }
  EXPECT_EQ(events.back().first, "done");
  EXPECT_EQ(events.back().second["content"], text);
  // Accept: text/event-stream asks for the same.
  const Reply by_header =
      Send("POST", "/v1/sessions/s1/messages", R"({"content":"Again"})", "text/event-stream");
  EXPECT_EQ(ParseEvents(by_header.body).back().first, "done");
}

TEST_F(SessionApiTest, BadRequestsGetClearErrors) {
  Start(8);
  EXPECT_EQ(Send("POST", "/v1/sessions/nope/messages", R"({"content":"x"})").status, 404);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
  const Reply not_json = Send("POST", "/v1/sessions/s1/messages", "{oops");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(not_json.json["error"]["code"], "INVALID_ARGUMENT");
  const Reply no_content = Send("POST", "/v1/sessions/s1/messages", R"({"text":"x"})");
  EXPECT_EQ(no_content.status, 400);
  EXPECT_NE(no_content.json["error"]["message"].get<std::string>().find("content"),
            std::string::npos);
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"../x"})").status, 400);
  const Reply invalid_utf8 = Send("POST", "/v1/sessions/s1/messages", "{\"content\":\"\xff\xfe\"}");
  EXPECT_EQ(invalid_utf8.status, 400);
  // A closed session takes no more messages; nothing was appended by any of these. Its KV on
  // the node daemon is freed.
  ASSERT_EQ(Send("POST", "/v1/sessions/s2/messages", R"({"content":"hi"})").status, 404);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s2"})").status, 201);
  ASSERT_EQ(Send("POST", "/v1/sessions/s2/messages", R"({"content":"hi"})").status, 200);
  const auto daemon_has = [&](const std::string& id) {
    for (const auto& s : plane_.DaemonSessions()) {
      if (s.session_id == id) return true;
    }
    return false;
  };
  EXPECT_TRUE(daemon_has("s2"));
  EXPECT_EQ(Send("DELETE", "/v1/sessions/s2").status, 200);
  EXPECT_FALSE(daemon_has("s2"));
  EXPECT_EQ(Send("DELETE", "/v1/sessions/s1").status, 200);
  EXPECT_EQ(Send("POST", "/v1/sessions/s1/messages", R"({"content":"x"})").status, 400);
  EXPECT_EQ(Send("GET", "/v1/sessions/s1").json["transcript"].size(), 0U);
}

// A streaming client that hangs up mid-reply stops its turn (as DELETE would, but the session
// stays open): the partial reply is kept and the turn counts as cancelled.
TEST_F(SessionApiTest, AStreamingClientThatHangsUpStopsItsTurn) {
  Start(/*max_tokens=*/100000, /*context=*/4096);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
  const std::string body = R"({"content":"Tell me a long story.","stream":true})";
  std::string got;
  ASSERT_TRUE(testing::SendAndHangUp(server_->port(),
                                     "POST /v1/sessions/s1/messages HTTP/1.1\r\nHost: localhost\r\n"
                                     "Content-Type: application/json\r\nContent-Length: " +
                                         std::to_string(body.size()) + "\r\n\r\n" + body,
                                     "event: token", &got))
      << got;
  bool running = true;
  for (int i = 0; i < 3000 && running; ++i) {
    running = Send("GET", "/v1/sessions/s1").json["turn_running"] == true;
    if (running) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(running);
  const Reply session = Send("GET", "/v1/sessions/s1");
  EXPECT_EQ(session.json["state"], "active");
  ASSERT_EQ(session.json["transcript"].size(), 2U);
  const Reply metrics = Send("GET", "/metrics");
  EXPECT_NE(metrics.body.find(R"(agentry_runtime_turns_total{result="cancelled"} 1)"),
            std::string::npos)
      << metrics.body;
  // The session takes its next message.
  EXPECT_EQ(Send("POST", "/v1/sessions/s1/messages", R"({"content":"Short, please."})").status,
            200);
}

// A streamed turn of session s1 that would run to the end of the context, read in the
// background; waits until it is running.
class LongTurn {
 public:
  LongTurn(const std::string& base_url, const std::function<bool()>& running) {
    thread_ = std::thread([this, base_url] {
      web::http::client::http_client client(base_url);
      web::http::http_request request("POST");
      request.set_request_uri("/v1/sessions/s1/messages");
      request.set_body(R"({"content":"Tell me a long story.","stream":true})", "application/json");
      body_.set_value(client.request(request).get().extract_utf8string(true).get());
    });
    for (int i = 0; i < 500 && !started_; ++i) {
      started_ = running();
      if (!started_) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ~LongTurn() { thread_.join(); }
  bool started() const { return started_; }
  // The stream's events once it has ended (empty after 20 s without an end).
  std::vector<std::pair<std::string, Json>> Events() {
    std::future<std::string> done = body_.get_future();
    if (done.wait_for(std::chrono::seconds(20)) != std::future_status::ready) return {};
    return ParseEvents(done.get());
  }

 private:
  std::promise<std::string> body_;
  std::thread thread_;
  bool started_ = false;
};

TEST_F(SessionApiTest, DeleteStopsARunningTurnAtOnceAndASecondMessageWaitsItsTurn) {
  Start(/*max_tokens=*/100000, /*context=*/4096);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
  LongTurn turn(server_->base_url(),
                [&] { return Send("GET", "/v1/sessions/s1").json["turn_running"] == true; });
  ASSERT_TRUE(turn.started());
  const Reply second = Send("POST", "/v1/sessions/s1/messages", R"({"content":"hurry"})");
  EXPECT_EQ(second.status, 409) << second.body;
  const Reply deleted = Send("DELETE", "/v1/sessions/s1");
  ASSERT_EQ(deleted.status, 200);
  EXPECT_EQ(deleted.json["cancelled_turn"], true);
  EXPECT_EQ(deleted.json["state"], "closed");
  const auto events = turn.Events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "done");
  EXPECT_EQ(events.back().second["finish_reason"], "cancelled");
  // The partial reply is in the transcript, durably.
  const Reply got = Send("GET", "/v1/sessions/s1");
  ASSERT_EQ(got.json["transcript"].size(), 2U);
  EXPECT_EQ(got.json["transcript"][1]["content"], events.back().second["content"]);
}

TEST_F(SessionApiTest, CancelStopsTheRunningTurnAndTheSessionGoesOn) {
  Start(/*max_tokens=*/100000, /*context=*/4096);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
  EXPECT_EQ(Send("POST", "/v1/sessions/s1/cancel").json["cancelled_turn"], false);  // none runs
  EXPECT_EQ(Send("POST", "/v1/sessions/nope/cancel").status, 404);
  {
    LongTurn turn(server_->base_url(),
                  [&] { return Send("GET", "/v1/sessions/s1").json["turn_running"] == true; });
    ASSERT_TRUE(turn.started());
    const Reply cancelled = Send("POST", "/v1/sessions/s1/cancel");
    ASSERT_EQ(cancelled.status, 200) << cancelled.body;
    EXPECT_EQ(cancelled.json["cancelled_turn"], true);
    EXPECT_EQ(cancelled.json["state"], "active");
    const auto events = turn.Events();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().second["finish_reason"], "cancelled");
  }
  const Reply next = Send("POST", "/v1/sessions/s1/messages", R"({"content":"Short, please."})");
  EXPECT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(next.json["user_seq"], 3);
}

// Each step of a session is an audit record, chained; the log pages and verifies over HTTP.
TEST_F(SessionApiTest, EveryStepIsAnAuditRecordThatPagesAndVerifies) {
  Start(8);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1","on_behalf_of":"alice"})").status, 201);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1","on_behalf_of":"alice"})").status, 201);
  const Reply turn = Send("POST", "/v1/sessions/s1/messages", R"({"content":"Is staging up?"})");
  ASSERT_EQ(turn.status, 200);
  ASSERT_EQ(Send("DELETE", "/v1/sessions/s1").status, 200);
  const Reply all = Send("GET", "/v1/audit");
  ASSERT_EQ(all.status, 200) << all.body;
  const Json& records = all.json["records"];
  ASSERT_EQ(records.size(), 3U) << all.body;  // the repeated create is not a second session
  EXPECT_EQ(records[0]["action"], "session.create");
  EXPECT_EQ(records[0]["actor"], "user:alice");
  EXPECT_EQ(records[1]["action"], "model.call");
  EXPECT_EQ(records[1]["actor"], "agent:team-a/triage");
  EXPECT_EQ(records[1]["session_id"], "s1");
  EXPECT_EQ(records[1]["details"]["on_behalf_of"], "alice");
  EXPECT_EQ(records[1]["details"]["model"], "tiny");
  EXPECT_EQ(records[1]["details"]["completion_tokens"], turn.json["usage"]["completion_tokens"]);
  EXPECT_EQ(records[1]["details"]["prompt_tokens"], turn.json["usage"]["prompt_tokens"]);
  EXPECT_EQ(records[1]["details"]["kv"], "first");
  EXPECT_EQ(records[2]["action"], "session.close");
  EXPECT_EQ(records[1]["prev_hash"], records[0]["hash"]);
  EXPECT_EQ(records[2]["prev_hash"], records[1]["hash"]);
  // Pages: two, then the rest.
  const Reply first = Send("GET", "/v1/audit?limit=2");
  ASSERT_EQ(first.json["records"].size(), 2U);
  const Reply rest =
      Send("GET", "/v1/audit?after=" + std::to_string(first.json["next_after"].get<int64_t>()));
  ASSERT_EQ(rest.json["records"].size(), 1U);
  EXPECT_EQ(rest.json["records"][0]["action"], "session.close");
  EXPECT_FALSE(rest.json.contains("next_after"));
  EXPECT_EQ(Send("GET", "/v1/audit?limit=0").status, 400);
  EXPECT_EQ(Send("GET", "/v1/audit?after=x").status, 400);
  const Reply verified = Send("GET", "/v1/audit/verify");
  EXPECT_EQ(verified.json["ok"], true) << verified.body;
  EXPECT_EQ(verified.json["records"], 3);
  EXPECT_EQ(verified.json["head_hash"], records[2]["hash"]);
}

TEST_F(SessionApiTest, ATokenBudgetCutsTheTurnThatCrossesItAndRefusesTheNext) {
  Start(/*max_tokens=*/64, /*context=*/4096, {},
        TokenBudgets{.per_session = 400, .per_day = std::nullopt});
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
  std::vector<Json> replies;
  Reply refused;
  for (int i = 0; i < 20; ++i) {
    const Reply r = Send("POST", "/v1/sessions/s1/messages", R"({"content":"Go on."})");
    if (r.status != 200) {
      refused = r;
      break;
    }
    replies.push_back(r.json);
  }
  ASSERT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find("budget_exhausted: this session has used its tokensPerSession "
                              "budget"),
            std::string::npos)
      << refused.body;
  // Every turn but the last stayed within the budget; the last was cut at what was left,
  // unless it ended by itself first.
  int64_t used = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    const int64_t before = used;
    used += replies[i]["usage"]["prompt_tokens"].get<int64_t>() +
            replies[i]["usage"]["completion_tokens"].get<int64_t>();
    if (i + 1 < replies.size()) {
      EXPECT_LT(used, 400);
    }
    EXPECT_LE(replies[i]["usage"]["completion_tokens"].get<int64_t>(), 400 - before);
  }
  EXPECT_GE(used, 400);
  const Reply session = Send("GET", "/v1/sessions/s1");
  EXPECT_EQ(session.json["usage"]["prompt_tokens"].get<int64_t>() +
                session.json["usage"]["completion_tokens"].get<int64_t>(),
            used);
  // A new session has its own budget; the refusal is in the audit log.
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s2"})").status, 201);
  EXPECT_EQ(Send("POST", "/v1/sessions/s2/messages", R"({"content":"Hi."})").status, 200);
  EXPECT_NE(Send("GET", "/v1/audit?session=s1").body.find("\"action\":\"budget.exhausted\""),
            std::string::npos);
  // Counted as the session's budget: one refusal (the turn that was cut is not one).
  const std::string metrics = Send("GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(agentry_runtime_refusals_total{reason="session_budget"} 1)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(agentry_runtime_refusals_total{reason="daily_budget"} 0)"),
            std::string::npos)
      << metrics;
}

TEST_F(SessionApiTest, AUsedUpDayBudgetRefusesEverySessionUntilMidnightUtc) {
  Start(/*max_tokens=*/64, /*context=*/4096, {},
        TokenBudgets{.per_session = std::nullopt, .per_day = 300});
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
  StatusOr<ReplicaReport> fresh = api_->ReadReplicaReport();
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  EXPECT_EQ(fresh->day, UtcDay(now_ms_.load()));
  EXPECT_EQ(fresh->sessions, 1);
  EXPECT_EQ(fresh->tokens_today, 0);
  EXPECT_FALSE(fresh->budget_exhausted);
  int status = 200;
  for (int i = 0; i < 20 && status == 200; ++i) {
    status = Send("POST", "/v1/sessions/s1/messages", R"({"content":"Go on."})").status;
  }
  ASSERT_EQ(status, 429);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s2"})").status, 201);
  const Reply refused = Send("POST", "/v1/sessions/s2/messages", R"({"content":"Hi."})");
  EXPECT_EQ(refused.status, 429);
  EXPECT_NE(refused.body.find("tokensPerDay"), std::string::npos) << refused.body;
  const int64_t retry_after = std::stoll(refused.retry_after);
  EXPECT_GT(retry_after, 0);
  EXPECT_LE(retry_after, 86400);

  // What the replica reports in its agent's status says so, with the 429's message.
  StatusOr<ReplicaReport> spent = api_->ReadReplicaReport();
  ASSERT_TRUE(spent.ok()) << spent.status().message();
  EXPECT_EQ(spent->sessions, 2);
  EXPECT_GE(spent->tokens_today, 300);
  EXPECT_TRUE(spent->budget_exhausted);
  EXPECT_NE(refused.body.find(spent->message), std::string::npos)
      << refused.body << " / " << spent->message;
  // Both 429s are counted as the day's budget.
  const std::string metrics = Send("GET", "/metrics").body;
  EXPECT_NE(metrics.find(R"(agentry_runtime_refusals_total{reason="daily_budget"} 2)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(agentry_runtime_refusals_total{reason="session_budget"} 0)"),
            std::string::npos)
      << metrics;
}

Json Chat(std::initializer_list<std::pair<std::string, std::string>> messages,
          bool stream = false) {
  Json body = {{"model", "triage"}, {"messages", Json::array()}, {"stream", stream}};
  for (const auto& [role, content] : messages) {
    body["messages"].push_back({{"role", role}, {"content", content}});
  }
  return body;
}

// The staging conversation after its first reply `answer`, with the user's `next` message.
Json StagingConversation(const std::string& answer, const std::string& next) {
  return Chat({{"system", "Answer briefly."},
               {"user", "Is staging up?"},
               {"assistant", answer},
               {"user", next}});
}

TEST_F(SessionApiTest, OpenAiClientsContinueOneSessionByResendingTheConversation) {
  Start(8);
  const Reply first =
      Send("POST", "/v1/chat/completions",
           Chat({{"system", "Answer briefly."}, {"user", "Is staging up?"}}).dump());
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json["object"], "chat.completion");
  EXPECT_EQ(first.json["model"], "triage");
  const std::string answer = first.json["choices"][0]["message"]["content"];
  EXPECT_EQ(first.json["choices"][0]["message"]["role"], "assistant");
  EXPECT_GT(first.json["usage"]["completion_tokens"].get<int>(), 0);
  ASSERT_FALSE(first.session.empty());

  const Reply second =
      Send("POST", "/v1/chat/completions", StagingConversation(answer, "And prod?").dump());
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.session, first.session);
  const Reply got = Send("GET", "/v1/sessions/" + first.session);
  ASSERT_EQ(got.json["transcript"].size(), 5U);  // system, user, reply, user, reply
  EXPECT_EQ(got.json["transcript"][0]["role"], "system");
  EXPECT_EQ(got.json["transcript"][4]["content"], second.json["choices"][0]["message"]["content"]);

  // An edited history is a conversation of its own, seeded with the request's history.
  const Reply edited = Send("POST", "/v1/chat/completions",
                            StagingConversation("It is down.", "Since when?").dump());
  ASSERT_EQ(edited.status, 200) << edited.body;
  EXPECT_NE(edited.session, first.session);
  const Reply seeded = Send("GET", "/v1/sessions/" + edited.session);
  ASSERT_EQ(seeded.json["transcript"].size(), 5U);
  EXPECT_EQ(seeded.json["transcript"][2]["content"], "It is down.");
  EXPECT_EQ(Send("GET", "/v1/sessions/" + first.session).json["transcript"].size(), 5U);
}

// A turn that failed leaves its message in the transcript, unanswered; the client resends
// the conversation without it (it got an error, not a reply) and stays in its session.
TEST_F(SessionApiTest, OpenAiClientsKeepTheirSessionAfterAFailedTurn) {
  Start(8);
  const Reply first =
      Send("POST", "/v1/chat/completions",
           Chat({{"system", "Answer briefly."}, {"user", "Is staging up?"}}).dump());
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string answer = first.json["choices"][0]["message"]["content"];
  std::string too_long;  // longer than the whole context: the turn fails
  for (int i = 0; i < 2000; ++i) too_long += "word" + std::to_string(i) + " ";
  const Reply failed =
      Send("POST", "/v1/chat/completions", StagingConversation(answer, too_long).dump());
  ASSERT_NE(failed.status, 200) << failed.body;
  ASSERT_EQ(Send("GET", "/v1/sessions/" + first.session).json["transcript"].size(), 4U);
  const Reply next =
      Send("POST", "/v1/chat/completions", StagingConversation(answer, "And prod?").dump());
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(next.session, first.session);
  EXPECT_EQ(Send("GET", "/v1/sessions/" + first.session).json["transcript"].size(), 6U);
}

TEST_F(SessionApiTest, OpenAiStreamingSendsDeltasThenTheFinishReasonThenDone) {
  Start(8);
  const Reply streamed =
      Send("POST", "/v1/chat/completions", Chat({{"user", "Hello"}}, /*stream=*/true).dump());
  ASSERT_EQ(streamed.status, 200);
  std::vector<Json> chunks;
  bool done = false;
  for (const http::SseEvent& e : http::SseParser().Feed(streamed.body)) {
    if (e.data == "[DONE]") {
      done = true;
    } else {
      chunks.push_back(Json::parse(e.data));
    }
  }
  EXPECT_TRUE(done);
  ASSERT_GE(chunks.size(), 3U) << streamed.body;
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks.back()["choices"][0]["finish_reason"], "length");  // max_tokens 8
  std::string text;
  for (const Json& c : chunks) {
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (c["choices"][0]["delta"].contains("content")) text += c["choices"][0]["delta"]["content"];
  }
  const Reply got = Send("GET", "/v1/sessions/" + streamed.session);
  ASSERT_EQ(got.json["transcript"].size(), 2U);
  EXPECT_EQ(got.json["transcript"][1]["content"], text);
}

TEST_F(SessionApiTest, OpenAiRequestsThatCannotBeATurnAreRefused) {
  Start(8);
  EXPECT_EQ(Send("POST", "/v1/chat/completions", R"({"model":"x"})").status, 400);
  const Reply last_not_user =
      Send("POST", "/v1/chat/completions", Chat({{"user", "hi"}, {"assistant", "hello"}}).dump());
  EXPECT_EQ(last_not_user.status, 400);
  EXPECT_NE(last_not_user.json["error"]["message"].get<std::string>().find("last message"),
            std::string::npos);
  EXPECT_EQ(Send("POST", "/v1/chat/completions", Chat({{"robot", "hi"}}).dump()).status, 400);
  EXPECT_EQ(Send("GET", "/v1/sessions").json["sessions"].size(), 0U);
}

TEST_F(SessionApiTest, TheSpecsSessionLimitsAreEnforced) {
  Start(4, 256,
        SessionLimits{.max_concurrent = 2,
                      .idle_timeout = std::chrono::minutes(15),
                      .max_duration = std::chrono::hours(2),
                      .max_turns = 2});
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"a"})").status, 201);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"b"})").status, 201);
  // maxConcurrent: a third is 429 with Retry-After; the same id again is not a new session.
  const Reply third = Send("POST", "/v1/sessions", R"({"id":"c"})");
  EXPECT_EQ(third.status, 429) << third.body;
  EXPECT_FALSE(third.retry_after.empty());
  EXPECT_LE(std::stoi(third.retry_after), 15 * 60);
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"a"})").status, 201);
  // maxTurns.
  EXPECT_EQ(Send("POST", "/v1/sessions/a/messages", R"({"content":"one"})").status, 200);
  EXPECT_EQ(Send("POST", "/v1/sessions/a/messages", R"({"content":"two"})").status, 200);
  const Reply over = Send("POST", "/v1/sessions/a/messages", R"({"content":"three"})");
  EXPECT_EQ(over.status, 400);
  EXPECT_NE(over.body.find("budget_exhausted: session a has taken its maxTurns (2) turns"),
            std::string::npos)
      << over.body;
  // idleTimeout: 16 minutes later both have idled out; "a" says so and is marked expired,
  // and new sessions may open again.
  now_ms_ += int64_t{16} * 60 * 1000;
  const Reply idle = Send("POST", "/v1/sessions/b/messages", R"({"content":"hi"})");
  EXPECT_EQ(idle.status, 400);
  EXPECT_NE(idle.body.find("expired, idle longer than idleTimeout"), std::string::npos)
      << idle.body;
  EXPECT_EQ(Send("GET", "/v1/sessions/b").json["state"], "expired");
  // The metrics count turns and tokens by kind.
  const Reply metrics = Send("GET", "/metrics");
  EXPECT_NE(metrics.body.find(R"(agentry_runtime_turns_total{result="ok"} 2)"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find(R"(agentry_runtime_sessions{state="expired"} 2)"), std::string::npos);
  EXPECT_NE(metrics.body.find(R"(agentry_runtime_tokens_total{kind="completion"})"),
            std::string::npos);
  EXPECT_NE(metrics.body.find(R"(agentry_runtime_turn_kv_total{source="first"} )"),
            std::string::npos)
      << metrics.body;
  // Refusals by reason: the third session and the third turn; an idled-out session is not a
  // budget's refusal.
  EXPECT_NE(metrics.body.find(R"(agentry_runtime_refusals_total{reason="max_concurrent"} 1)"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find(R"(agentry_runtime_refusals_total{reason="session_budget"} 1)"),
            std::string::npos)
      << metrics.body;
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"c"})").status, 201);
}

TEST(SessionPolicyTest, MaxDurationExpiresASessionStillInUse) {
  SessionPolicy policy(SessionLimits{.max_duration = std::chrono::hours(2)});
  state::v1::Session s;
  s.set_id("s");
  s.set_state("active");
  s.set_created_unix_ms(0);
  s.set_updated_unix_ms(int64_t{2} * 3600 * 1000);
  EXPECT_EQ(policy.Expiry(s, int64_t{2} * 3600 * 1000 + 1), "older than maxDuration (7200s)");
  EXPECT_TRUE(policy.MayTakeTurn(s, 0, int64_t{3600} * 1000).ok());
  EXPECT_EQ(policy.Deadline(s), int64_t{2} * 3600 * 1000);
  const Status over = policy.MayTakeTurn(s, 0, int64_t{2} * 3600 * 1000);
  EXPECT_EQ(over.message(),
            "budget_exhausted: session s is older than its maxDuration (7200s); start a new "
            "session");
  int64_t retry = 0;
  EXPECT_TRUE(policy.MayOpen({s}, int64_t{3600} * 1000, &retry).ok());
}

// The kill switch: suspending stops the running turn at once and refuses new sessions and
// turns (503) until resumed; both changes are audited.
TEST_F(SessionApiTest, SuspendingStopsRunningTurnsAndRefusesNewOnesUntilResumed) {
  Start(/*max_tokens=*/100000, /*context=*/4096);
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
  {
    LongTurn turn(server_->base_url(),
                  [&] { return Send("GET", "/v1/sessions/s1").json["turn_running"] == true; });
    ASSERT_TRUE(turn.started());
    api_->SetSuspended(true);
    const auto events = turn.Events();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().second["finish_reason"], "cancelled");
  }
  const Reply refused = Send("POST", "/v1/sessions/s1/messages", R"({"content":"hi"})");
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("is suspended (spec.suspend)"), std::string::npos) << refused.body;
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"s2"})").status, 503);
  EXPECT_EQ(Send("POST", "/v1/chat/completions", Chat({{"user", "hi"}}).dump()).status, 503);
  EXPECT_EQ(Send("GET", "/v1/sessions/s1").status, 200);  // reads still work
  api_->SetSuspended(false);
  EXPECT_EQ(Send("POST", "/v1/sessions/s1/messages", R"({"content":"hi"})").status, 200);
  const std::string audit = Send("GET", "/v1/audit").body;
  EXPECT_NE(audit.find(R"("action":"agent.suspend")"), std::string::npos) << audit;
  EXPECT_NE(audit.find(R"("stopped_turns":1)"), std::string::npos) << audit;
  EXPECT_NE(audit.find(R"("action":"agent.resume")"), std::string::npos) << audit;
}

// spec.identity.onBehalfOf: "required" refuses a session (or an OpenAI conversation) that
// names no user, "never" one that names one.
TEST_F(SessionApiTest, OnBehalfOfIsRequiredOrRefusedAsTheSpecSays) {
  on_behalf_of_ = "required";
  Start(8);
  const Reply missing = Send("POST", "/v1/sessions", R"({"id":"s1"})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("on_behalf_of: required (spec.identity.onBehalfOf is required"),
            std::string::npos)
      << missing.body;
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1","on_behalf_of":"alice"})").status, 201);
  const Reply openai = Send("POST", "/v1/chat/completions", Chat({{"user", "hi"}}).dump());
  EXPECT_EQ(openai.status, 400);
  EXPECT_NE(openai.body.find("user: required"), std::string::npos) << openai.body;
  Json as_bob = Chat({{"user", "hi"}});
  as_bob["user"] = "bob";
  EXPECT_EQ(Send("POST", "/v1/chat/completions", as_bob.dump()).status, 200);
}

TEST_F(SessionApiTest, OnBehalfOfNeverRefusesANamedUser) {
  on_behalf_of_ = "never";
  Start(8);
  const Reply named = Send("POST", "/v1/sessions", R"({"id":"s1","on_behalf_of":"alice"})");
  EXPECT_EQ(named.status, 400);
  EXPECT_NE(named.body.find("on_behalf_of: not allowed"), std::string::npos) << named.body;
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").status, 201);
}

}  // namespace
}  // namespace agentry::api
