// common/grpc/unix_socket_server.h — a gRPC server on a unix socket, started the same way by
// every Agentry daemon (node daemon, state sidecar).
//
//   StatusOr<std::unique_ptr<grpc::Server>> server =
//       StartUnixSocketServer("/run/agentry/state.sock", &service, 32 << 20);
//
// Creates the socket's directory, replaces a socket file left by a process that died, listens
// with gRPC's default health service, sets the socket to mode 0660 (the pod's group may
// connect, others may not) and reports SERVING. Unavailable naming the path when it cannot.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status.h"

namespace agentry {

StatusOr<std::unique_ptr<grpc::Server>> StartUnixSocketServer(const std::string& path,
                                                              grpc::Service* service,
                                                              int max_message_bytes);

}  // namespace agentry
