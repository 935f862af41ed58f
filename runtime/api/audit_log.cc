// runtime/api/audit_log.cc — see audit_log.h.
#include "runtime/api/audit_log.h"

#include "common/strings.h"

namespace agentry::api {
namespace {

using http::HttpRequest;
using http::HttpResponse;
using Json = nlohmann::json;
namespace statepb = agentry::state::v1;

Json RecordJson(const statepb::AuditRecord& r) {
  Json details = Json::parse(r.details_json(), nullptr, /*allow_exceptions=*/false);
  return {{"seq", r.seq()},
          {"time_unix_ms", r.time_unix_ms()},
          {"actor", r.actor()},
          {"action", r.action()},
          {"session_id", r.session_id()},
          {"details", details.is_discarded() ? Json::object() : details},
          {"prev_hash", r.prev_hash()},
          {"hash", r.hash()}};
}

// A query parameter that must be a non-negative integer; `fallback` when absent.
StatusOr<int64_t> QueryInt(const HttpRequest& request, const std::string& name, int64_t fallback) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return fallback;
  std::optional<int> v = ParseNonNegativeInt(it->second);
  if (!v.has_value()) return InvalidArgumentError(name + ": a non-negative integer");
  return *v;
}

}  // namespace

AuditLog::AuditLog(harness::StateClient* state, metrics::Registry* metrics) : state_(state) {
  if (metrics == nullptr) return;
  write_failures_ = &metrics
                         ->AddCounter("agentry_runtime_audit_write_failures_total",
                                      "Audit records the runtime could not write to the state "
                                      "sidecar (the step happened unrecorded).")
                         .WithLabels({});
}

void AuditLog::Record(const std::string& actor, const std::string& action,
                      const std::string& session_id, const Json& details) {
  statepb::AppendAuditRequest request;
  request.set_actor(actor);
  request.set_action(action);
  request.set_session_id(session_id);
  request.set_details_json(details.dump());
  StatusOr<statepb::AuditRecord> written = state_->AppendAudit(request);
  if (written.ok()) return;
  log_.Error("audit record not written",
             {{"action", action}, {"session", session_id}, {"error", written.status().message()}});
  if (write_failures_ != nullptr) write_failures_->Increment();
}

Status AuditLog::Register(http::HttpServer* server) {
  AGENTRY_RETURN_IF_ERROR(server->Route("GET", "/v1/audit", [this](const HttpRequest& r) {
    if (Status s = MayRead(r); !s.ok()) return AccessError(s);
    return List(r);
  }));
  return server->Route("GET", "/v1/audit/verify", [this](const HttpRequest& r) {
    if (Status s = MayRead(r); !s.ok()) return AccessError(s);
    return Verify(r);
  });
}

Status AuditLog::MayRead(const HttpRequest& request) const {
  if (access_ == nullptr) return OkStatus();
  AGENTRY_ASSIGN_OR_RETURN(const Principal caller, access_->Caller(request));
  return Access::MustBeAdmin(caller, "the audit log");
}

HttpResponse AuditLog::List(const HttpRequest& request) {
  StatusOr<int64_t> after = QueryInt(request, "after", 0);
  if (!after.ok()) return HttpResponse::Error(after.status());
  StatusOr<int64_t> limit = QueryInt(request, "limit", 100);
  if (!limit.ok()) return HttpResponse::Error(limit.status());
  if (*limit < 1 || *limit > 1000) {
    return HttpResponse::Error(InvalidArgumentError("limit: 1 to 1000"));
  }
  statepb::ListAuditRequest list;
  list.set_after_seq(*after);
  list.set_limit(static_cast<int32_t>(*limit));
  if (auto it = request.query.find("session"); it != request.query.end()) {
    list.set_session_id(it->second);
  }
  StatusOr<statepb::ListAuditResponse> records = state_->ListAudit(list);
  if (!records.ok()) return HttpResponse::Error(records.status());
  Json out = {{"records", Json::array()}};
  for (const statepb::AuditRecord& r : records->records()) out["records"].push_back(RecordJson(r));
  // The next page starts after the last record of this one; none when this one is short.
  if (records->records_size() == *limit) out["next_after"] = records->records().rbegin()->seq();
  return HttpResponse::Json(200, out);
}

HttpResponse AuditLog::Verify(const HttpRequest&) {
  StatusOr<statepb::VerifyAuditResponse> v = state_->VerifyAudit();
  if (!v.ok()) return HttpResponse::Error(v.status());
  return HttpResponse::Json(200, {{"ok", v->ok()},
                                  {"records", v->records()},
                                  {"first_bad_seq", v->first_bad_seq()},
                                  {"reason", v->reason()},
                                  {"head_hash", v->head_hash()}});
}

}  // namespace agentry::api
