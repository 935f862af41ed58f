#include "runtime/state/state_service.h"

#include <filesystem>

#include "common/grpc/status.h"
#include "common/grpc/unix_socket_server.h"

namespace agentry::state {
StateService::StateService(StateStore* store, metrics::Registry* metrics)
    : store_(store), metrics_(metrics) {
  if (metrics_ == nullptr) return;
  metrics_->AddCounter("agentry_state_requests_total",
                       "State API calls by method and gRPC status code.", {"method", "code"});
  metrics_->AddHistogram("agentry_state_request_duration_seconds",
                         "State API call latency, durable writes included.", {"method"},
                         metrics::DefaultLatencyBuckets());
  audit_verify_failures_ =
      &metrics_
           ->AddCounter("agentry_state_audit_verify_failures_total",
                        "Audit chain verifications that found the chain broken: the "
                        "sidecar's own at start and VerifyAudit calls.")
           .WithLabels({});
}

grpc::Status StateService::Finish(const char* method, const Status& status,
                                  std::chrono::steady_clock::time_point start) {
  if (metrics_ != nullptr) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_
        ->AddHistogram("agentry_state_request_duration_seconds", "", {"method"},
                       metrics::DefaultLatencyBuckets())
        .WithLabels({method})
        .Observe(seconds);
    metrics_->AddCounter("agentry_state_requests_total", "", {"method", "code"})
        .WithLabels({method, std::string(StatusCodeName(status.code()))})
        .Increment();
  }
  return ToGrpc(status);
}

template <typename Response>
grpc::Status StateService::Serve(const char* method, StatusOr<Response> result, Response* response,
                                 std::chrono::steady_clock::time_point start) {
  if (!result.ok()) return Finish(method, result.status(), start);
  *response = std::move(result).value();
  return Finish(method, OkStatus(), start);
}

#define AGENTRY_STATE_UNARY(Method, Request, Response, call)                          \
  grpc::Status StateService::Method(grpc::ServerContext*, const v1::Request* request, \
                                    v1::Response* response) {                         \
    const auto start = std::chrono::steady_clock::now();                              \
    return Serve<v1::Response>(#Method, call, response, start);                       \
  }

AGENTRY_STATE_UNARY(CreateSession, CreateSessionRequest, Session, store_->CreateSession(*request))
AGENTRY_STATE_UNARY(GetSession, GetSessionRequest, Session, store_->GetSession(request->id()))
AGENTRY_STATE_UNARY(ListSessions, ListSessionsRequest, ListSessionsResponse,
                    store_->ListSessions(*request))
AGENTRY_STATE_UNARY(UpdateSession, UpdateSessionRequest, Session, store_->UpdateSession(*request))
AGENTRY_STATE_UNARY(AppendEvents, AppendEventsRequest, AppendEventsResponse,
                    store_->AppendEvents(*request))
AGENTRY_STATE_UNARY(ReadTranscript, ReadTranscriptRequest, ReadTranscriptResponse,
                    store_->ReadTranscript(*request))
AGENTRY_STATE_UNARY(PutMemory, PutMemoryRequest, MemoryEntry, store_->PutMemory(*request))
AGENTRY_STATE_UNARY(SearchMemory, SearchMemoryRequest, SearchMemoryResponse,
                    store_->SearchMemory(*request))
AGENTRY_STATE_UNARY(AppendAudit, AppendAuditRequest, AuditRecord, store_->AppendAudit(*request))
AGENTRY_STATE_UNARY(ListAudit, ListAuditRequest, ListAuditResponse, store_->ListAudit(*request))
AGENTRY_STATE_UNARY(AddUsage, AddUsageRequest, Usage, store_->AddUsage(*request))
AGENTRY_STATE_UNARY(GetUsage, GetUsageRequest, Usage, store_->GetUsage(*request))
#undef AGENTRY_STATE_UNARY

grpc::Status StateService::VerifyAudit(grpc::ServerContext*, const v1::VerifyAuditRequest*,
                                       v1::VerifyAuditResponse* response) {
  const auto start = std::chrono::steady_clock::now();
  StatusOr<v1::VerifyAuditResponse> result = store_->VerifyAudit();
  if (result.ok() && !result->ok() && audit_verify_failures_ != nullptr) {
    audit_verify_failures_->Increment();
  }
  return Serve<v1::VerifyAuditResponse>("VerifyAudit", std::move(result), response, start);
}

grpc::Status StateService::PutSnapshot(grpc::ServerContext*,
                                       grpc::ServerReader<v1::PutSnapshotRequest>* reader,
                                       v1::SnapshotInfo* response) {
  const auto start = std::chrono::steady_clock::now();
  v1::PutSnapshotRequest piece;
  if (!reader->Read(&piece)) {
    return Finish("PutSnapshot", InvalidArgumentError("no messages"), start);
  }
  const std::string expected_sha256 = piece.sha256();
  StatusOr<std::unique_ptr<StateStore::SnapshotWriter>> writer =
      store_->BeginSnapshot(piece.session_id());
  if (!writer.ok()) return Finish("PutSnapshot", writer.status(), start);
  do {
    if (Status s = (*writer)->Write(piece.data()); !s.ok()) return Finish("PutSnapshot", s, start);
  } while (reader->Read(&piece));
  return Serve<v1::SnapshotInfo>("PutSnapshot", (*writer)->Finish(expected_sha256), response,
                                 start);
}

grpc::Status StateService::GetSnapshot(grpc::ServerContext* context,
                                       const v1::GetSnapshotRequest* request,
                                       grpc::ServerWriter<v1::SnapshotChunk>* writer) {
  const auto start = std::chrono::steady_clock::now();
  bool first = true;
  const Status s = store_->ReadSnapshot(request->session_id(), kSnapshotChunkBytes,
                                        [&](const v1::SnapshotInfo& info, std::string_view bytes) {
                                          if (context->IsCancelled()) return false;
                                          v1::SnapshotChunk chunk;
                                          if (first) *chunk.mutable_info() = info;
                                          first = false;
                                          chunk.set_data(std::string(bytes));
                                          return writer->Write(chunk);
                                        });
  return Finish("GetSnapshot", s, start);
}

StateServer::StateServer(StateStore* store, StateServerOptions options, metrics::Registry* metrics)
    : options_(std::move(options)), service_(store, metrics) {}

StateServer::~StateServer() {
  if (server_ != nullptr) Shutdown(std::chrono::system_clock::now());
}

Status StateServer::Start() {
  AGENTRY_ASSIGN_OR_RETURN(
      server_, StartUnixSocketServer(options_.socket_path, &service_, options_.max_message_bytes));
  return OkStatus();
}

void StateServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  if (server_ == nullptr) return;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(deadline);
  server_.reset();
  std::error_code ec;
  std::filesystem::remove(options_.socket_path, ec);
}

}  // namespace agentry::state
