// The session API's tool loop, end to end over HTTP: a real state sidecar, a real tool server
// (common/http's server, written for the test), and a node daemon whose replies come from a
// script (scripted_node.h), since a random-weight model never writes a tool call. The real
// daemon's side, that a reply opening <tool_call> is always a valid call, is tested in
// nodeagent/scheduler/tests and runtime/prompt/tests.
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include <cpprest/http_client.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/http/server.h"
#include "common/http/sse.h"
#include "common/metrics/registry.h"
#include "common/metrics/text_format.h"
#include "runtime/api/audit_log.h"
#include "runtime/api/authenticator.h"
#include "runtime/api/session_api.h"
#include "runtime/api/tests/scripted_node.h"
#include "runtime/harness/tests/data_plane.h"
#include "runtime/prompt/agent_prompt.h"
#include "runtime/tools/toolbox.h"

namespace agentry::api {
namespace {

using nlohmann::json;

std::string Call(const std::string& name, const json& arguments) {
  return runtime::RenderToolCall(name, arguments);
}

class ToolLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(plane_.Start(), "");
    socket_dir_ = ::testing::TempDir() + "/tool_loop_" + std::to_string(getpid());
    std::filesystem::create_directories(socket_dir_);
    ASSERT_EQ(node_.Start(socket_dir_ + "/node.sock"), "");
    tools_server_ =
        std::make_unique<http::HttpServer>(http::HttpServerOptions{.registry = &tool_registry_});
    ASSERT_TRUE(tools_server_
                    ->Route("GET", "/tickets/{id}",
                            [this](const http::HttpRequest& r) {
                              {
                                std::lock_guard<std::mutex> lock(mu_);
                                tool_requests_.push_back(r);
                              }
                              if (r.path_params.at("id") == "999") {
                                std::this_thread::sleep_for(std::chrono::seconds(3));
                              }
                              if (r.path_params.at("id") == "998") {  // a call of 3 hours
                                now_ms_ += int64_t{3} * 3600 * 1000;
                              }
                              return http::HttpResponse::Json(
                                  200, {{"id", r.path_params.at("id")}, {"status", "open"}});
                            })
                    .ok());
    ASSERT_TRUE(tools_server_->Start().ok());
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
    tools_server_->Stop();
    node_.Stop();
    std::filesystem::remove_all(socket_dir_);
  }

  // The runtime's pieces, for an agent with an HTTP tool on the tool server (and one on a
  // host outside the egress list).
  void StartRuntime(int64_t max_tool_steps, std::optional<int64_t> tool_calls_per_session = {}) {
    config::ManagedAgent agent;
    agent.metadata.name = "triage";
    agent.metadata.namespace_name = "team-a";
    config::ToolSpec get_ticket;
    get_ticket.name = "get_ticket";
    get_ticket.parameters = json::parse(
        R"({"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]})");
    get_ticket.http = config::HttpToolSpec();
    get_ticket.http->url = tools_server_->base_url() + "/tickets/{id}";
    config::ToolSpec outside = get_ticket;
    outside.name = "get_outside";
    outside.http->url = "http://outside.example.com/tickets/{id}";
    config::ToolSpec close_ticket = get_ticket;
    close_ticket.name = "close_ticket";
    close_ticket.requires_approval = true;
    agent.spec.tools = {get_ticket, outside, close_ticket};
    agent.spec.egress_allow = {{"127.0.0.1", {}}};
    state_ = std::make_unique<harness::StateClient>(plane_.state_target());
    StatusOr<std::unique_ptr<tools::Toolbox>> box = tools::Toolbox::Create(agent, {}, state_.get());
    ASSERT_TRUE(box.ok()) << box.status().message();
    toolbox_ = std::move(box).value();
    node_client_ = std::make_unique<harness::NodeClient>(node_.target());
    harness_ = std::make_unique<harness::Harness>(
        harness::HarnessOptions{.agent = "team-a/triage",
                                .model = "tiny",
                                .system_prompt = "You triage tickets.",
                                .max_tokens = 64,
                                .tools = toolbox_->decls()},
        state_.get(), node_client_.get());
    SessionApiOptions options;
    options.now_ms = [this] { return now_ms_.load(); };
    options.limits.approval_timeout = std::chrono::minutes(10);
    options.toolbox = toolbox_.get();
    options.max_tool_steps = max_tool_steps;
    options.tool_calls_per_session = tool_calls_per_session;
    options.access = access_.get();
    options_ = options;
    Serve();
    ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1","on_behalf_of":"alice"})").first, 201);
  }
  // The session API and its HTTP server, as a (re)started runtime has them.
  void Serve() {
    if (server_ != nullptr) server_->Stop();
    server_.reset();
    registry_ = std::make_unique<metrics::Registry>();
    options_.metrics = registry_.get();
    audit_ = std::make_unique<AuditLog>(state_.get(), registry_.get());
    audit_->RequireAdmins(access_.get());
    options_.audit = audit_.get();
    api_ = std::make_unique<SessionApi>(harness_.get(), state_.get(), options_);
    server_ =
        std::make_unique<http::HttpServer>(http::HttpServerOptions{.registry = registry_.get()});
    ASSERT_TRUE(api_->Register(server_.get()).ok());
    ASSERT_TRUE(audit_->Register(server_.get()).ok());
    ASSERT_TRUE(server_->Start().ok());
  }

  std::pair<int, json> Send(const std::string& method, const std::string& path,
                            const std::string& body = "") {
    web::http::client::http_client client(server_->base_url());
    web::http::http_request request(method);
    request.set_request_uri(path);
    if (!body.empty()) request.set_body(body, "application/json");
    if (!token_.empty()) request.headers().add("Authorization", "Bearer " + token_);
    web::http::http_response response = client.request(request).get();
    const std::string text = response.extract_utf8string(true).get();
    last_www_authenticate_ = response.headers().has("WWW-Authenticate")
                                 ? response.headers()["WWW-Authenticate"]
                                 : std::string();
    return {response.status_code(), json::parse(text, nullptr, false)};
  }
  // A message whose reply streams as server-sent events; the events.
  std::vector<http::SseEvent> StreamMessage(const std::string& content) {
    web::http::client::http_client client(server_->base_url());
    web::http::http_request request("POST");
    request.set_request_uri("/v1/sessions/s1/messages");
    request.set_body(json{{"content", content}, {"stream", true}}.dump(), "application/json");
    const std::string body = client.request(request).get().extract_utf8string(true).get();
    return http::SseParser().Feed(body);
  }
  std::pair<int, json> Message(const std::string& content) {
    return Send("POST", "/v1/sessions/s1/messages", json{{"content", content}}.dump());
  }
  size_t ToolRequests() {
    std::lock_guard<std::mutex> lock(mu_);
    return tool_requests_.size();
  }
  std::vector<json> Audit(const std::string& action) {
    std::vector<json> out;
    const json page = Send("GET", "/v1/audit?limit=1000").second;
    for (const json& r : page["records"]) {
      if (r["action"] == action) out.push_back(r);
    }
    return out;
  }

  harness::LocalDataPlane plane_;
  std::unique_ptr<Access> access_;  // set before StartRuntime to turn authentication on
  std::string token_;               // the bearer token Send sends
  std::string last_www_authenticate_;
  testing::ScriptedNode node_;
  std::string socket_dir_;
  metrics::Registry tool_registry_;
  std::unique_ptr<metrics::Registry> registry_;
  SessionApiOptions options_;
  std::atomic<int64_t> now_ms_{std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()};
  std::unique_ptr<http::HttpServer> tools_server_;
  std::mutex mu_;
  std::vector<http::HttpRequest> tool_requests_;
  std::unique_ptr<harness::StateClient> state_;
  std::unique_ptr<tools::Toolbox> toolbox_;
  std::unique_ptr<harness::NodeClient> node_client_;
  std::unique_ptr<harness::Harness> harness_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<SessionApi> api_;
  std::unique_ptr<http::HttpServer> server_;
};

TEST_F(ToolLoopTest, ACallRunsAndTheModelAnswersFromItsResult) {
  StartRuntime(4);
  node_.Script({Call("get_ticket", {{"id", 4821}}), "Ticket 4821 is open."});
  const auto [status, reply] = Message("What is the status of ticket 4821?");
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(reply["content"], "Ticket 4821 is open.");
  EXPECT_EQ(reply["finish_reason"], "stop");
  ASSERT_EQ(reply["tool_calls"].size(), 1u) << reply.dump();
  const json& call = reply["tool_calls"][0];
  EXPECT_EQ(call["name"], "get_ticket");
  EXPECT_EQ(call["arguments"], (json{{"id", 4821}}));
  EXPECT_EQ(call["ok"], true);
  EXPECT_EQ(json::parse(call["content"].get<std::string>()),
            (json{{"id", "4821"}, {"status", "open"}}));
  EXPECT_EQ(reply["usage"]["completion_tokens"], 10);  // both steps

  // The tool server saw who the agent acted for.
  ASSERT_EQ(ToolRequests(), 1u);
  EXPECT_EQ(tool_requests_[0].Header("x-agentry-on-behalf-of"), "alice");
  EXPECT_EQ(tool_requests_[0].Header("x-agentry-session"), "s1");
  EXPECT_EQ(tool_requests_[0].Header("x-agentry-tool-call"), call["id"]);

  // Each step asked for the tool-call constraint; the second sent only the result.
  const std::vector<testing::nodepb::GenerateRequest> requests = node_.requests();
  ASSERT_EQ(requests.size(), 2u);
  for (const auto& r : requests) {
    ASSERT_EQ(r.tool_calls().tools_size(), 3);
    EXPECT_EQ(r.tool_calls().open(), "<tool_call>");
    EXPECT_EQ(r.tool_calls().tools(0).name(), "get_ticket");
  }
  ASSERT_EQ(requests[1].messages_size(), 1);
  EXPECT_EQ(requests[1].messages(0).role(), "tool");
  EXPECT_EQ(requests[1].messages(0).content(), call["content"]);

  // The transcript holds the call and its result under one id.
  const json transcript = Send("GET", "/v1/sessions/s1").second["transcript"];
  ASSERT_EQ(transcript.size(), 4u) << transcript.dump();
  EXPECT_EQ(transcript[1]["role"], "assistant");
  EXPECT_EQ(transcript[1]["name"], "get_ticket");
  EXPECT_EQ(transcript[1]["tool_call_id"], call["id"]);
  EXPECT_EQ(transcript[2]["role"], "tool");
  EXPECT_EQ(transcript[2]["tool_call_id"], call["id"]);
  EXPECT_EQ(transcript[3]["content"], "Ticket 4821 is open.");

  // Audited: two model calls and the tool call, with the result's digest.
  EXPECT_EQ(Audit("model.call").size(), 2u);
  const std::vector<json> tool_calls = Audit("tool.call");
  ASSERT_EQ(tool_calls.size(), 1u);
  const json& details = tool_calls[0]["details"];
  EXPECT_EQ(details["tool"], "get_ticket");
  EXPECT_EQ(details["on_behalf_of"], "alice");
  EXPECT_EQ(details["http_status"], 200);
  EXPECT_EQ(details["result_sha256"].get<std::string>().size(), 64u);
}

// A streaming client sees each call as a tool_call event before it runs and a tool_result
// event after, and as text only the answer: never the call's own tokens.
TEST_F(ToolLoopTest, AStreamShowsCallsAsEventsAndOnlyTheAnswerAsText) {
  StartRuntime(4);
  node_.Script({Call("get_ticket", {{"id", 4821}}), "Ticket 4821 is open."});
  const std::vector<http::SseEvent> events = StreamMessage("What is the status of ticket 4821?");
  std::vector<std::string> names;
  std::string text;
  for (const http::SseEvent& e : events) {
    if (names.empty() || names.back() != e.name) names.push_back(e.name);
    if (e.name == "token") text += json::parse(e.data)["text"].get<std::string>();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"tool_call", "tool_result", "token", "done"}));
  EXPECT_EQ(text, "Ticket 4821 is open.");
  ASSERT_GE(events.size(), 3u);
  const json call = json::parse(events[0].data);
  EXPECT_EQ(call["name"], "get_ticket");
  EXPECT_EQ(call["arguments"], (json{{"id", 4821}}));
  const json result = json::parse(events[1].data);
  EXPECT_EQ(result["id"], call["id"]);
  EXPECT_EQ(result["ok"], true);
  EXPECT_EQ(json::parse(result["content"].get<std::string>())["status"], "open");
  EXPECT_EQ(json::parse(events.back().data)["tool_calls"][0]["id"], call["id"]);
}

TEST_F(ToolLoopTest, EgressOutsideTheAllowListIsTheModelsResultAndNothingIsSent) {
  StartRuntime(4);
  node_.Script({Call("get_outside", {{"id", 1}}), "I cannot reach that system."});
  const auto [status, reply] = Message("Look up ticket 1 outside.");
  ASSERT_EQ(status, 200) << reply.dump();
  ASSERT_EQ(reply["tool_calls"].size(), 1u);
  EXPECT_EQ(reply["tool_calls"][0]["ok"], false);
  EXPECT_EQ(reply["tool_calls"][0]["error"],
            "egress to outside.example.com:80 is not in spec.egress.allow");
  EXPECT_EQ(node_.requests()[1].messages(0).content(),
            R"({"error":"egress to outside.example.com:80 is not in spec.egress.allow"})");
  EXPECT_EQ(reply["content"], "I cannot reach that system.");
}

TEST_F(ToolLoopTest, MaxToolStepsEndsTheTurn) {
  StartRuntime(2);
  node_.Script({Call("get_ticket", {{"id", 1}}), Call("get_ticket", {{"id", 2}}),
                Call("get_ticket", {{"id", 3}})});
  const auto [status, reply] = Message("Look everything up.");
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(reply["finish_reason"], "tool_steps_exhausted");
  EXPECT_EQ(reply["tool_calls"].size(), 2u);
  EXPECT_EQ(ToolRequests(), 2u);  // the third call was not run
  EXPECT_EQ(Audit("turn.tool_steps_exhausted").size(), 1u);
}

TEST_F(ToolLoopTest, ToolCallsPerSessionIsABudgetAcrossTurns) {
  StartRuntime(8, 1);
  node_.Script(
      {Call("get_ticket", {{"id", 1}}), "Ticket 1 is open.", Call("get_ticket", {{"id", 2}})});
  ASSERT_EQ(Message("Ticket 1?").second["finish_reason"], "stop");
  const auto [status, reply] = Message("Ticket 2?");
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(reply["finish_reason"], "budget_exhausted");
  EXPECT_EQ(reply["tool_calls"].size(), 0u);
  EXPECT_EQ(ToolRequests(), 1u);
  EXPECT_EQ(Send("GET", "/v1/sessions/s1").second["usage"]["tool_calls"], 1);
  // The agent's day: the API and the metric agree.
  const json day = Send("GET", "/v1/usage").second;
  EXPECT_EQ(day["agent"], "team-a/triage");
  EXPECT_EQ(day["usage"]["tool_calls"], 1);
  EXPECT_EQ(day["usage"]["completion_tokens"], 15);  // three scripted steps of 5
  const std::string metrics = metrics::SerializeTextFormat(registry_->Collect());
  EXPECT_NE(metrics.find("agentry_runtime_agent_usage_today{counter=\"tool_calls\"} 1"),
            std::string::npos)
      << metrics;
}

TEST_F(ToolLoopTest, DeleteDuringASlowToolEndsTheTurnAtOnce) {
  StartRuntime(4);
  node_.Script({Call("get_ticket", {{"id", 999}}), "never read"});
  std::pair<int, json> reply;
  std::thread turn([&] { reply = Message("Ticket 999?"); });
  while (ToolRequests() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Send("DELETE", "/v1/sessions/s1").first, 200);
  turn.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ASSERT_EQ(reply.first, 200) << reply.second.dump();
  ASSERT_EQ(reply.second["tool_calls"].size(), 1u);
  EXPECT_EQ(reply.second["tool_calls"][0]["error"], "stopped");
  EXPECT_EQ(node_.requests().size(), 1u);  // the model never saw a result
  EXPECT_EQ(Audit("tool.call").size(), 1u);
}

// maxDuration (2h by default) passing mid-turn ends the turn as budget_exhausted: after a tool
// call that outlasted it (the model never sees the result), and in the middle of a reply.
TEST_F(ToolLoopTest, MaxDurationEndsTheTurnDuringAToolCallOrAReply) {
  StartRuntime(4);
  node_.Script({Call("get_ticket", {{"id", 998}}), "never read"});
  const auto [status, reply] = Message("Ticket 998?");
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(reply["finish_reason"], "budget_exhausted");
  ASSERT_EQ(reply["tool_calls"].size(), 1u);
  EXPECT_EQ(node_.requests().size(), 1u);
  const std::vector<json> stops = Audit("budget.exhausted");
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0]["details"]["message"], "maxDuration 2h reached during the turn");
  const auto [refused, why] = Message("And now?");
  EXPECT_EQ(refused, 400);
  EXPECT_NE(why.dump().find("budget_exhausted: session s1 is older than its maxDuration"),
            std::string::npos)
      << why.dump();

  // The state sidecar stamps a new session with the real clock.
  now_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  ASSERT_EQ(Send("POST", "/v1/sessions", R"({"id":"s2","on_behalf_of":"alice"})").first, 201);
  node_.OnGenerate([this] { now_ms_ += int64_t{3} * 3600 * 1000; });
  node_.Script({"A reply the clock runs out on."});
  const auto [cut_status, cut] =
      Send("POST", "/v1/sessions/s2/messages", json{{"content", "Hello"}}.dump());
  ASSERT_EQ(cut_status, 200) << cut.dump();
  EXPECT_EQ(cut["finish_reason"], "budget_exhausted");
  EXPECT_EQ(Audit("budget.exhausted").size(), 2u);
}

TEST_F(ToolLoopTest, ACallThatNeedsApprovalWaitsAndRunsExactlyAsPausedAfterARestart) {
  StartRuntime(4);
  node_.Script({Call("close_ticket", {{"id", 77}}), "Closed ticket 77."});
  const auto [status, paused] = Message("Close ticket 77.");
  ASSERT_EQ(status, 200) << paused.dump();
  EXPECT_EQ(paused["finish_reason"], "waiting_approval");
  const std::string call_id = paused["pending_approval"]["call_id"];
  EXPECT_EQ(paused["pending_approval"]["arguments"], (json{{"id", 77}}));
  EXPECT_EQ(ToolRequests(), 0u);  // nothing ran
  const json session = Send("GET", "/v1/sessions/s1").second;
  EXPECT_EQ(session["state"], "waiting_approval");
  EXPECT_EQ(session["pending_approval"]["call_id"], call_id);
  EXPECT_EQ(session["pending_approval"]["name"], "close_ticket");
  // Messages wait for the decision.
  const auto waiting = Message("Hello?");
  EXPECT_EQ(waiting.first, 409) << waiting.second.dump();
  EXPECT_NE(waiting.second.dump().find("is waiting for approval"), std::string::npos);

  Serve();  // the runtime restarts: the pause is in the session's record
  EXPECT_EQ(
      Send("POST", "/v1/sessions/s1/approvals/call_nope", R"({"decision":"approve","user":"bob"})")
          .first,
      404);
  EXPECT_EQ(Send("POST", "/v1/sessions/s1/approvals/" + call_id, R"({"decision":"maybe"})").first,
            400);
  const auto [approved_status, approved] = Send("POST", "/v1/sessions/s1/approvals/" + call_id,
                                                R"({"decision":"approve","user":"bob"})");
  ASSERT_EQ(approved_status, 200) << approved.dump();
  EXPECT_EQ(approved["content"], "Closed ticket 77.");
  ASSERT_EQ(approved["tool_calls"].size(), 1u);
  EXPECT_EQ(approved["tool_calls"][0]["id"], call_id);
  EXPECT_EQ(approved["tool_calls"][0]["ok"], true);
  ASSERT_EQ(ToolRequests(), 1u);
  EXPECT_EQ(tool_requests_[0].path_params.at("id"), "77");
  EXPECT_EQ(tool_requests_[0].Header("x-agentry-tool-call"), call_id);
  EXPECT_EQ(Send("GET", "/v1/sessions/s1").second["state"], "active");
  // Deciding twice is refused: the call is no longer waiting.
  EXPECT_EQ(
      Send("POST", "/v1/sessions/s1/approvals/" + call_id, R"({"decision":"approve","user":"bob"})")
          .first,
      400);
  const std::vector<json> grants = Audit("approval.grant");
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0]["actor"], "user:bob");
  EXPECT_EQ(Audit("approval.request").size(), 1u);
}

// A session waiting for approval is open: it counts against maxConcurrent.
TEST_F(ToolLoopTest, ASessionWaitingForApprovalCountsAgainstMaxConcurrent) {
  StartRuntime(4);
  options_.limits.max_concurrent = 1;
  Serve();
  node_.Script({Call("close_ticket", {{"id", 77}})});
  ASSERT_EQ(Message("Close ticket 77.").second["finish_reason"], "waiting_approval");
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"s2","on_behalf_of":"alice"})").first, 429);
  ASSERT_EQ(Send("POST",
                 "/v1/sessions/s1/approvals/" + Send("GET", "/v1/sessions/s1")
                                                    .second["pending_approval"]["call_id"]
                                                    .get<std::string>(),
                 R"({"decision":"deny","user":"bob"})")
                .first,
            200);
  EXPECT_EQ(Send("DELETE", "/v1/sessions/s1").first, 200);
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"s2","on_behalf_of":"alice"})").first, 201);
}

TEST_F(ToolLoopTest, ADenialIsTheToolsResultForTheModel) {
  StartRuntime(4);
  node_.Script({Call("close_ticket", {{"id", 5}}), "I did not close it."});
  const std::string call_id = Message("Close 5.").second["pending_approval"]["call_id"];
  const auto [status, reply] = Send("POST", "/v1/sessions/s1/approvals/" + call_id,
                                    R"({"decision":"deny","user":"bob","reason":"still in use"})");
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(reply["content"], "I did not close it.");
  EXPECT_EQ(ToolRequests(), 0u);
  const std::vector<testing::nodepb::GenerateRequest> requests = node_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].messages(0).role(), "tool");
  EXPECT_EQ(requests[1].messages(0).content(), R"({"error":"denied by bob: still in use"})");
  const std::vector<json> denials = Audit("approval.deny");
  ASSERT_EQ(denials.size(), 1u);
  EXPECT_EQ(denials[0]["details"]["reason"], "still in use");
}

TEST_F(ToolLoopTest, AnApprovalThatTimesOutIsDeniedAheadOfTheNextMessage) {
  StartRuntime(4);
  node_.Script({Call("close_ticket", {{"id", 6}}), "Anything else?"});
  const std::string call_id = Message("Close 6.").second["pending_approval"]["call_id"];
  now_ms_ += int64_t{11} * 60 * 1000;  // past the 10 minute approvalTimeout
  const auto late = Send("POST", "/v1/sessions/s1/approvals/" + call_id,
                         R"({"decision":"approve","user":"bob"})");
  EXPECT_EQ(late.first, 400);
  EXPECT_NE(late.second.dump().find("timed out after 10m"), std::string::npos)
      << late.second.dump();
  const auto [status, reply] = Message("Never mind.");
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(ToolRequests(), 0u);
  const std::vector<testing::nodepb::GenerateRequest> requests = node_.requests();
  ASSERT_EQ(requests.size(), 2u);
  ASSERT_EQ(requests[1].messages_size(), 2);  // the timed-out result, then the message
  EXPECT_EQ(requests[1].messages(0).content(), R"({"error":"approval timed out after 10m"})");
  EXPECT_EQ(requests[1].messages(1).content(), "Never mind.");
  EXPECT_EQ(Audit("approval.timeout").size(), 1u);
}

// `agentry approve` finds the pending call itself, says what it decides, and prints the reply.
TEST_F(ToolLoopTest, AgentryApproveDecidesThePendingCall) {
  StartRuntime(4);
  node_.Script({Call("close_ticket", {{"id", 5}}), "Left it open."});
  const std::string call_id = Message("Close 5.").second["pending_approval"]["call_id"];
  const std::string command = std::string(AGENTRY_BINARY) + " approve s1 --url " +
                              server_->base_url() + " --user bob --deny --reason 'not now' 2>&1";
  FILE* out = popen(command.c_str(), "r");
  ASSERT_NE(out, nullptr);
  std::string text;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), out)) text.append(buffer, n);
  EXPECT_EQ(WEXITSTATUS(pclose(out)), 0) << text;
  EXPECT_EQ(text, "denying " + call_id + " close_ticket({\"id\":5})\nLeft it open.\n");
  EXPECT_EQ(node_.requests()[1].messages(0).content(), R"({"error":"denied by bob: not now"})");
  // Nothing is waiting any more: a second run says so and fails.
  out = popen(command.c_str(), "r");
  text.clear();
  while (size_t n = fread(buffer, 1, sizeof(buffer), out)) text.append(buffer, n);
  EXPECT_EQ(WEXITSTATUS(pclose(out)), 1);
  EXPECT_EQ(text, "agentry approve: session s1 has no call waiting for approval\n");
}

TEST_F(ToolLoopTest, ASessionIsVisibleOnlyToItsPrincipalAndAdministrators) {
  const std::string tokens = socket_dir_ + "/tokens";
  std::ofstream(tokens) << "tok-alice,alice\ntok-bob,bob\ntok-root,root,agentry:admins\n";
  access_ = std::make_unique<Access>(std::make_unique<TokensFile>(tokens));
  token_ = "tok-alice";
  StartRuntime(4);  // alice creates s1
  EXPECT_EQ(Send("GET", "/v1/sessions/s1").second["metadata"]["principal"], "alice");

  token_ = "tok-bob";
  EXPECT_EQ(Send("GET", "/v1/sessions/s1").first, 403);
  EXPECT_EQ(Message("hi").first, 403);
  EXPECT_EQ(Send("POST", "/v1/sessions/s1/cancel").first, 403);
  EXPECT_EQ(Send("DELETE", "/v1/sessions/s1").first, 403);
  EXPECT_EQ(Send("POST", "/v1/sessions", R"({"id":"s1"})").first, 403);
  EXPECT_EQ(Send("GET", "/v1/sessions").second["sessions"].size(), 0u);
  EXPECT_EQ(Send("GET", "/v1/audit").first, 403);

  token_ = "";
  EXPECT_EQ(Send("GET", "/v1/sessions/s1").first, 401);
  EXPECT_EQ(last_www_authenticate_, "Bearer");
  token_ = "tok-unknown";
  EXPECT_EQ(Send("GET", "/v1/sessions").first, 401);

  token_ = "tok-root";
  EXPECT_EQ(Send("GET", "/v1/sessions/s1").first, 200);
  EXPECT_EQ(Send("GET", "/v1/sessions").second["sessions"].size(), 1u);
  EXPECT_EQ(Send("GET", "/v1/audit").first, 200);

  // The approval is decided by the caller, whatever the body says.
  token_ = "tok-alice";
  node_.Script({Call("close_ticket", {{"id", 8}}), "Closed 8."});
  const std::string call_id = Message("Close 8.").second["pending_approval"]["call_id"];
  const auto decided = Send("POST", "/v1/sessions/s1/approvals/" + call_id,
                            R"({"decision":"approve","user":"mallory"})");
  ASSERT_EQ(decided.first, 200) << decided.second.dump();
  token_ = "tok-root";
  const std::vector<json> grants = Audit("approval.grant");
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0]["actor"], "user:alice");
  EXPECT_EQ(grants[0]["details"]["principal"], "alice");

  // The CLI sends $AGENTRY_TOKEN.
  const auto verify = [&](const std::string& token) {
    const std::string command = "AGENTRY_TOKEN=" + token + " " + AGENTRY_BINARY +
                                " audit verify --url " + server_->base_url() + " 2>&1";
    FILE* out = popen(command.c_str(), "r");
    std::string text;
    char buffer[4096];
    while (size_t n = fread(buffer, 1, sizeof(buffer), out)) text.append(buffer, n);
    return std::make_pair(WEXITSTATUS(pclose(out)), text);
  };
  EXPECT_EQ(verify("tok-root").first, 0);
  const auto refused = verify("tok-bob");
  EXPECT_EQ(refused.first, 1);
  EXPECT_NE(refused.second.find("PERMISSION_DENIED: the audit log is for administrators"),
            std::string::npos)
      << refused.second;
}

}  // namespace
}  // namespace agentry::api
