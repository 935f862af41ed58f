// common/testing/raw_http_client.h — for tests: an HTTP client on a bare socket, for what a
// library client does not do on purpose, such as hanging up in the middle of a response.
//
//   std::string got;
//   ASSERT_TRUE(SendAndHangUp(port, "GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n",
//                             "event: token", &got));
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace agentry::testing {

// Sends `request` to 127.0.0.1:`port`, reads until `until` has arrived, then closes the
// connection. False (with what arrived in `*got`) when the connection failed or ended first.
inline bool SendAndHangUp(uint16_t port, const std::string& request, const std::string& until,
                          std::string* got) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size());
  char buf[4096];
  while (ok && got->find(until) == std::string::npos) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    ok = n > 0;
    if (ok) got->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return ok;
}

}  // namespace agentry::testing
