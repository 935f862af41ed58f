// The HTTP server on a real loopback socket (hermetic: port 0), driven by cpprestsdk's client.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include <cpprest/http_client.h>
#include <gtest/gtest.h>

#include "common/http/server.h"
#include "common/metrics/registry.h"
#include "common/testing/raw_http_client.h"

namespace agentry::http {
namespace {

struct Reply {
  int status = 0;
  std::string body;
  web::http::http_headers headers;
};

Reply Send(const std::string& base, const std::string& method, const std::string& path,
           const std::string& body = "", const std::string& content_type = "application/json") {
  web::http::client::http_client_config config;
  config.set_timeout(std::chrono::seconds(10));
  web::http::client::http_client client(base, config);
  web::http::http_request request(method);
  request.set_request_uri(path);
  if (!body.empty()) request.set_body(body, content_type);
  web::http::http_response response = client.request(request).get();
  return {response.status_code(), response.extract_utf8string(true).get(), response.headers()};
}

class HttpServerTest : public ::testing::Test {
 protected:
  std::promise<void> first_event_read_;
  void SetUp() override {
    server_ = std::make_unique<HttpServer>(HttpServerOptions{
        .max_body_bytes = 1024, .shutdown_grace = std::chrono::seconds(5), .registry = &registry_});
    ASSERT_TRUE(server_
                    ->Route("GET", "/v1/sessions/{id}",
                            [](const HttpRequest& req) {
                              return HttpResponse::Json(
                                  200, {{"id", req.path_params.at("id")},
                                        {"verbose",
                                         req.query.count("verbose") ? req.query.at("verbose") : ""},
                                        {"agent", req.Header("X-Agentry-Agent")}});
                            })
                    .ok());
    ASSERT_TRUE(server_
                    ->Route("POST", "/v1/echo",
                            [](const HttpRequest& req) {
                              StatusOr<nlohmann::json> body = req.JsonBody();
                              if (!body.ok()) return HttpResponse::Error(body.status());
                              return HttpResponse::Json(200, {{"got", *body}});
                            })
                    .ok());
    // Three events, the second held back until the client has read the first.
    ASSERT_TRUE(
        server_
            ->Route("GET", "/v1/events",
                    [this](const HttpRequest&) {
                      return HttpResponse::EventStream([this](const HttpResponse::Writer& write) {
                        write(HttpResponse::Event("token", {{"text", "a\nb"}}));
                        first_event_read_.get_future().wait_for(std::chrono::seconds(10));
                        write(HttpResponse::Event("token", {{"text", "c"}}));
                        write(HttpResponse::Event("done", {{"n", 2}}));
                      });
                    })
            .ok());
    // Events until the writer says the client has gone (or 20 s).
    ASSERT_TRUE(
        server_
            ->Route("GET", "/v1/forever",
                    [this](const HttpRequest&) {
                      return HttpResponse::EventStream([this](const HttpResponse::Writer& write) {
                        const auto give_up =
                            std::chrono::steady_clock::now() + std::chrono::seconds(20);
                        int64_t sent = 0;
                        while (std::chrono::steady_clock::now() < give_up &&
                               write(HttpResponse::Event("token", {{"n", sent}}))) {
                          ++sent;
                          std::this_thread::sleep_for(std::chrono::milliseconds(5));
                        }
                        forever_stopped_.set_value(std::chrono::steady_clock::now() < give_up);
                      });
                    })
            .ok());
    ASSERT_TRUE(server_
                    ->Route("GET", "/v1/throw",
                            [](const HttpRequest&) -> HttpResponse {
                              throw std::runtime_error("handler bug");
                            })
                    .ok());
    ASSERT_TRUE(server_
                    ->Route("GET", "/v1/missing",
                            [](const HttpRequest&) {
                              return HttpResponse::Error(NotFoundError("session s-9 not found"));
                            })
                    .ok());
    ASSERT_TRUE(server_
                    ->Route("GET", "/v1/slow",
                            [this](const HttpRequest&) {
                              slow_started_.set_value();
                              std::this_thread::sleep_for(std::chrono::milliseconds(600));
                              return HttpResponse::Text(200, "done");
                            })
                    .ok());
    server_->AddReadinessCheck("model", [this] {
      return model_loaded_ ? OkStatus() : FailedPreconditionError("model not loaded yet");
    });
    ASSERT_TRUE(server_->Start().ok());
    base_ = server_->base_url();
  }

  metrics::Registry registry_;
  std::unique_ptr<HttpServer> server_;
  std::string base_;
  std::atomic<bool> model_loaded_{true};
  std::promise<void> slow_started_;
  std::promise<bool> forever_stopped_;  // true: the writer saw the client leave
};

TEST_F(HttpServerTest, RoutesWithParamsQueryAndHeaders) {
  web::http::client::http_client client(base_);
  web::http::http_request request(web::http::methods::GET);
  request.set_request_uri("/v1/sessions/s%2D1?verbose=yes%21");
  request.headers().add("X-Agentry-Agent", "triage");
  auto response = client.request(request).get();
  EXPECT_EQ(response.status_code(), 200);
  auto json = nlohmann::json::parse(response.extract_utf8string(true).get());
  EXPECT_EQ(json["id"], "s-1");
  EXPECT_EQ(json["verbose"], "yes!");
  EXPECT_EQ(json["agent"], "triage");
  EXPECT_EQ(response.headers().content_type(), "application/json");
}

TEST_F(HttpServerTest, AnEventStreamSendsEachEventAsItIsWritten) {
  web::http::client::http_client client(base_);
  web::http::http_response response = client.request(web::http::methods::GET, "/v1/events").get();
  EXPECT_EQ(response.status_code(), 200);
  EXPECT_EQ(response.headers().content_type(), "text/event-stream");
  auto body = response.body();
  // The first event arrives while the handler still holds back the rest.
  concurrency::streams::container_buffer<std::string> line;
  body.read_line(line).get();
  EXPECT_EQ(line.collection(), "event: token");
  line.collection().clear();
  line.seekpos(0, std::ios::out);
  body.read_line(line).get();
  EXPECT_EQ(line.collection(), R"(data: {"text":"a\nb"})");
  first_event_read_.set_value();
  concurrency::streams::container_buffer<std::string> rest;
  body.read_to_end(rest).get();
  EXPECT_EQ(rest.collection(),
            "\nevent: token\ndata: {\"text\":\"c\"}\n\nevent: done\ndata: {\"n\":2}\n\n");
}

// A client that closes the connection mid-stream is noticed by the writer, so the work behind
// the stream (a turn's generation) stops instead of running on for nobody.
TEST_F(HttpServerTest, AnEventStreamsWriterSeesTheClientLeave) {
  // Hang up once the first event has arrived.
  std::string got;
  ASSERT_TRUE(testing::SendAndHangUp(
      server_->port(), "GET /v1/forever HTTP/1.1\r\nHost: localhost\r\n\r\n", "event: token", &got))
      << got;
  std::future<bool> stopped = forever_stopped_.get_future();
  ASSERT_EQ(stopped.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_TRUE(stopped.get()) << "the writer kept accepting events after the client left";
}

TEST_F(HttpServerTest, JsonBodyAndJsonErrors) {
  Reply ok = Send(base_, "POST", "/v1/echo", R"({"a":[1,2]})");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(nlohmann::json::parse(ok.body)["got"]["a"][1], 2);

  Reply bad = Send(base_, "POST", "/v1/echo", R"({"a":)");
  EXPECT_EQ(bad.status, 400);
  auto err = nlohmann::json::parse(bad.body);
  EXPECT_EQ(err["error"]["code"], "INVALID_ARGUMENT");
  EXPECT_NE(err["error"]["message"].get<std::string>().find("at byte"), std::string::npos);

  Reply missing = Send(base_, "GET", "/v1/missing");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing.body)["error"]["message"], "session s-9 not found");
}

TEST_F(HttpServerTest, UnknownRouteAndWrongMethod) {
  EXPECT_EQ(Send(base_, "GET", "/nope").status, 404);
  Reply wrong = Send(base_, "DELETE", "/v1/echo");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers["Allow"], "POST");
}

TEST_F(HttpServerTest, BodyLargerThanLimitIsRefused) {
  Reply big = Send(base_, "POST", "/v1/echo", std::string(4096, 'x'), "text/plain");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("larger than 1024 bytes"), std::string::npos);
  // At the limit is fine.
  const std::string at_limit = "\"" + std::string(1022, 'y') + "\"";
  EXPECT_EQ(Send(base_, "POST", "/v1/echo", at_limit).status, 200);
}

TEST_F(HttpServerTest, HandlerExceptionBecomes500AndServerStaysUp) {
  Reply r = Send(base_, "GET", "/v1/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"]["code"], "INTERNAL");
  EXPECT_EQ(Send(base_, "GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, ReadinessReflectsChecks) {
  EXPECT_EQ(Send(base_, "GET", "/readyz").status, 200);
  model_loaded_ = false;
  Reply r = Send(base_, "GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("model: FAILED_PRECONDITION: model not loaded yet"), std::string::npos);
  EXPECT_EQ(Send(base_, "GET", "/healthz").status, 200);  // alive, just not ready
}

TEST_F(HttpServerTest, MetricsCountRequestsByRouteAndCode) {
  Send(base_, "GET", "/v1/sessions/a");
  Send(base_, "GET", "/v1/sessions/b");
  Send(base_, "GET", "/nope");
  Reply m = Send(base_, "GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.headers.content_type(), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(m.body.find("agentry_http_requests_total{method=\"GET\",route=\"/v1/sessions/{id}\","
                        "code=\"200\"} 2"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("route=\"unmatched\",code=\"404\"} 1"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("agentry_http_request_duration_seconds_count{method=\"GET\","
                        "route=\"/v1/sessions/{id}\"} 2"),
            std::string::npos);
}

TEST_F(HttpServerTest, GracefulStopFinishesInFlightRequests) {
  auto in_flight =
      std::async(std::launch::async, [this] { return Send(base_, "GET", "/v1/slow"); });
  slow_started_.get_future().wait();
  const auto stop_started = std::chrono::steady_clock::now();
  server_->Stop();
  // Stop() waited for the slow request rather than cutting it off.
  EXPECT_GE(std::chrono::steady_clock::now() - stop_started, std::chrono::milliseconds(300));
  Reply r = in_flight.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "done");
  EXPECT_THROW(Send(base_, "GET", "/healthz"), std::exception);
  server_->Stop();  // idempotent
}

TEST(HttpServerStartTest, PortZeroPicksDistinctFreePorts) {
  metrics::Registry registry;
  HttpServer a({.registry = &registry});
  HttpServer b({.registry = &registry});
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b.Start().ok());
  EXPECT_NE(a.port(), 0);
  EXPECT_NE(a.port(), b.port());
  EXPECT_EQ(Send(b.base_url(), "GET", "/healthz").body, "ok\n");
}

TEST(HttpServerStartTest, BusyPortIsUnavailable) {
  metrics::Registry registry;
  HttpServer a({.registry = &registry});
  ASSERT_TRUE(a.Start().ok());
  HttpServer b({.port = a.port(), .registry = &registry});
  Status s = b.Start();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
}

TEST(HttpServerStartTest, RoutesAreFixedOnceStarted) {
  metrics::Registry registry;
  HttpServer server({.registry = &registry});
  // A route that shadows a built-in one is refused when the built-ins are added.
  ASSERT_TRUE(server.Route("GET", "/metrics", nullptr).ok());
  EXPECT_EQ(server.Start().code(), StatusCode::kInvalidArgument);
  HttpServer fresh({.registry = &registry});
  ASSERT_TRUE(fresh.Start().ok());
  EXPECT_EQ(fresh.Route("GET", "/late", nullptr).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace agentry::http
