// common/testing/free_port.h — for tests: a TCP port on 127.0.0.1 that nothing listens on
// now, for a process the test starts to listen on.
//
//   const uint16_t port = FreePort();
//   ChildProcess server(AGENTRY_BINARY, {"up", "--port", std::to_string(port)}, log);
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace agentry::testing {

// The port the kernel gives a socket bound to port 0, closed again; 0 when it gave none.
inline uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace agentry::testing
