// runtime/state/state_service.h — the agentry.state.v1.State gRPC service over a StateStore,
// and the server that listens on the sidecar's unix socket.
//
//   StateServer server(&store, {.socket_path = "/run/agentry/state.sock"}, &registry);
//   Status s = server.Start();  // socket mode 0660; gRPC's health service reports SERVING
//   ...
//   server.Shutdown(deadline);  // NOT_SERVING, running calls finish, then stop
//
// Errors are the store's statuses with the same code (Status codes are gRPC's).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agentry/state/v1/state.grpc.pb.h"
#include <grpcpp/grpcpp.h>

#include "common/metrics/registry.h"
#include "common/status.h"
#include "runtime/state/store.h"

namespace agentry::state {

class StateService final : public v1::State::Service {
 public:
  // `metrics` may be null.
  StateService(StateStore* store, metrics::Registry* metrics);

  grpc::Status CreateSession(grpc::ServerContext*, const v1::CreateSessionRequest* request,
                             v1::Session* response) override;
  grpc::Status GetSession(grpc::ServerContext*, const v1::GetSessionRequest* request,
                          v1::Session* response) override;
  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest* request,
                            v1::ListSessionsResponse* response) override;
  grpc::Status UpdateSession(grpc::ServerContext*, const v1::UpdateSessionRequest* request,
                             v1::Session* response) override;
  grpc::Status AppendEvents(grpc::ServerContext*, const v1::AppendEventsRequest* request,
                            v1::AppendEventsResponse* response) override;
  grpc::Status ReadTranscript(grpc::ServerContext*, const v1::ReadTranscriptRequest* request,
                              v1::ReadTranscriptResponse* response) override;
  grpc::Status PutMemory(grpc::ServerContext*, const v1::PutMemoryRequest* request,
                         v1::MemoryEntry* response) override;
  grpc::Status SearchMemory(grpc::ServerContext*, const v1::SearchMemoryRequest* request,
                            v1::SearchMemoryResponse* response) override;
  grpc::Status AppendAudit(grpc::ServerContext*, const v1::AppendAuditRequest* request,
                           v1::AuditRecord* response) override;
  grpc::Status ListAudit(grpc::ServerContext*, const v1::ListAuditRequest* request,
                         v1::ListAuditResponse* response) override;
  grpc::Status VerifyAudit(grpc::ServerContext*, const v1::VerifyAuditRequest* request,
                           v1::VerifyAuditResponse* response) override;
  grpc::Status AddUsage(grpc::ServerContext*, const v1::AddUsageRequest* request,
                        v1::Usage* response) override;
  grpc::Status GetUsage(grpc::ServerContext*, const v1::GetUsageRequest* request,
                        v1::Usage* response) override;
  grpc::Status PutSnapshot(grpc::ServerContext*, grpc::ServerReader<v1::PutSnapshotRequest>* reader,
                           v1::SnapshotInfo* response) override;
  grpc::Status GetSnapshot(grpc::ServerContext*, const v1::GetSnapshotRequest* request,
                           grpc::ServerWriter<v1::SnapshotChunk>* writer) override;

  static constexpr size_t kSnapshotChunkBytes = size_t{1} << 20;

 private:
  // Times the call and counts it by method and result code.
  template <typename Response>
  grpc::Status Serve(const char* method, StatusOr<Response> result, Response* response,
                     std::chrono::steady_clock::time_point start);
  grpc::Status Finish(const char* method, const Status& status,
                      std::chrono::steady_clock::time_point start);

  StateStore* store_;
  metrics::Registry* metrics_;
  metrics::Counter* audit_verify_failures_ = nullptr;
};

struct StateServerOptions {
  std::string socket_path = "/run/agentry/state.sock";
  int max_message_bytes = 32 << 20;
};

class StateServer {
 public:
  StateServer(StateStore* store, StateServerOptions options, metrics::Registry* metrics);
  ~StateServer();
  StateServer(const StateServer&) = delete;
  StateServer& operator=(const StateServer&) = delete;

  // Creates the socket's directory, replaces a stale socket file, listens, sets mode 0660
  // and reports SERVING. Unavailable naming the path when it cannot listen.
  Status Start();
  // NOT_SERVING at once; running calls get until `deadline`; then the server stops.
  void Shutdown(std::chrono::system_clock::time_point deadline);

 private:
  StateServerOptions options_;
  StateService service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace agentry::state
