// common/http/client.h — outbound HTTP requests with the limits a caller that does not trust
// the other side needs: a deadline for the whole exchange, a cap on the bytes read from the
// response (the rest is never read), and a stop flag that abandons the request at once.
//
//   http::ClientRequest request{.method = "GET", .url = "http://tickets.svc/api/tickets/7"};
//   request.timeout = std::chrono::seconds(5);
//   request.max_response_bytes = 1 << 20;
//   StatusOr<http::ClientResponse> r = http::Fetch(request, &stop);
//
// A wrapper over cpprestsdk's client that keeps cpprestsdk out of callers' headers. Redirects
// are not followed: a 3xx is returned as it is, so the caller's egress checks see every host.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace agentry::http {

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type = "application/json";  // when there is a body
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  int64_t max_response_bytes = int64_t{1} << 20;
  std::string ca_file;  // https: trust only this CA bundle (PEM); empty: the system's
};

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // at most max_response_bytes
  bool truncated = false;                      // the body went on past the cap
  int64_t elapsed_ms = 0;

  // The value of header `name` (lower case), or "".
  std::string Header(const std::string& name) const;
};

// DEADLINE_EXCEEDED past the timeout, CANCELLED once `*stop` is set (checked every few
// milliseconds; null: never), UNAVAILABLE when the server cannot be reached or the exchange
// fails, INVALID_ARGUMENT for a malformed URL. An HTTP error status is a response, not an
// error.
StatusOr<ClientResponse> Fetch(const ClientRequest& request,
                               const std::atomic<bool>* stop = nullptr);

}  // namespace agentry::http
