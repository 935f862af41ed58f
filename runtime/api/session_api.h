// runtime/api/session_api.h — the runtime's session HTTP API (docs/api.md), over the harness.
//
//   POST   /v1/sessions                 {"id"?, "on_behalf_of"?}      → 201 the session
//   GET    /v1/sessions                 ?state=                       → {"sessions": [...]}
//   GET    /v1/sessions/{id}            the session, its transcript and usage
//   POST   /v1/sessions/{id}/messages   {"content", "stream"?}        → the reply, or SSE
//   POST   /v1/sessions/{id}/cancel     stops its running turn at once; the session stays open
//   DELETE /v1/sessions/{id}            stops its running turn at once and closes it
//   GET    /v1/usage                    ?day=  the agent's usage that day (administrators)
//   POST   /v1/sessions/{id}/approvals/{call}  {"decision": "approve"|"deny", "reason"?,
//                                       "user"}  decides the paused call; the turn goes on
//
// A call of a tool with requiresApproval pauses the session in "waiting_approval" with the
// call (id, tool, arguments) in its metadata's pending_approval, so it survives a runtime
// restart; the decision runs exactly that call (or gives the model the denial as its result).
// Messages wait until then (409); one after spec.sessions.approvalTimeout settles the call as
// denied ("approval timed out") ahead of the message.
//
// One turn at a time per session: a message to a session whose turn is running is 409.
// Errors are {"error": {"code", "message"}} with the status for the code (common/http).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/http/server.h"
#include "common/metrics/registry.h"
#include "common/status.h"
#include "runtime/api/audit_log.h"
#include "runtime/api/authenticator.h"
#include "runtime/api/session_policy.h"
#include "runtime/api/token_budget.h"
#include "runtime/harness/harness.h"
#include "runtime/harness/state_client.h"
#include "runtime/tools/toolbox.h"

namespace agentry::api {

// A turn BeginTurn admitted: the session as read after the turn was marked running (so no
// other turn of this runtime changes it before the harness appends), and the flag that stops it.
struct AdmittedTurn {
  agentry::state::v1::Session session;
  std::shared_ptr<std::atomic<bool>> stop;
  int32_t max_tokens = 0;       // what a token budget leaves this reply; 0: no budget applies
  int64_t tool_calls_used = 0;  // by the session's earlier turns
  // maxDuration: at this time (unix ms) the turn ends with finish_reason budget_exhausted,
  // mid-reply or mid-tool call.
  int64_t deadline_ms = INT64_MAX;
  // Results that go ahead of the user message: a paused call settled as timed out.
  std::vector<harness::ToolResultEvent> before{};
};

// Where a running turn reports as it goes: the answer's text (false from it stops the turn:
// the client is gone) and each tool step, for the SSE stream: "tool_call" (id, name,
// arguments) before the call runs or waits for approval, "tool_result" (the step as the reply
// lists it) after.
struct TurnSink {
  std::function<bool(const std::string&)> text;
  std::function<void(std::string_view event, const nlohmann::json& data)> step = {};
};

// The session state of a paused call, and where its metadata keeps the call.
inline constexpr std::string_view kWaitingApproval = "waiting_approval";
inline constexpr const char* kPendingApprovalKey = "pending_approval";

// A call waiting for approval, as the session's metadata keeps it.
struct PendingCall {
  std::string call_id;
  std::string name;
  nlohmann::json arguments;
  int64_t requested_unix_ms = 0;
};

struct ApprovalDecision {
  bool approve = false;
  std::string by;  // who decided
  std::string reason;
};

struct SessionApiOptions {
  SessionLimits limits;
  TokenBudgets budgets;
  // spec.identity.onBehalfOf: "required" (every session names the user it acts for),
  // "optional", or "never" (the agent acts only as itself).
  std::string on_behalf_of = "optional";
  std::function<int64_t()> now_ms;       // default: the system clock
  metrics::Registry* metrics = nullptr;  // may be null
  AuditLog* audit = nullptr;             // may be null: nothing is recorded
  // Who may call (authenticator.h); null: everyone, as an administrator.
  Access* access = nullptr;
  // The agent's tools (may be null: replies are never tool calls). A reply that calls one
  // runs it and gives the model its result, up to `max_tool_steps` calls a turn and
  // `tool_calls_per_session` (unset: unlimited) a session.
  const tools::Toolbox* toolbox = nullptr;
  int64_t max_tool_steps = 8;
  std::optional<int64_t> tool_calls_per_session{};
};

// What one replica reports on itself in its agent's status (status.runtimes, written by
// StatusReporter): its open sessions and its counters for `day` (UTC).
struct ReplicaReport {
  std::string day{};
  int64_t sessions = 0;  // active (not expired) or waiting for approval
  int64_t tokens_today = 0;
  int64_t tool_calls_today = 0;
  // Turns are refused because this replica's share of tokensPerDay is used up; `message` is
  // the 429's.
  bool budget_exhausted = false;
  std::string message{};
  // Why the node daemon cannot run the agent's model ("": it can); not SessionApi's to read.
  std::string model_error{};
  bool operator==(const ReplicaReport&) const = default;
};

class SessionApi {
 public:
  SessionApi(harness::Harness* harness, harness::StateClient* state,
             const SessionApiOptions& options = {});
  Status Register(http::HttpServer* server);

  // OK when a new session may open (maxConcurrent); else RESOURCE_EXHAUSTED and the seconds
  // to wait.
  Status MayOpen(int64_t* retry_after_seconds);
  // Marks the session as running a turn (ABORTED when one already runs), then checks its
  // limits (an expired one is marked "expired" and the mark is taken back). DELETE sets the
  // returned turn's stop flag. Every route that runs turns goes through BeginTurn and RunTurn.
  // A token budget used up is refused here too (`*retry_after_seconds` set for the day's).
  // A session waiting for approval takes no message (FAILED_PRECONDITION naming the call)
  // until the approval times out; `resuming` admits the decision's turn instead.
  StatusOr<AdmittedTurn> BeginTurn(const std::string& id, int64_t* retry_after_seconds = nullptr,
                                   bool resuming = false);
  // The harness's turn, counted in the metrics; ends the turn BeginTurn began. `on_text`
  // returns false to stop the turn (its client went away), as DELETE does. A reply that
  // calls a tool runs it (audited as tool.call) and the model goes on from its result, each
  // step a model.call; the turn's reply is the last step's, with every call in tool_steps.
  StatusOr<harness::TurnReply> RunTurn(const AdmittedTurn& turn, const std::string& content,
                                       const TurnSink& sink);
  // The kill switch (spec.suspend): suspending stops every running turn at once (each keeps
  // its partial reply, finish reason cancelled) and refuses new sessions and turns with 503
  // until resumed. Each change is an audit record (agent.suspend, agent.resume).
  void SetSuspended(bool suspended);
  // This replica's report, read from the state sidecar now.
  StatusOr<ReplicaReport> ReadReplicaReport() const;
  bool suspended() const { return suspended_.load(); }

  // Whether a new session may have this on-behalf-of user under spec.identity.onBehalfOf;
  // `field` names it in the error (on_behalf_of, or the OpenAI body's user).
  Status CheckOnBehalfOf(const std::string& on_behalf_of, const std::string& field) const;

  // The caller (UNAUTHENTICATED without a valid token); and the caller, when they may use
  // session `session_id` (PERMISSION_DENIED when it is another principal's).
  StatusOr<Principal> Caller(const http::HttpRequest& request) const;
  StatusOr<Principal> Authorize(const http::HttpRequest& request,
                                const std::string& session_id) const;
  // The principal that created `session` ("" before authentication was on).
  static std::string Owner(const agentry::state::v1::Session& session);
  // A new session's metadata: who created it.
  std::string OwnerMetadata(const Principal& caller) const;
  // An error answer: the status for its code (common/http), 507 when the state volume is full;
  // 429 carries Retry-After.
  static http::HttpResponse ErrorResponse(const Status& status, int64_t retry_after_seconds = 0);

 private:
  http::HttpResponse Create(const http::HttpRequest& request);
  http::HttpResponse List(const http::HttpRequest& request);
  http::HttpResponse Get(const http::HttpRequest& request);
  http::HttpResponse Message(const http::HttpRequest& request);
  http::HttpResponse Cancel(const http::HttpRequest& request);
  http::HttpResponse Delete(const http::HttpRequest& request);
  http::HttpResponse Approve(const http::HttpRequest& request);
  // GET /v1/usage?day=YYYY-MM-DD: the agent's counters for a day (UTC; default today).
  http::HttpResponse Usage(const http::HttpRequest& request);
  StatusOr<agentry::state::v1::Usage> DayUsage(const std::string& day) const;
  // Sessions by state (at most the sidecar's first 1000): active, expired (active past a
  // limit), closed, waiting_approval.
  StatusOr<std::map<std::string, int64_t>> SessionsByState() const;
  // Answers a turn's reply: JSON, or server-sent events when the client asked for them.
  http::HttpResponse Respond(bool stream,
                             std::function<StatusOr<harness::TurnReply>(const TurnSink&)> run);

  // Sets the stop flag of the session's running turn; false when none runs.
  bool StopRunningTurn(const std::string& id);

  void EndTurn(const std::string& id);
  // The decided call of a paused turn run (or denied), then the loop as in RunTurn.
  StatusOr<harness::TurnReply> ResumeTurn(const AdmittedTurn& turn, const PendingCall& pending,
                                          const ApprovalDecision& decision, const TurnSink& sink);
  // The tool loop from a turn's first reply: runs what it calls until the model answers, a
  // limit stops it, or a call must wait for approval. Ends the turn.
  StatusOr<harness::TurnReply> ToolLoop(const AdmittedTurn& turn,
                                        StatusOr<harness::TurnReply> reply,
                                        std::vector<nlohmann::json> steps, const TurnSink& sink);
  // The call the session waits to have approved, from its record; nullopt when none.
  static std::optional<PendingCall> PendingApproval(const agentry::state::v1::Session& session);
  // Back to "active", the pending call removed from the metadata.
  Status SettleApproval(const agentry::state::v1::Session& session);
  // The session's state and its pending call (null: none) in one read-modify-write of
  // its metadata.
  Status SetApprovalState(const agentry::state::v1::Session& session, std::string_view state,
                          const nlohmann::json& pending);
  // A tool step as the turn's reply lists it.
  static nlohmann::json StepJson(const std::string& call_id, const runtime::ToolCall& call,
                                 const tools::ToolOutcome& out);
  // Appends `step`'s result to the transcript and lets the model go on from it.
  StatusOr<harness::TurnReply> ContinueAfter(const AdmittedTurn& turn, const nlohmann::json& step,
                                             int32_t max_tokens,
                                             const std::function<bool(const std::string&)>& stream);
  Status PauseForApproval(const AdmittedTurn& turn, harness::TurnReply& reply);
  std::function<bool(const std::string&)> Streamer(
      const AdmittedTurn& turn, const std::function<bool(const std::string&)>& on_text);
  StatusOr<harness::TurnReply> TimedStep(const AdmittedTurn& turn,
                                         const std::function<StatusOr<harness::TurnReply>()>& step);
  bool ReachedBudget(const harness::TurnReply& reply, int32_t max_tokens) const;
  bool PastDeadline(const AdmittedTurn& turn) const { return now_ms_() >= turn.deadline_ms; }
  // Ends `reply` as budget_exhausted by maxDuration, and records it.
  void EndAtDeadline(const AdmittedTurn& turn, harness::TurnReply& reply);
  // One model step of a turn: audited (model.call or turn.error) and counted.
  void RecordStep(const AdmittedTurn& turn, const StatusOr<harness::TurnReply>& reply,
                  double seconds);
  // Runs the tool call `reply` holds; its record for the turn's tool_steps.
  nlohmann::json RunTool(const AdmittedTurn& turn, const runtime::ToolCall& call,
                         const std::string& call_id);
  Status RefuseIfSuspended() const;

  // An audit record for a step of session `session` (no-op without an AuditLog).
  void Audit(const std::string& actor, const std::string& action,
             const agentry::state::v1::Session& session, nlohmann::json details);
  // Who asked for an API action, until callers authenticate: the session's user.
  static std::string Requester(const agentry::state::v1::Session& session);

  harness::Harness* harness_;
  harness::StateClient* state_;
  SessionPolicy policy_;
  TokenBudget budget_;
  std::string on_behalf_of_policy_;
  AuditLog* audit_ = nullptr;
  Access* access_ = nullptr;
  const tools::Toolbox* toolbox_ = nullptr;
  int64_t max_tool_steps_ = 8;
  std::optional<int64_t> tool_calls_per_session_;
  std::function<int64_t()> now_ms_;
  metrics::Family<metrics::Counter>* tool_calls_ = nullptr;
  metrics::Family<metrics::Histogram>* tool_seconds_ = nullptr;
  metrics::Family<metrics::Counter>* turns_ = nullptr;
  metrics::Histogram* turn_seconds_ = nullptr;
  metrics::Family<metrics::Counter>* tokens_ = nullptr;
  metrics::Gauge* turns_running_ = nullptr;
  metrics::Family<metrics::Counter>* kv_sources_ = nullptr;
  metrics::Family<metrics::Counter>* refusals_ = nullptr;
  std::atomic<bool> suspended_{false};
  std::mutex mu_;
  // Sessions with a turn running, and the flag that stops it.
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> running_;
};

}  // namespace agentry::api
