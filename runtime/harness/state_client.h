// runtime/harness/state_client.h — the runtime's client of the state sidecar.
//
// Every mutating call carries a request id (the caller's, or a fresh random one) and is
// retried with that same id while the sidecar is unavailable (restarting, briefly killed),
// up to `retry_for`: the sidecar applies it once, so a retry never writes twice. Errors are
// the sidecar's statuses; UNAVAILABLE after `retry_for` means it did not come back.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agentry/state/v1/state.grpc.pb.h"
#include <grpcpp/grpcpp.h>

#include "common/status.h"

namespace agentry::harness {

namespace statepb = agentry::state::v1;

struct StateClientOptions {
  std::chrono::milliseconds call_timeout{5000};
  std::chrono::milliseconds retry_for{30000};
};

// Every error of the StateClient starts with this.
inline constexpr std::string_view kStateSidecarPrefix = "state sidecar";

// Whether `status` is the state sidecar refusing a write because its volume is full (or over
// quota): retrying soon does not help, freeing space does, so the runtime answers 507, not the
// 429 it gives for its own limits.
bool IsStateVolumeFull(const Status& status);

class StateClient {
 public:
  // "unix:/run/agentry/state.sock"
  StateClient(const std::string& target, StateClientOptions options = {});

  StatusOr<statepb::Session> CreateSession(const statepb::CreateSessionRequest& request);
  StatusOr<statepb::Session> GetSession(const std::string& id);
  StatusOr<statepb::ListSessionsResponse> ListSessions(const statepb::ListSessionsRequest& request);
  StatusOr<statepb::Session> UpdateSession(statepb::UpdateSessionRequest request);
  StatusOr<statepb::AppendEventsResponse> AppendEvents(statepb::AppendEventsRequest request);
  // Every event of the session, read page by page.
  StatusOr<std::vector<statepb::Event>> ReadTranscript(const std::string& session_id);
  StatusOr<statepb::MemoryEntry> PutMemory(statepb::PutMemoryRequest request);
  StatusOr<statepb::SearchMemoryResponse> SearchMemory(const statepb::SearchMemoryRequest& request);
  StatusOr<statepb::Usage> AddUsage(statepb::AddUsageRequest request);
  StatusOr<statepb::Usage> GetUsage(const statepb::GetUsageRequest& request);
  StatusOr<statepb::AuditRecord> AppendAudit(statepb::AppendAuditRequest request);
  StatusOr<statepb::ListAuditResponse> ListAudit(const statepb::ListAuditRequest& request);
  StatusOr<statepb::VerifyAuditResponse> VerifyAudit();
  // A session's snapshot blob, stored whole (checksummed on arrival) or not at all; the
  // session's earlier snapshot is replaced.
  StatusOr<statepb::SnapshotInfo> PutSnapshot(const std::string& session_id,
                                              std::string_view bytes);
  // NOT_FOUND when the session has none.
  StatusOr<std::string> GetSnapshot(const std::string& session_id);

  // A request id no other call has used: 128 random bits, hex.
  static std::string NewRequestId();

 private:
  template <typename Request, typename Response>
  StatusOr<Response> Call(grpc::Status (statepb::State::Stub::*method)(grpc::ClientContext*,
                                                                       const Request&, Response*),
                          const Request& request);

  StateClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<statepb::State::Stub> stub_;
};

}  // namespace agentry::harness
