// common/http/server.h — the small HTTP server every Agentry binary embeds.
//
// A wrapper over cpprestsdk's listener that keeps cpprestsdk out of callers' headers and
// gives every binary the same behaviour:
//   - routes by method and path pattern ("/v1/sessions/{id}"), 404 / 405 (with Allow);
//   - request bodies capped at a size limit (413), JSON helpers with clear 400s;
//   - errors answered as {"error":{"code":"INVALID_ARGUMENT","message":"..."}};
//   - /metrics (Prometheus text format), /healthz (alive) and /readyz (ready checks) built in;
//   - request counters and latency histograms;
//   - graceful shutdown: /readyz turns 503, new requests get 503, in-flight ones finish.
//
//   metrics::Registry registry;
//   http::HttpServer server({.port = 8080, .registry = &registry});
//   server.Route("GET", "/v1/sessions/{id}", [](const http::HttpRequest& req) {
//     return http::HttpResponse::Json(200, {{"id", req.path_params.at("id")}});
//   });
//   if (Status s = server.Start(); !s.ok()) ...
//   server.Stop();
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/metrics/registry.h"
#include "common/status.h"

namespace agentry::http {

struct HttpRequest {
  std::string method;                              // "GET", "POST", ...
  std::string path;                                // decoded, without the query
  std::map<std::string, std::string> path_params;  // from "{name}" segments
  std::map<std::string, std::string> query;        // decoded
  std::map<std::string, std::string> headers;      // names lower-cased
  std::string body;

  // The value of header `name` (any case), or "" when absent.
  std::string Header(const std::string& name) const;
  // The body parsed as JSON; InvalidArgument naming the byte offset when it is not JSON.
  StatusOr<nlohmann::json> JsonBody() const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // A streamed body (server-sent events): when set, `body` is ignored; the status and
  // headers go out at once and `stream` then writes the body piece by piece, each piece sent
  // as it is written (chunked transfer encoding). The writer returns false once the client
  // has gone away (the connection closed): the producer should stop its work then.
  using Writer = std::function<bool(std::string_view piece)>;
  std::function<void(const Writer& write)> stream;

  static HttpResponse Json(int status, const nlohmann::json& body);
  static HttpResponse Text(int status, std::string body);
  // {"error":{"code":"NOT_FOUND","message":"..."}} with the HTTP status for the code.
  static HttpResponse Error(const Status& status);
  // text/event-stream, no caching, produced by `stream` (see above).
  static HttpResponse EventStream(std::function<void(const Writer& write)> stream);
  // One server-sent event: "event: NAME\ndata: JSON\n\n".
  static std::string Event(std::string_view name, const nlohmann::json& data);
};

using Handler = std::function<HttpResponse(const HttpRequest&)>;
using ReadinessCheck = std::function<Status()>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;                                // 0 picks a free port; see HttpServer::port()
  size_t max_body_bytes = 1 << 20;                  // larger bodies are refused with 413
  std::chrono::milliseconds shutdown_grace{10000};  // how long Stop() waits for in-flight work
  metrics::Registry* registry = nullptr;            // exposed on /metrics; required
};

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Register before Start(). Patterns are literal segments and "{name}" captures; a
  // duplicate method+pattern is InvalidArgument, as is a malformed pattern.
  Status Route(const std::string& method, const std::string& pattern, Handler handler);
  // /readyz answers 200 only while every check returns OK (and the server is not stopping).
  void AddReadinessCheck(std::string name, ReadinessCheck check);

  // Binds and starts serving. Unavailable when the address cannot be bound.
  Status Start();
  // The bound port (meaningful after a successful Start()).
  uint16_t port() const;
  std::string base_url() const;
  // Stops accepting, waits up to shutdown_grace for in-flight requests, then closes.
  // Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentry::http
