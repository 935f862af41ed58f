#include "runtime/api/session_api.h"

#include <chrono>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "common/utc_day.h"

namespace agentry::api {
namespace {

using http::HttpRequest;
using http::HttpResponse;
using Json = nlohmann::json;
namespace statepb = agentry::state::v1;

constexpr size_t kMaxMessageBytes = size_t{256} << 10;

Json SessionJson(const statepb::Session& s) {
  Json meta = Json::parse(s.metadata_json(), nullptr, /*allow_exceptions=*/false);
  return {{"id", s.id()},
          {"agent", s.agent()},
          {"on_behalf_of", s.on_behalf_of()},
          {"state", s.state()},
          {"created_unix_ms", s.created_unix_ms()},
          {"updated_unix_ms", s.updated_unix_ms()},
          {"events", s.next_seq() - 1},
          {"metadata", meta.is_discarded() ? Json::object() : meta},
          {"pending_approval", meta.is_object() && meta.contains(kPendingApprovalKey)
                                   ? meta[kPendingApprovalKey]
                                   : Json()}};
}

std::string NewSessionId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = "s-";
  uint64_t bits = rng();
  for (int i = 0; i < 16; ++i, bits >>= 4) id += kHex[bits & 15];
  return id;
}

std::string FinishReasonName(harness::nodepb::FinishReason r) {
  switch (r) {
    case harness::nodepb::FINISH_REASON_STOP:
      return "stop";
    case harness::nodepb::FINISH_REASON_LENGTH:
      return "length";
    case harness::nodepb::FINISH_REASON_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

// Where the turn's KV came from (agentry_runtime_turn_kv_total, model.call records).
std::string KvSource(const harness::TurnReply& r) {
  if (r.restored) return "restored";
  if (r.rebuilt) return "rebuilt";
  return r.user_seq == 1 ? "first" : "hot";
}

// A tool step for the client that streams the turn (TurnSink).
void Report(const TurnSink& sink, std::string_view event, const Json& data) {
  if (sink.step) sink.step(event, data);
}

Json ReplyJson(const harness::TurnReply& r) {
  return {{"content", r.text},
          {"user_seq", r.user_seq},
          {"reply_seq", r.reply_seq},
          {"finish_reason", !r.pending_approval.is_null() ? "waiting_approval"
                            : r.budget_exhausted          ? "budget_exhausted"
                            : r.tool_steps_exhausted      ? "tool_steps_exhausted"
                                                          : FinishReasonName(r.finish_reason)},
          {"tool_calls", r.tool_steps},
          {"pending_approval", r.pending_approval},
          {"usage",
           {{"prompt_tokens", r.prompt_tokens},
            {"cached_tokens", r.cached_tokens},
            {"completion_tokens", r.generated_tokens}}},
          {"rebuilt", r.rebuilt},
          {"restored", r.restored},
          {"omitted_messages", r.omitted_messages}};
}

}  // namespace

SessionApi::SessionApi(harness::Harness* harness, harness::StateClient* state,
                       const SessionApiOptions& options)
    : harness_(harness),
      state_(state),
      policy_(options.limits),
      budget_(options.budgets),
      on_behalf_of_policy_(options.on_behalf_of),
      audit_(options.audit),
      access_(options.access),
      toolbox_(options.toolbox),
      max_tool_steps_(options.max_tool_steps),
      tool_calls_per_session_(options.tool_calls_per_session),
      now_ms_(options.now_ms ? options.now_ms : [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      }) {
  metrics::Registry* m = options.metrics;
  if (m == nullptr) return;
  turns_ = &m->AddCounter("agentry_runtime_turns_total", "Turns by result: ok, cancelled, error.",
                          {"result"});
  turn_seconds_ = &m->AddHistogram("agentry_runtime_turn_duration_seconds",
                                   "A turn from its message to its durable reply.", {},
                                   metrics::ExponentialBuckets(0.01, 2, 14))
                       .WithLabels({});
  tokens_ = &m->AddCounter("agentry_runtime_tokens_total",
                           "Tokens of turns by kind: prompt (prefilled), cached (reused from "
                           "the node daemon's KV), completion.",
                           {"kind"});
  tool_calls_ = &m->AddCounter(
      "agentry_runtime_tool_calls_total",
      "Tool calls by tool and result: ok, error (the tool failed or refused, egress included).",
      {"tool", "result"});
  tool_seconds_ = &m->AddHistogram("agentry_runtime_tool_call_duration_seconds",
                                   "A tool call from its start to its result.", {"tool"},
                                   metrics::ExponentialBuckets(0.005, 2, 14));
  turns_running_ =
      &m->AddGauge("agentry_runtime_turns_running", "Turns running now.").WithLabels({});
  kv_sources_ = &m->AddCounter(
      "agentry_runtime_turn_kv_total",
      "Turns by where the node daemon's KV for the conversation came from: hot (kept since the "
      "last turn), restored (a snapshot from the state sidecar), rebuilt (recomputed from the "
      "transcript), first (a session's first turn).",
      {"source"});
  // What clients are told to come back later for: the alerts on queueing sessions and on
  // budgets read these (docs/operations.md). Every reason starts at 0, so the first refusal
  // is an increase.
  refusals_ = &m->AddCounter(
      "agentry_runtime_refusals_total",
      "Requests refused before their turn ran, by reason: max_concurrent (a new session beyond "
      "maxConcurrent, 429), session_budget (the session's tokensPerSession, maxTurns or "
      "maxDuration used up, 400), daily_budget (the agent's tokensPerDay used up, 429).",
      {"reason"});
  for (const char* reason : {"max_concurrent", "session_budget", "daily_budget"}) {
    refusals_->WithLabels({reason});
  }
  // Sessions by state, read from the state sidecar at each scrape (at most 1000).
  metrics::Family<metrics::Gauge>* by_state =
      &m->AddGauge("agentry_runtime_sessions", "Sessions by state.", {"state"});
  m->AddCollectHook([this, by_state] {
    StatusOr<std::map<std::string, int64_t>> counts = SessionsByState();
    if (!counts.ok()) return;
    for (const auto& [state, n] : *counts) {
      by_state->WithLabels({state}).Set(static_cast<double>(n));
    }
  });
  // What the agent used today (UTC), from the sidecar's day counters at each scrape: what a
  // cost dashboard plots per agent, and what tokensPerDay is checked against. No `agent`
  // label: a runtime serves one agent, and the scrape names it (docs/operations.md), where
  // a label of its own would clash and be renamed exported_agent.
  metrics::Family<metrics::Gauge>* today = &m->AddGauge(
      "agentry_runtime_agent_usage_today",
      "The agent's usage today (UTC) by counter: prompt_tokens, completion_tokens, turns, "
      "tool_calls.",
      {"counter"});
  m->AddCollectHook([this, today] {
    StatusOr<statepb::Usage> usage = DayUsage(UtcDay(now_ms_()));
    if (!usage.ok()) return;
    for (const char* name : {"prompt_tokens", "completion_tokens", "turns", "tool_calls"}) {
      const auto it = usage->counters().find(name);
      today->WithLabels({name}).Set(
          it == usage->counters().end() ? 0.0 : static_cast<double>(it->second));
    }
  });
}

StatusOr<std::map<std::string, int64_t>> SessionApi::SessionsByState() const {
  statepb::ListSessionsRequest list;
  list.set_limit(1000);
  AGENTRY_ASSIGN_OR_RETURN(const statepb::ListSessionsResponse sessions,
                           state_->ListSessions(list));
  // Every state from the start, so a dashboard shows 0 rather than no data.
  std::map<std::string, int64_t> counts = {
      {"active", 0}, {"closed", 0}, {"expired", 0}, {std::string(kWaitingApproval), 0}};
  const int64_t now = now_ms_();
  for (const statepb::Session& s : sessions.sessions()) {
    const bool expired = s.state() == "active" && !policy_.Expiry(s, now).empty();
    ++counts[expired ? "expired" : s.state()];
  }
  return counts;
}

StatusOr<ReplicaReport> SessionApi::ReadReplicaReport() const {
  const int64_t now = now_ms_();
  ReplicaReport report;
  report.day = UtcDay(now);
  AGENTRY_ASSIGN_OR_RETURN(const auto by_state, SessionsByState());
  for (const auto& [state, n] : by_state) {
    if (state == "active" || state == kWaitingApproval) report.sessions += n;
  }
  AGENTRY_ASSIGN_OR_RETURN(const statepb::Usage day, DayUsage(report.day));
  const auto counter = [&day](const char* name) {
    const auto it = day.counters().find(name);
    return it == day.counters().end() ? int64_t{0} : it->second;
  };
  report.tokens_today = counter("prompt_tokens") + counter("completion_tokens");
  report.tool_calls_today = counter("tool_calls");
  int64_t retry_after = 0;
  StatusOr<BudgetAllowance> allowance = budget_.Allow(0, report.tokens_today, now, &retry_after);
  if (!allowance.ok()) {
    report.budget_exhausted = true;
    report.message = allowance.status().message();
  }
  return report;
}

StatusOr<statepb::Usage> SessionApi::DayUsage(const std::string& day) const {
  statepb::GetUsageRequest request;
  request.set_day(day);
  return state_->GetUsage(request);
}

HttpResponse SessionApi::Usage(const HttpRequest& request) {
  StatusOr<Principal> caller = Caller(request);
  if (!caller.ok()) return AccessError(caller.status());
  if (Status s = Access::MustBeAdmin(*caller, "the agent's usage"); !s.ok()) return AccessError(s);
  std::string day = UtcDay(now_ms_());
  if (auto it = request.query.find("day"); it != request.query.end()) day = it->second;
  StatusOr<statepb::Usage> usage = DayUsage(day);
  if (!usage.ok()) return ErrorResponse(usage.status());
  Json counters = Json::object();
  for (const auto& [name, value] : usage->counters()) counters[name] = value;
  return HttpResponse::Json(
      200, {{"agent", harness_->options().agent}, {"day", day}, {"usage", counters}});
}

HttpResponse SessionApi::ErrorResponse(const Status& status, int64_t retry_after_seconds) {
  HttpResponse r = HttpResponse::Error(status);
  if (harness::IsStateVolumeFull(status)) r.status = 507;  // Insufficient Storage
  if (retry_after_seconds > 0)
    r.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  return r;
}

Status SessionApi::MayOpen(int64_t* retry_after_seconds) {
  // A session waiting for approval is still open: it goes on once someone decides.
  std::vector<statepb::Session> open;
  for (const std::string_view state : {std::string_view("active"), kWaitingApproval}) {
    statepb::ListSessionsRequest list;
    list.set_state(std::string(state));
    list.set_limit(1000);
    AGENTRY_ASSIGN_OR_RETURN(const statepb::ListSessionsResponse sessions,
                             state_->ListSessions(list));
    open.insert(open.end(), sessions.sessions().begin(), sessions.sessions().end());
  }
  Status s = policy_.MayOpen(open, now_ms_(), retry_after_seconds);
  if (!s.ok() && refusals_ != nullptr) refusals_->WithLabels({"max_concurrent"}).Increment();
  return s;
}

Status SessionApi::Register(http::HttpServer* server) {
  const auto bind = [this](HttpResponse (SessionApi::*fn)(const HttpRequest&)) {
    return [this, fn](const HttpRequest& r) { return (this->*fn)(r); };
  };
  AGENTRY_RETURN_IF_ERROR(server->Route("POST", "/v1/sessions", bind(&SessionApi::Create)));
  AGENTRY_RETURN_IF_ERROR(server->Route("GET", "/v1/sessions", bind(&SessionApi::List)));
  AGENTRY_RETURN_IF_ERROR(server->Route("GET", "/v1/sessions/{id}", bind(&SessionApi::Get)));
  AGENTRY_RETURN_IF_ERROR(
      server->Route("POST", "/v1/sessions/{id}/messages", bind(&SessionApi::Message)));
  AGENTRY_RETURN_IF_ERROR(
      server->Route("POST", "/v1/sessions/{id}/cancel", bind(&SessionApi::Cancel)));
  AGENTRY_RETURN_IF_ERROR(server->Route("GET", "/v1/usage", bind(&SessionApi::Usage)));
  AGENTRY_RETURN_IF_ERROR(
      server->Route("POST", "/v1/sessions/{id}/approvals/{call}", bind(&SessionApi::Approve)));
  return server->Route("DELETE", "/v1/sessions/{id}", bind(&SessionApi::Delete));
}

HttpResponse SessionApi::Create(const HttpRequest& request) {
  Json body = Json::object();
  if (!request.body.empty()) {
    StatusOr<Json> parsed = request.JsonBody();
    if (!parsed.ok()) return ErrorResponse(parsed.status());
    body = *parsed;
  }
  if (!body.is_object()) return ErrorResponse(InvalidArgumentError("body: a JSON object"));
  StatusOr<Principal> caller = Caller(request);
  if (!caller.ok()) return AccessError(caller.status());
  std::string id = NewSessionId();
  std::string on_behalf_of;
  if (body.contains("id")) {
    if (!body["id"].is_string()) return ErrorResponse(InvalidArgumentError("id: a string"));
    id = body["id"].get<std::string>();
  }
  if (body.contains("on_behalf_of")) {
    if (!body["on_behalf_of"].is_string()) {
      return ErrorResponse(InvalidArgumentError("on_behalf_of: a string"));
    }
    on_behalf_of = body["on_behalf_of"].get<std::string>();
  }
  if (Status s = RefuseIfSuspended(); !s.ok()) return ErrorResponse(s);
  const StatusOr<statepb::Session> existing = state_->GetSession(id);
  const bool is_new = !existing.ok();
  if (!is_new) {
    if (Status s = Access::MayUse(*caller, Owner(*existing), id); !s.ok()) {
      return AccessError(s);
    }
  }
  if (is_new) {
    if (Status s = CheckOnBehalfOf(on_behalf_of, "on_behalf_of"); !s.ok()) {
      return ErrorResponse(s);
    }
    int64_t retry_after = 0;
    if (Status s = MayOpen(&retry_after); !s.ok()) return ErrorResponse(s, retry_after);
  }
  StatusOr<statepb::Session> session =
      harness_->OpenSession(id, on_behalf_of, OwnerMetadata(*caller));
  if (!session.ok()) return ErrorResponse(session.status());
  if (is_new) Audit(Requester(*session), "session.create", *session, Json::object());
  return HttpResponse::Json(201, SessionJson(*session));
}

HttpResponse SessionApi::List(const HttpRequest& request) {
  statepb::ListSessionsRequest list;
  if (auto it = request.query.find("state"); it != request.query.end()) list.set_state(it->second);
  StatusOr<Principal> caller = Caller(request);
  if (!caller.ok()) return AccessError(caller.status());
  StatusOr<statepb::ListSessionsResponse> sessions = state_->ListSessions(list);
  if (!sessions.ok()) return ErrorResponse(sessions.status());
  Json out = Json::array();
  for (const statepb::Session& s : sessions->sessions()) {
    if (Access::MayUse(*caller, Owner(s), s.id()).ok()) out.push_back(SessionJson(s));
  }
  return HttpResponse::Json(200, {{"sessions", out}});
}

HttpResponse SessionApi::Get(const HttpRequest& request) {
  const std::string& id = request.path_params.at("id");
  StatusOr<Principal> caller = Authorize(request, id);
  if (!caller.ok()) return AccessError(caller.status());
  StatusOr<statepb::Session> session = state_->GetSession(id);
  if (!session.ok()) return ErrorResponse(session.status());
  StatusOr<std::vector<statepb::Event>> events = state_->ReadTranscript(id);
  if (!events.ok()) return ErrorResponse(events.status());
  Json transcript = Json::array();
  for (const statepb::Event& e : *events) {
    Json event = {{"seq", e.seq()},
                  {"role", e.kind()},
                  {"content", e.content()},
                  {"created_unix_ms", e.created_unix_ms()}};
    if (!e.name().empty()) event["name"] = e.name();
    if (!e.tool_call_id().empty()) event["tool_call_id"] = e.tool_call_id();
    transcript.push_back(std::move(event));
  }
  statepb::GetUsageRequest usage_request;
  usage_request.set_session_id(id);
  StatusOr<statepb::Usage> usage = state_->GetUsage(usage_request);
  Json out = SessionJson(*session);
  out["transcript"] = std::move(transcript);
  out["usage"] = Json::object();
  if (usage.ok()) {
    for (const auto& [name, value] : usage->counters()) out["usage"][name] = value;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    out["turn_running"] = running_.count(id) > 0;
  }
  return HttpResponse::Json(200, out);
}

void SessionApi::SetSuspended(bool suspended) {
  int64_t stopped = 0;
  {
    // Under mu_, so a turn either registers before (and is stopped here) or sees the flag.
    std::lock_guard<std::mutex> lock(mu_);
    if (suspended_.exchange(suspended) == suspended) return;
    if (suspended) {
      for (auto& [id, stop] : running_) {
        stop->store(true);
        ++stopped;
      }
    }
  }
  if (audit_ != nullptr) {
    audit_->Record("system", suspended ? "agent.suspend" : "agent.resume", "",
                   {{"agent", harness_->options().agent}, {"stopped_turns", stopped}});
  }
}

Status SessionApi::CheckOnBehalfOf(const std::string& on_behalf_of,
                                   const std::string& field) const {
  if (on_behalf_of_policy_ == "required" && on_behalf_of.empty()) {
    return InvalidArgumentError(field +
                                ": required (spec.identity.onBehalfOf is required: this agent "
                                "acts only on behalf of a named user)");
  }
  if (on_behalf_of_policy_ == "never" && !on_behalf_of.empty()) {
    return InvalidArgumentError(field +
                                ": not allowed (spec.identity.onBehalfOf is never: this agent "
                                "acts only as itself)");
  }
  return OkStatus();
}

Status SessionApi::RefuseIfSuspended() const {
  if (!suspended_.load()) return OkStatus();
  return UnavailableError("agent " + harness_->options().agent +
                          " is suspended (spec.suspend): no new sessions or turns until it is "
                          "resumed");
}

StatusOr<Principal> SessionApi::Caller(const HttpRequest& request) const {
  if (access_ == nullptr) return Principal{"anonymous", {}, true};
  return access_->Caller(request);
}

StatusOr<Principal> SessionApi::Authorize(const HttpRequest& request,
                                          const std::string& session_id) const {
  AGENTRY_ASSIGN_OR_RETURN(Principal caller, Caller(request));
  if (access_ == nullptr || !access_->enabled()) return caller;
  AGENTRY_ASSIGN_OR_RETURN(const statepb::Session session, state_->GetSession(session_id));
  AGENTRY_RETURN_IF_ERROR(Access::MayUse(caller, Owner(session), session_id));
  return caller;
}

std::string SessionApi::Owner(const statepb::Session& session) {
  const Json meta = Json::parse(session.metadata_json(), nullptr, /*allow_exceptions=*/false);
  return meta.is_object() && meta.contains("principal") && meta["principal"].is_string()
             ? meta["principal"].get<std::string>()
             : std::string();
}

std::string SessionApi::OwnerMetadata(const Principal& caller) const {
  if (access_ == nullptr || !access_->enabled()) return "";
  return Json{{"principal", caller.name}}.dump();
}

std::optional<PendingCall> SessionApi::PendingApproval(const statepb::Session& session) {
  if (session.state() != kWaitingApproval) return std::nullopt;
  const Json meta = Json::parse(session.metadata_json(), nullptr, /*allow_exceptions=*/false);
  if (!meta.is_object() || !meta.contains(kPendingApprovalKey)) return std::nullopt;
  const Json& p = meta[kPendingApprovalKey];
  if (!p.is_object() || !p.contains("call_id") || !p["call_id"].is_string() ||
      !p.contains("name") || !p["name"].is_string()) {
    return std::nullopt;
  }
  PendingCall call;
  call.call_id = p["call_id"];
  call.name = p["name"];
  call.arguments = p.value("arguments", Json::object());
  call.requested_unix_ms = p.value("requested_unix_ms", int64_t{0});
  return call;
}

Status SessionApi::SettleApproval(const statepb::Session& session) {
  return SetApprovalState(session, "active", Json());
}

Status SessionApi::SetApprovalState(const statepb::Session& session, std::string_view state,
                                    const Json& pending) {
  Json meta = Json::parse(session.metadata_json(), nullptr, /*allow_exceptions=*/false);
  if (!meta.is_object()) meta = Json::object();
  if (pending.is_null()) {
    meta.erase(kPendingApprovalKey);
  } else {
    meta[kPendingApprovalKey] = pending;
  }
  statepb::UpdateSessionRequest update;
  update.set_id(session.id());
  update.set_state(std::string(state));
  update.set_metadata_json(meta.dump());
  return state_->UpdateSession(update).status();
}

StatusOr<AdmittedTurn> SessionApi::BeginTurn(const std::string& id, int64_t* retry_after_seconds,
                                             bool resuming) {
  AdmittedTurn turn;
  turn.stop = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    AGENTRY_RETURN_IF_ERROR(RefuseIfSuspended());
    if (running_.count(id) > 0) {
      return AbortedError("session " + id + ": a turn is already running (one at a time)");
    }
    running_[id] = turn.stop;
    if (turns_running_ != nullptr) turns_running_->Increment();
  }
  const Status admitted = [&]() -> Status {
    AGENTRY_ASSIGN_OR_RETURN(turn.session, state_->GetSession(id));
    const std::optional<PendingCall> pending = PendingApproval(turn.session);
    if (resuming && !pending.has_value()) {
      return FailedPreconditionError("session " + id + ": no call waits for approval");
    }
    statepb::Session checked = turn.session;  // as the limits below see it
    if (pending.has_value()) {
      const std::chrono::milliseconds waited(now_ms_() - pending->requested_unix_ms);
      const bool timed_out = waited >= policy_.limits().approval_timeout;
      const std::string timeout = config::FormatDuration(policy_.limits().approval_timeout);
      if (resuming && timed_out) {
        return FailedPreconditionError("session " + id + ": the approval of call " +
                                       pending->call_id + " timed out after " + timeout +
                                       "; the next message settles it as denied");
      }
      if (!resuming && !timed_out) {
        return AbortedError("session " + id + ": call " + pending->call_id + " (" + pending->name +
                            ") is waiting for approval; decide with "
                            "POST /v1/sessions/" +
                            id + "/approvals/" + pending->call_id);
      }
      if (!resuming) {
        // Timed out: the call is denied, its result goes ahead of this message.
        AGENTRY_RETURN_IF_ERROR(SettleApproval(turn.session));
        AGENTRY_ASSIGN_OR_RETURN(turn.session, state_->GetSession(id));
        const tools::ToolOutcome denied = tools::ToolError("approval timed out after " + timeout);
        turn.before.push_back(
            {pending->call_id, pending->name, denied.content, Json{{"ok", false}}.dump()});
        Audit("system", "approval.timeout", turn.session,
              {{"call_id", pending->call_id}, {"tool", pending->name}});
      }
      checked = turn.session;
      checked.set_state("active");
    }
    statepb::GetUsageRequest usage_request;
    usage_request.set_session_id(id);
    AGENTRY_ASSIGN_OR_RETURN(const statepb::Usage usage, state_->GetUsage(usage_request));
    const auto turns = usage.counters().find("turns");
    const int64_t now = now_ms_();
    Status s =
        policy_.MayTakeTurn(checked, turns == usage.counters().end() ? 0 : turns->second, now);
    const std::string expiry = policy_.Expiry(turn.session, now);
    if (!s.ok() && turn.session.state() == "active" && !expiry.empty()) {
      statepb::UpdateSessionRequest expire;
      expire.set_id(id);
      expire.set_state("expired");
      (void)state_->UpdateSession(expire);  // best effort: the limit holds either way
      Audit("system", "session.expire", turn.session, {{"reason", expiry}});
    }
    const auto counter = [](const statepb::Usage& u, const char* name) {
      const auto it = u.counters().find(name);
      return it == u.counters().end() ? int64_t{0} : it->second;
    };
    turn.tool_calls_used = counter(usage, "tool_calls");
    turn.deadline_ms = policy_.Deadline(turn.session);
    if (!s.ok() || !budget_.enabled()) return s;
    statepb::GetUsageRequest day_request;
    day_request.set_day(UtcDay(now));
    AGENTRY_ASSIGN_OR_RETURN(const statepb::Usage day, state_->GetUsage(day_request));
    int64_t retry_after = 0;
    StatusOr<BudgetAllowance> allowance = budget_.Allow(
        counter(usage, "prompt_tokens") + counter(usage, "completion_tokens"),
        counter(day, "prompt_tokens") + counter(day, "completion_tokens"), now, &retry_after);
    if (!allowance.ok()) {
      if (retry_after_seconds != nullptr) *retry_after_seconds = retry_after;
      Audit("system", "budget.exhausted", turn.session,
            {{"message", allowance.status().message()}});
      return allowance.status();
    }
    if (!allowance->unlimited) {
      turn.max_tokens = static_cast<int32_t>(std::min<int64_t>(allowance->tokens, INT32_MAX));
    }
    return s;
  }();
  if (!admitted.ok()) {
    EndTurn(id);
    // Every budget's refusal names itself (api.md); only tokensPerDay's is RESOURCE_EXHAUSTED.
    if (refusals_ != nullptr && admitted.message().starts_with("budget_exhausted:")) {
      refusals_
          ->WithLabels({admitted.code() == StatusCode::kResourceExhausted ? "daily_budget"
                                                                          : "session_budget"})
          .Increment();
    }
    return admitted;
  }
  return turn;
}

std::function<bool(const std::string&)> SessionApi::Streamer(
    const AdmittedTurn& turn, const std::function<bool(const std::string&)>& on_text) {
  // Empty text is the harness asking whether to go on while it holds a tool call's text back.
  return [this, &turn, &on_text](const std::string& text) {
    return (text.empty() || on_text(text)) && !turn.stop->load() && !PastDeadline(turn);
  };
}

StatusOr<harness::TurnReply> SessionApi::TimedStep(
    const AdmittedTurn& turn, const std::function<StatusOr<harness::TurnReply>()>& step) {
  const auto start = std::chrono::steady_clock::now();
  StatusOr<harness::TurnReply> reply = step();
  RecordStep(turn, reply,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return reply;
}

void SessionApi::EndAtDeadline(const AdmittedTurn& turn, harness::TurnReply& reply) {
  reply.budget_exhausted = true;
  Audit("system", "budget.exhausted", turn.session,
        {{"message", "maxDuration " + config::FormatDuration(policy_.limits().max_duration) +
                         " reached during the turn"}});
}

bool SessionApi::ReachedBudget(const harness::TurnReply& reply, int32_t max_tokens) const {
  // Cut short by the budget's remainder rather than by the reply's own limit.
  return max_tokens > 0 && reply.finish_reason == harness::nodepb::FINISH_REASON_LENGTH &&
         reply.generated_tokens >= max_tokens &&
         (harness_->options().max_tokens <= 0 || max_tokens < harness_->options().max_tokens);
}

StatusOr<harness::TurnReply> SessionApi::RunTurn(const AdmittedTurn& turn,
                                                 const std::string& content, const TurnSink& sink) {
  const auto stream = Streamer(turn, sink.text);
  StatusOr<harness::TurnReply> reply = TimedStep(turn, [&] {
    return harness_->Turn(turn.session, content, stream, turn.max_tokens, turn.before);
  });
  if (reply.ok()) reply->budget_exhausted = ReachedBudget(*reply, turn.max_tokens);
  return ToolLoop(turn, std::move(reply), {}, sink);
}

StatusOr<harness::TurnReply> SessionApi::ResumeTurn(const AdmittedTurn& turn,
                                                    const PendingCall& pending,
                                                    const ApprovalDecision& decision,
                                                    const TurnSink& sink) {
  const runtime::ToolCall call{pending.name, pending.arguments};
  nlohmann::json step;
  if (decision.approve) {
    step = RunTool(turn, call, pending.call_id);
  } else {
    // The model reads a denial as the tool's result, and can answer the user without it.
    step = StepJson(pending.call_id, call,
                    tools::ToolError("denied by " + decision.by +
                                     (decision.reason.empty() ? "" : ": " + decision.reason)));
  }
  Report(sink, "tool_result", step);
  std::vector<nlohmann::json> steps{step};
  if (turn.stop->load()) {
    EndTurn(turn.session.id());
    harness::TurnReply reply;
    reply.finish_reason = harness::nodepb::FINISH_REASON_CANCELLED;
    reply.tool_steps = std::move(steps);
    return reply;
  }
  StatusOr<harness::TurnReply> reply =
      ContinueAfter(turn, step, turn.max_tokens, Streamer(turn, sink.text));
  return ToolLoop(turn, std::move(reply), std::move(steps), sink);
}

StatusOr<harness::TurnReply> SessionApi::ToolLoop(const AdmittedTurn& turn,
                                                  StatusOr<harness::TurnReply> reply,
                                                  std::vector<nlohmann::json> steps,
                                                  const TurnSink& sink) {
  const auto stream = Streamer(turn, sink.text);
  int64_t prompt = reply.ok() ? reply->prompt_tokens : 0;
  int64_t cached = reply.ok() ? reply->cached_tokens : 0;
  int64_t generated = reply.ok() ? reply->generated_tokens : 0;
  const int64_t first_seq = reply.ok() ? reply->user_seq : 0;
  const size_t resumed = steps.size();  // a resumed turn's approved (or denied) call
  // Run what the reply calls, give the model the result, until it answers.
  while (toolbox_ != nullptr && reply.ok() && reply->tool_call.has_value() &&
         !reply->budget_exhausted && !turn.stop->load()) {
    if (PastDeadline(turn)) {
      EndAtDeadline(turn, *reply);
      break;
    }
    const int64_t run = static_cast<int64_t>(steps.size() - resumed);
    if (run >= max_tool_steps_) {
      reply->tool_steps_exhausted = true;
      Audit("system", "turn.tool_steps_exhausted", turn.session,
            {{"max_tool_steps", max_tool_steps_}});
      break;
    }
    if (tool_calls_per_session_ &&
        turn.tool_calls_used + static_cast<int64_t>(steps.size()) >= *tool_calls_per_session_) {
      reply->budget_exhausted = true;
      Audit("system", "budget.exhausted", turn.session,
            {{"message",
              "toolCallsPerSession " + std::to_string(*tool_calls_per_session_) + " used up"}});
      break;
    }
    Report(sink, "tool_call",
           {{"id", reply->tool_call_id},
            {"name", reply->tool_call->name},
            {"arguments", reply->tool_call->arguments}});
    const runtime::ToolDecl* decl = toolbox_->Find(reply->tool_call->name);
    if (decl != nullptr && decl->requires_approval) {
      // Pause: the call waits, in the session's record, for a person to decide.
      if (Status paused = PauseForApproval(turn, *reply); !paused.ok()) reply = paused;
      break;
    }
    steps.push_back(RunTool(turn, *reply->tool_call, reply->tool_call_id));
    Report(sink, "tool_result", steps.back());
    if (turn.stop->load()) break;  // stopped during the call: its result is recorded above
    if (PastDeadline(turn)) {      // the call outlasted maxDuration
      EndAtDeadline(turn, *reply);
      break;
    }
    int32_t max_tokens = 0;
    if (turn.max_tokens > 0) {
      if (generated >= turn.max_tokens) {
        reply->budget_exhausted = true;
        break;
      }
      max_tokens = static_cast<int32_t>(turn.max_tokens - generated);
    }
    reply = ContinueAfter(turn, steps.back(), max_tokens, stream);
    if (!reply.ok()) break;
    prompt += reply->prompt_tokens;
    cached += reply->cached_tokens;
    generated += reply->generated_tokens;
  }
  EndTurn(turn.session.id());
  if (!reply.ok()) return reply;
  // A reply the streamer cut because maxDuration passed (not a cancel, which sets stop).
  if (reply->finish_reason == harness::nodepb::FINISH_REASON_CANCELLED && !turn.stop->load() &&
      !reply->budget_exhausted && PastDeadline(turn)) {
    EndAtDeadline(turn, *reply);
  }
  reply->user_seq = first_seq;
  reply->prompt_tokens = prompt;
  reply->cached_tokens = cached;
  reply->generated_tokens = generated;
  reply->tool_steps = std::move(steps);
  return reply;
}

Status SessionApi::PauseForApproval(const AdmittedTurn& turn, harness::TurnReply& reply) {
  AGENTRY_ASSIGN_OR_RETURN(const statepb::Session session, state_->GetSession(turn.session.id()));
  const Json pending = {{"call_id", reply.tool_call_id},
                        {"name", reply.tool_call->name},
                        {"arguments", reply.tool_call->arguments},
                        {"requested_unix_ms", now_ms_()}};
  AGENTRY_RETURN_IF_ERROR(SetApprovalState(session, kWaitingApproval, pending));
  reply.pending_approval = pending;
  Audit("agent:" + harness_->options().agent, "approval.request", turn.session,
        {{"call_id", reply.tool_call_id},
         {"tool", reply.tool_call->name},
         {"arguments", reply.tool_call->arguments}});
  return OkStatus();
}

nlohmann::json SessionApi::RunTool(const AdmittedTurn& turn, const runtime::ToolCall& call,
                                   const std::string& call_id) {
  tools::ToolContext context{harness_->options().agent, turn.session.id(),
                             turn.session.on_behalf_of(), call_id, turn.stop.get()};
  // A call may not outlast the session's maxDuration: the loop ends the turn right after.
  context.max_time = std::chrono::milliseconds(std::max<int64_t>(0, turn.deadline_ms - now_ms_()));
  const tools::ToolOutcome out = toolbox_->Run(call, context);
  const std::string result = out.ok ? "ok" : "error";
  if (tool_calls_ != nullptr) {
    tool_calls_->WithLabels({call.name, result}).Increment();
    tool_seconds_->WithLabels({call.name}).Observe(static_cast<double>(out.duration_ms) / 1000);
  }
  statepb::AddUsageRequest usage;
  usage.set_session_id(turn.session.id());
  (*usage.mutable_counters())["tool_calls"] = 1;
  (void)state_->AddUsage(usage);  // best effort, as the harness's token counts
  nlohmann::json details{{"tool", call.name},           {"call_id", call_id},
                         {"arguments", call.arguments}, {"ok", out.ok},
                         {"result_bytes", out.bytes},   {"result_sha256", out.digest},
                         {"truncated", out.truncated},  {"duration_ms", out.duration_ms}};
  if (!out.ok) details["error"] = out.error;
  if (out.http_status != 0) details["http_status"] = out.http_status;
  Audit("agent:" + harness_->options().agent, "tool.call", turn.session, details);
  return StepJson(call_id, call, out);
}

nlohmann::json SessionApi::StepJson(const std::string& call_id, const runtime::ToolCall& call,
                                    const tools::ToolOutcome& out) {
  nlohmann::json step{{"id", call_id},
                      {"name", call.name},
                      {"arguments", call.arguments},
                      {"ok", out.ok},
                      {"content", out.content}};
  if (!out.ok) step["error"] = out.error;
  return step;
}

StatusOr<harness::TurnReply> SessionApi::ContinueAfter(
    const AdmittedTurn& turn, const nlohmann::json& step, int32_t max_tokens,
    const std::function<bool(const std::string&)>& stream) {
  // The session as it stands now: the step before this one moved its next_seq on.
  StatusOr<statepb::Session> session = state_->GetSession(turn.session.id());
  const harness::ToolResultEvent event{step["id"], step["name"], step["content"],
                                       nlohmann::json{{"ok", step["ok"]}}.dump()};
  StatusOr<harness::TurnReply> reply = TimedStep(turn, [&]() -> StatusOr<harness::TurnReply> {
    if (!session.ok()) return session.status();
    return harness_->Continue(*session, {event}, stream, max_tokens);
  });
  if (reply.ok()) reply->budget_exhausted = ReachedBudget(*reply, max_tokens);
  return reply;
}

void SessionApi::RecordStep(const AdmittedTurn& turn, const StatusOr<harness::TurnReply>& reply,
                            double seconds) {
  if (reply.ok()) {
    Audit("agent:" + harness_->options().agent, "model.call", turn.session,
          {{"model", harness_->options().model},
           {"user_seq", reply->user_seq},
           {"reply_seq", reply->reply_seq},
           {"prompt_tokens", reply->prompt_tokens},
           {"cached_tokens", reply->cached_tokens},
           {"completion_tokens", reply->generated_tokens},
           {"duration_ms", static_cast<int64_t>(seconds * 1000)},
           {"finish_reason",
            reply->budget_exhausted ? "budget_exhausted" : FinishReasonName(reply->finish_reason)},
           {"tool_call", reply->tool_call.has_value()},
           {"kv", KvSource(*reply)}});
  } else {
    Audit("agent:" + harness_->options().agent, "turn.error", turn.session,
          {{"code", std::string(StatusCodeName(reply.status().code()))},
           {"message", reply.status().message()},
           {"duration_ms", static_cast<int64_t>(seconds * 1000)}});
  }
  if (turns_ != nullptr) {
    const bool cancelled =
        reply.ok() && reply->finish_reason == harness::nodepb::FINISH_REASON_CANCELLED;
    turns_->WithLabels({!reply.ok() ? "error" : cancelled ? "cancelled" : "ok"}).Increment();
    turn_seconds_->Observe(seconds);
    if (reply.ok()) {
      kv_sources_->WithLabels({KvSource(*reply)}).Increment();
      tokens_->WithLabels({"prompt"}).Increment(static_cast<double>(reply->prompt_tokens));
      tokens_->WithLabels({"cached"}).Increment(static_cast<double>(reply->cached_tokens));
      tokens_->WithLabels({"completion"}).Increment(static_cast<double>(reply->generated_tokens));
    }
  }
}

void SessionApi::Audit(const std::string& actor, const std::string& action,
                       const statepb::Session& session, Json details) {
  if (audit_ == nullptr) return;
  if (!session.on_behalf_of().empty()) details["on_behalf_of"] = session.on_behalf_of();
  if (const std::string owner = Owner(session); !owner.empty()) details["principal"] = owner;
  audit_->Record(actor, action, session.id(), details);
}

std::string SessionApi::Requester(const statepb::Session& session) {
  return session.on_behalf_of().empty() ? "anonymous" : "user:" + session.on_behalf_of();
}

void SessionApi::EndTurn(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  running_.erase(id);
  if (turns_running_ != nullptr) turns_running_->Decrement();
}

HttpResponse SessionApi::Message(const HttpRequest& request) {
  const std::string id = request.path_params.at("id");
  StatusOr<Principal> caller = Authorize(request, id);
  if (!caller.ok()) return AccessError(caller.status());
  StatusOr<Json> body = request.JsonBody();
  if (!body.ok()) return ErrorResponse(body.status());
  if (!body->is_object() || !body->contains("content") || !(*body)["content"].is_string()) {
    return ErrorResponse(InvalidArgumentError("content: required, a string"));
  }
  const std::string content = (*body)["content"].get<std::string>();
  if (content.empty()) return ErrorResponse(InvalidArgumentError("content: empty"));
  if (content.size() > kMaxMessageBytes) {
    return ErrorResponse(InvalidArgumentError("content: at most 256 KiB"));
  }
  const bool stream = (body->contains("stream") && (*body)["stream"].is_boolean() &&
                       (*body)["stream"].get<bool>()) ||
                      request.Header("Accept").find("text/event-stream") != std::string::npos;
  int64_t retry_after = 0;
  StatusOr<AdmittedTurn> turn = BeginTurn(id, &retry_after);
  if (!turn.ok()) return ErrorResponse(turn.status(), retry_after);
  return Respond(stream, [this, content, turn = *turn](const TurnSink& sink) {
    return RunTurn(turn, content, sink);
  });
}

HttpResponse SessionApi::Respond(bool stream,
                                 std::function<StatusOr<harness::TurnReply>(const TurnSink&)> run) {
  if (!stream) {
    StatusOr<harness::TurnReply> reply = run({[](const std::string&) { return true; }});
    if (!reply.ok()) return ErrorResponse(reply.status());
    return HttpResponse::Json(200, ReplyJson(*reply));
  }
  return HttpResponse::EventStream([run = std::move(run)](const HttpResponse::Writer& write) {
    StatusOr<harness::TurnReply> reply =
        run({.text =
                 [&](const std::string& text) {
                   return write(HttpResponse::Event("token", {{"text", text}}));
                 },
             .step = [&](std::string_view event,
                         const Json& data) { write(HttpResponse::Event(event, data)); }});
    if (reply.ok()) {
      write(HttpResponse::Event("done", ReplyJson(*reply)));
    } else {
      write(HttpResponse::Event("error",
                                {{"code", std::string(StatusCodeName(reply.status().code()))},
                                 {"message", reply.status().message()}}));
    }
  });
}

HttpResponse SessionApi::Approve(const HttpRequest& request) {
  const std::string id = request.path_params.at("id");
  StatusOr<Principal> caller = Authorize(request, id);
  if (!caller.ok()) return AccessError(caller.status());
  const std::string call_id = request.path_params.at("call");
  StatusOr<Json> body = request.JsonBody();
  if (!body.ok()) return ErrorResponse(body.status());
  const auto text = [&](const char* field) {
    return body->is_object() && body->contains(field) && (*body)[field].is_string()
               ? (*body)[field].get<std::string>()
               : std::string();
  };
  ApprovalDecision decision;
  const std::string verdict = text("decision");
  if (verdict != "approve" && verdict != "deny") {
    return ErrorResponse(InvalidArgumentError("decision: \"approve\" or \"deny\""));
  }
  decision.approve = verdict == "approve";
  decision.reason = text("reason");
  // Who decided: the authenticated caller; without authentication, the request names them.
  decision.by = access_ != nullptr && access_->enabled() ? caller->name : text("user");
  if (decision.by.empty()) {
    return ErrorResponse(InvalidArgumentError("user: required, who decides"));
  }
  const bool stream = (body->contains("stream") && (*body)["stream"].is_boolean() &&
                       (*body)["stream"].get<bool>()) ||
                      request.Header("Accept").find("text/event-stream") != std::string::npos;
  int64_t retry_after = 0;
  StatusOr<AdmittedTurn> turn = BeginTurn(id, &retry_after, /*resuming=*/true);
  if (!turn.ok()) return ErrorResponse(turn.status(), retry_after);
  const std::optional<PendingCall> pending = PendingApproval(turn->session);
  if (!pending.has_value() || pending->call_id != call_id) {
    EndTurn(id);
    return ErrorResponse(
        NotFoundError("session " + id + ": no call " + call_id + " waits for approval" +
                      (pending.has_value() ? " (" + pending->call_id + " does)" : "")));
  }
  // The decision is durable before the call runs: a crash from here on never runs it twice.
  if (Status s = SettleApproval(turn->session); !s.ok()) {
    EndTurn(id);
    return ErrorResponse(s);
  }
  Audit("user:" + decision.by, decision.approve ? "approval.grant" : "approval.deny", turn->session,
        {{"call_id", pending->call_id}, {"tool", pending->name}, {"reason", decision.reason}});
  return Respond(stream, [this, turn = *turn, pending = *pending, decision](const TurnSink& sink) {
    return ResumeTurn(turn, pending, decision, sink);
  });
}

bool SessionApi::StopRunningTurn(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(id);
  if (it == running_.end()) return false;
  it->second->store(true);
  return true;
}

HttpResponse SessionApi::Cancel(const HttpRequest& request) {
  const std::string& id = request.path_params.at("id");
  StatusOr<Principal> caller = Authorize(request, id);
  if (!caller.ok()) return AccessError(caller.status());
  const bool cancelled = StopRunningTurn(id);
  StatusOr<statepb::Session> session = state_->GetSession(id);
  if (!session.ok()) return ErrorResponse(session.status());
  if (cancelled) Audit(Requester(*session), "turn.cancel", *session, Json::object());
  Json out = SessionJson(*session);
  out["cancelled_turn"] = cancelled;
  return HttpResponse::Json(200, out);
}

HttpResponse SessionApi::Delete(const HttpRequest& request) {
  const std::string& id = request.path_params.at("id");
  StatusOr<Principal> caller = Authorize(request, id);
  if (!caller.ok()) return AccessError(caller.status());
  const bool cancelled = StopRunningTurn(id);
  statepb::UpdateSessionRequest update;
  update.set_id(id);
  update.set_state("closed");
  StatusOr<statepb::Session> session = state_->UpdateSession(update);
  if (!session.ok()) return ErrorResponse(session.status());
  // Its KV on the node daemon is of no more use. Best effort: the turn being cancelled may
  // still hold it for a moment, and the daemon evicts idle sessions anyway.
  if (!cancelled) (void)harness_->ReleaseDaemonSession(*session);
  Audit(Requester(*session), "session.close", *session, {{"cancelled_turn", cancelled}});
  Json out = SessionJson(*session);
  out["cancelled_turn"] = cancelled;
  return HttpResponse::Json(200, out);
}

}  // namespace agentry::api
