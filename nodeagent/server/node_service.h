// nodeagent/server/node_service.h — the agentry.node.v1.NodeAgent gRPC service over the
// session manager, and the server that listens on the daemon's unix socket.
//
//   NodeServer server(&sessions, &models, {.socket_path = "/var/run/agentry/nodeagent.sock"});
//   Status s = server.Start();  // socket mode 0660; gRPC's health service reports SERVING
//   ...
//   server.Shutdown(deadline);  // NOT_SERVING, drain Generate calls, then stop
//
// Errors are the session manager's statuses with the same code (Status codes are gRPC's),
// so a client sees NOT_FOUND "session s9: not open", INVALID_ARGUMENT "messages: ...", and so
// on; a malformed request never touches another session.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "agentry/node/v1/node.grpc.pb.h"
#include <grpcpp/grpcpp.h>

#include "common/status.h"
#include "nodeagent/scheduler/model_registry.h"
#include "nodeagent/scheduler/session_manager.h"

namespace agentry::server {

class NodeService final : public agentry::node::v1::NodeAgent::Service {
 public:
  NodeService(scheduler::SessionManager* sessions, scheduler::ModelRegistry* models)
      : sessions_(sessions), models_(models) {}

  grpc::Status OpenSession(grpc::ServerContext* context,
                           const agentry::node::v1::OpenSessionRequest* request,
                           agentry::node::v1::OpenSessionResponse* response) override;
  grpc::Status Generate(grpc::ServerContext* context,
                        const agentry::node::v1::GenerateRequest* request,
                        grpc::ServerWriter<agentry::node::v1::GenerateResponse>* writer) override;
  grpc::Status Cancel(grpc::ServerContext* context, const agentry::node::v1::CancelRequest* request,
                      agentry::node::v1::CancelResponse* response) override;
  grpc::Status CloseSession(grpc::ServerContext* context,
                            const agentry::node::v1::CloseSessionRequest* request,
                            agentry::node::v1::CloseSessionResponse* response) override;
  grpc::Status Snapshot(grpc::ServerContext* context,
                        const agentry::node::v1::SnapshotRequest* request,
                        grpc::ServerWriter<agentry::node::v1::SnapshotChunk>* writer) override;
  grpc::Status Restore(grpc::ServerContext* context,
                       grpc::ServerReader<agentry::node::v1::RestoreRequest>* reader,
                       agentry::node::v1::RestoreResponse* response) override;
  grpc::Status ListDevices(grpc::ServerContext* context,
                           const agentry::node::v1::ListDevicesRequest* request,
                           agentry::node::v1::ListDevicesResponse* response) override;
  grpc::Status ListSessions(grpc::ServerContext* context,
                            const agentry::node::v1::ListSessionsRequest* request,
                            agentry::node::v1::ListSessionsResponse* response) override;

  // Snapshots travel in chunks of this many bytes; a Restore larger than the limit is refused.
  static constexpr size_t kSnapshotChunkBytes = size_t{1} << 20;
  static constexpr size_t kMaxSnapshotBytes = size_t{4} << 30;

 private:
  scheduler::SessionManager* sessions_;
  scheduler::ModelRegistry* models_;
};

struct NodeServerOptions {
  std::string socket_path = "/var/run/agentry/nodeagent.sock";
  int max_message_bytes = 64 << 20;  // one request or response message
};

class NodeServer {
 public:
  NodeServer(scheduler::SessionManager* sessions, scheduler::ModelRegistry* models,
             NodeServerOptions options);
  ~NodeServer();

  // Creates the socket's directory, replaces a stale socket file, listens, sets the socket
  // to mode 0660 and reports SERVING. Unavailable naming the path when it cannot listen.
  Status Start();
  // NOT_SERVING at once; new calls fail UNAVAILABLE; running Generate calls get until
  // `deadline` to finish and are cancelled after it; then the server stops. Returns how many
  // were cancelled.
  int Shutdown(std::chrono::steady_clock::time_point deadline);

 private:
  scheduler::SessionManager* sessions_;
  NodeServerOptions options_;
  NodeService service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace agentry::server
