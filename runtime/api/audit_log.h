// runtime/api/audit_log.h — what the runtime writes to the agent's hash-chained audit log (in
// the state sidecar), and the routes that read it.
//
//   AuditLog audit(&state, &registry);
//   audit.Record("user:alice", "session.create", "s-1", {{"on_behalf_of", "alice"}});
//
//   GET /v1/audit?after=SEQ&limit=N&session=ID   {"records": [...], "next_after": SEQ}
//   GET /v1/audit/verify                         {"ok", "records", "first_bad_seq", "reason",
//                                                 "head_hash"}
//
// Actions the runtime records (docs/api.md): session.create, session.close, session.expire,
// model.call (model, tokens in/out, duration, finish reason, where the KV came from),
// turn.cancel, turn.error.
// Recording is best effort for the caller: a record that cannot be written (the state volume
// full) does not fail the user's request, it is logged and counted in
// agentry_runtime_audit_write_failures_total, which an SRE alerts on.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/http/server.h"
#include "common/log/log.h"
#include "common/metrics/registry.h"
#include "runtime/api/authenticator.h"
#include "runtime/harness/state_client.h"

namespace agentry::api {

class AuditLog {
 public:
  AuditLog(harness::StateClient* state, metrics::Registry* metrics);

  void Record(const std::string& actor, const std::string& action, const std::string& session_id,
              const nlohmann::json& details);
  Status Register(http::HttpServer* server);
  // The routes answer administrators only (authenticator.h); unset: everyone.
  void RequireAdmins(Access* access) { access_ = access; }

 private:
  http::HttpResponse List(const http::HttpRequest& request);
  http::HttpResponse Verify(const http::HttpRequest& request);
  // OK when the caller may read the log.
  Status MayRead(const http::HttpRequest& request) const;

  harness::StateClient* state_;
  Access* access_ = nullptr;
  log::Logger log_{"audit"};
  metrics::Counter* write_failures_ = nullptr;
};

}  // namespace agentry::api
