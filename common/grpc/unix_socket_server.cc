#include "common/grpc/unix_socket_server.h"

#include <sys/stat.h>
#include <sys/un.h>

#include <filesystem>

namespace agentry {

StatusOr<std::unique_ptr<grpc::Server>> StartUnixSocketServer(const std::string& path,
                                                              grpc::Service* service,
                                                              int max_message_bytes) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return InvalidArgumentError("socket path " + path +
                                ": longer than a unix socket path may be (" +
                                std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes)");
  }
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) return UnavailableError("socket directory " + dir.string() + ": " + ec.message());
  // A socket file left by a process that died; a live one's is replaced too, as one daemon
  // serves each socket.
  std::filesystem::remove(path, ec);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return UnavailableError("cannot listen on unix socket " + path);
  if (chmod(path.c_str(), 0660) != 0) {
    return UnavailableError("socket " + path + ": cannot set mode 0660");
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  return server;
}

}  // namespace agentry
