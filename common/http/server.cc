#include "common/http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <mutex>
#include <system_error>

#include <cpprest/http_listener.h>
#include <cpprest/producerconsumerstream.h>

#include "common/http/route_table.h"
#include "common/log/log.h"
#include "common/metrics/text_format.h"

namespace agentry::http {
namespace {

namespace cl = web::http::experimental::listener;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Asks the kernel for a free port on `host`. cpprestsdk's listener cannot report the port
// it bound for ":0", so we pick one and bind it right after; Start() retries on a race.
StatusOr<uint16_t> PickFreePort(const std::string& host) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return UnavailableError("socket(): " + std::generic_category().message(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return InvalidArgumentError("host \"" + host + "\": not an IPv4 address");
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string err = std::generic_category().message(errno);
    ::close(fd);
    return UnavailableError("bind " + host + ":0: " + err);
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

}  // namespace

std::string HttpRequest::Header(const std::string& name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? std::string() : it->second;
}

StatusOr<nlohmann::json> HttpRequest::JsonBody() const {
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    return InvalidArgumentError("request body is not valid JSON at byte " + std::to_string(e.byte) +
                                ": " + e.what());
  }
}

HttpResponse HttpResponse::Json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::Error(const Status& status) {
  return Json(
      HttpStatusFromCode(status.code()),
      {{"error",
        {{"code", std::string(StatusCodeName(status.code()))}, {"message", status.message()}}}});
}

HttpResponse HttpResponse::EventStream(std::function<void(const Writer& write)> stream) {
  HttpResponse r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.stream = std::move(stream);
  return r;
}

std::string HttpResponse::Event(std::string_view name, const nlohmann::json& data) {
  // dump() escapes newlines inside strings, so the data is one line, as SSE needs.
  return "event: " + std::string(name) + "\ndata: " + data.dump() + "\n\n";
}

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options)
      : options_(std::move(options)),
        log_("http"),
        requests_(options_.registry->AddCounter("agentry_http_requests_total",
                                                "HTTP requests answered, by route and status code.",
                                                {"method", "route", "code"})),
        duration_(options_.registry->AddHistogram(
            "agentry_http_request_duration_seconds",
            "Time from receiving a request to having its response ready to send.",
            {"method", "route"}, metrics::DefaultLatencyBuckets())),
        in_flight_gauge_(
            options_.registry
                ->AddGauge("agentry_http_requests_in_flight", "HTTP requests being handled now.")
                .WithLabels({})) {}

  Status Route(const std::string& method, const std::string& pattern, Handler handler) {
    if (started_) return FailedPreconditionError("Route() after Start(): " + pattern);
    AGENTRY_RETURN_IF_ERROR(routes_.Add(method, pattern, handlers_.size()));
    handlers_.push_back(std::move(handler));
    return OkStatus();
  }

  void AddReadinessCheck(std::string name, ReadinessCheck check) {
    std::lock_guard<std::mutex> lock(checks_mu_);
    checks_.emplace_back(std::move(name), std::move(check));
  }

  Status Start() {
    if (started_) return FailedPreconditionError("server already started");
    AGENTRY_RETURN_IF_ERROR(RegisterBuiltins());
    Status last;
    // With port 0 another process can take the picked port before we bind it; try again.
    const int attempts = options_.port == 0 ? 10 : 1;
    for (int i = 0; i < attempts; ++i) {
      uint16_t port = options_.port;
      if (port == 0) {
        AGENTRY_ASSIGN_OR_RETURN(port, PickFreePort(options_.host));
      }
      last = Open(port);
      if (last.ok()) {
        port_ = port;
        started_ = true;
        log_.Info("http server listening", {{"address", base_url()}});
        return OkStatus();
      }
    }
    return last;
  }

  void Stop() {
    if (!started_ || stopped_.exchange(true)) return;
    stopping_ = true;  // /readyz answers 503 from now on; new requests are refused
    {
      std::unique_lock<std::mutex> lock(in_flight_mu_);
      const bool drained =
          in_flight_cv_.wait_for(lock, options_.shutdown_grace, [this] { return in_flight_ == 0; });
      if (!drained) {
        log_.Warn("shutdown grace period over with requests still in flight",
                  {{"in_flight", in_flight_}});
      }
    }
    try {
      listener_->close().wait();
    } catch (const std::exception& e) {
      log_.Warn("closing listener failed", {{"error", e.what()}});
    }
    log_.Info("http server stopped", {{"address", base_url()}});
  }

  uint16_t port() const { return port_; }
  std::string base_url() const { return "http://" + options_.host + ":" + std::to_string(port_); }

 private:
  Status Open(uint16_t port) {
    const std::string url = "http://" + options_.host + ":" + std::to_string(port);
    try {
      auto listener = std::make_unique<cl::http_listener>(web::uri(url));
      listener->support([this](const web::http::http_request& request) { Dispatch(request); });
      listener->open().wait();
      listener_ = std::move(listener);
      return OkStatus();
    } catch (const std::exception& e) {
      return UnavailableError("listen on " + url + ": " + e.what());
    }
  }

  Status RegisterBuiltins() {
    AGENTRY_RETURN_IF_ERROR(Route("GET", "/metrics", [this](const HttpRequest&) {
      HttpResponse r;
      r.content_type = std::string(metrics::kTextFormatContentType);
      r.body = metrics::SerializeTextFormat(options_.registry->Collect());
      return r;
    }));
    AGENTRY_RETURN_IF_ERROR(Route(
        "GET", "/healthz", [](const HttpRequest&) { return HttpResponse::Text(200, "ok\n"); }));
    return Route("GET", "/readyz", [this](const HttpRequest&) { return Readiness(); });
  }

  HttpResponse Readiness() {
    if (stopping_) return HttpResponse::Text(503, "not ready: shutting down\n");
    std::string failures;
    std::lock_guard<std::mutex> lock(checks_mu_);
    for (const auto& [name, check] : checks_) {
      Status s = check();
      if (!s.ok()) failures += name + ": " + s.ToString() + "\n";
    }
    if (!failures.empty()) return HttpResponse::Text(503, "not ready:\n" + failures);
    return HttpResponse::Text(200, "ok\n");
  }

  // Reads the body through the stream so a huge body is refused before it is buffered.
  // Returns false when it exceeds the limit.
  bool ReadBody(web::http::http_request& request, std::string* body) {
    const uint64_t declared = request.headers().content_length();
    if (declared > options_.max_body_bytes) return false;
    auto stream = request.body();
    if (!stream.is_valid()) return true;
    auto buffer = stream.streambuf();
    std::vector<uint8_t> chunk(size_t{64} * 1024);
    while (true) {
      const size_t n = buffer.getn(chunk.data(), chunk.size()).get();
      if (n == 0) break;
      body->append(reinterpret_cast<const char*>(chunk.data()), n);
      if (body->size() > options_.max_body_bytes) return false;
    }
    return true;
  }

  // By value: http_request is a shared handle, and reply() needs a non-const one.
  // NOLINTNEXTLINE(performance-unnecessary-value-param)
  void Dispatch(web::http::http_request request) {
    const auto start = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(in_flight_mu_);
      ++in_flight_;
    }
    in_flight_gauge_.Increment();

    HttpRequest req;
    req.method = request.method();
    std::string route_label = "unmatched";
    HttpResponse response;
    try {
      response = Handle(request, &req, &route_label);
    } catch (const std::exception& e) {
      log_.Error("handler threw",
                 {{"method", req.method}, {"path", req.path}, {"error", e.what()}});
      response = HttpResponse::Error(InternalError("internal error"));
    }

    web::http::http_response reply(static_cast<web::http::status_code>(response.status));
    for (const auto& [name, value] : response.headers) reply.headers().add(name, value);
    if (stopping_) reply.headers().add("Connection", "close");
    if (response.stream) {
      Stream(request, &reply, response);
    } else {
      reply.set_body(std::move(response.body), response.content_type);
    }
    // Counted before the reply goes out, so a client that has its response also sees it in
    // /metrics (the write itself is the client's and the network's time, not the server's).
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    requests_.WithLabels({req.method, route_label, std::to_string(response.status)}).Increment();
    duration_.WithLabels({req.method, route_label}).Observe(seconds);
    if (!response.stream) {
      try {
        request.reply(reply).wait();
      } catch (const std::exception& e) {
        log_.Debug("client went away before the reply", {{"error", e.what()}});
      }
    }
    in_flight_gauge_.Decrement();
    {
      std::lock_guard<std::mutex> lock(in_flight_mu_);
      --in_flight_;
    }
    in_flight_cv_.notify_all();
  }

  // Sends the status and headers, then the body as `response.stream` writes it: an istream
  // over a producer-consumer buffer, each piece put and synced so that it leaves at once.
  // NOLINTNEXTLINE(performance-unnecessary-value-param)
  void Stream(web::http::http_request request, web::http::http_response* reply,
              const HttpResponse& response) {
    concurrency::streams::producer_consumer_buffer<uint8_t> buffer;
    reply->set_body(concurrency::streams::istream(buffer), response.content_type);
    pplx::task<void> sent = request.reply(*reply);
    try {
      // The reply task ends before the body does only when sending failed: the client left.
      response.stream([&](std::string_view piece) {
        if (sent.is_done()) return false;
        buffer.putn_nocopy(reinterpret_cast<const uint8_t*>(piece.data()), piece.size()).wait();
        buffer.sync().wait();
        return true;
      });
    } catch (const std::exception& e) {
      log_.Error("stream writer threw", {{"error", e.what()}});
    }
    buffer.close(std::ios_base::out).wait();
    try {
      sent.wait();
    } catch (const std::exception& e) {
      log_.Debug("client went away during the stream", {{"error", e.what()}});
    }
  }

  HttpResponse Handle(web::http::http_request& request, HttpRequest* req, std::string* route) {
    const web::uri& uri = request.relative_uri();
    req->path = web::uri::decode(uri.path());
    for (const auto& [key, value] : web::uri::split_query(uri.query())) {
      req->query[web::uri::decode(key)] = web::uri::decode(value);
    }
    for (const auto& [name, value] : request.headers()) req->headers[Lower(name)] = value;

    if (stopping_ && req->path != "/readyz" && req->path != "/healthz") {
      return HttpResponse::Error(UnavailableError("server is shutting down"));
    }
    std::vector<std::string> allowed;
    std::optional<RouteTable::Match> match = routes_.Find(req->method, req->path, &allowed);
    if (!match) {
      if (allowed.empty()) return HttpResponse::Error(NotFoundError("no route for " + req->path));
      HttpResponse r = HttpResponse::Error(
          Status(StatusCode::kInvalidArgument, "method " + req->method + " not allowed"));
      r.status = 405;
      std::string allow;
      for (const std::string& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
      r.headers.emplace_back("Allow", allow);
      return r;
    }
    *route = match->pattern;
    req->path_params = std::move(match->params);
    if (!ReadBody(request, &req->body)) {
      HttpResponse r = HttpResponse::Error(ResourceExhaustedError(
          "request body larger than " + std::to_string(options_.max_body_bytes) + " bytes"));
      r.status = 413;
      return r;
    }
    return handlers_[match->index](*req);
  }

  HttpServerOptions options_;
  log::Logger log_;
  RouteTable routes_;
  std::vector<Handler> handlers_;
  std::mutex checks_mu_;
  std::vector<std::pair<std::string, ReadinessCheck>> checks_;

  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& duration_;
  metrics::Gauge& in_flight_gauge_;

  std::unique_ptr<cl::http_listener> listener_;
  uint16_t port_ = 0;
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stopped_{false};
  std::mutex in_flight_mu_;
  std::condition_variable in_flight_cv_;
  int in_flight_ = 0;
};

HttpServer::HttpServer(HttpServerOptions options) {
  // The belief: every binary exposes /metrics, so a server without a registry is a bug.
  if (options.registry == nullptr) {
    std::fprintf(stderr, "agentry http: HttpServerOptions.registry is required\n");
    std::abort();
  }
  impl_ = std::make_unique<Impl>(std::move(options));
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Route(const std::string& method, const std::string& pattern, Handler handler) {
  return impl_->Route(method, pattern, std::move(handler));
}

void HttpServer::AddReadinessCheck(std::string name, ReadinessCheck check) {
  impl_->AddReadinessCheck(std::move(name), std::move(check));
}

Status HttpServer::Start() { return impl_->Start(); }
uint16_t HttpServer::port() const { return impl_->port(); }
std::string HttpServer::base_url() const { return impl_->base_url(); }
void HttpServer::Stop() { impl_->Stop(); }

}  // namespace agentry::http
