// HttpTool against a real local HTTP server written for the test: provenance headers and
// secret headers arrive, arguments are escaped into the URL and never change its shape,
// the egress policy refuses before anything is sent, and timeouts, size caps, HTTP errors
// and the stop flag end a call with a clear result.
#include "runtime/tools/http_tool.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "common/http/server.h"
#include "common/metrics/registry.h"

namespace agentry::tools {
namespace {

using nlohmann::json;

class HttpToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/http_tool_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_ + "/secrets/tickets-api");
    std::ofstream(dir_ + "/secrets/tickets-api/token") << "s3cret\n";
    std::ofstream(dir_ + "/sa-token") << "projected-token";
    server_ = std::make_unique<http::HttpServer>(http::HttpServerOptions{.registry = &registry_});
    const auto record = [this](const http::HttpRequest& r) {
      std::lock_guard<std::mutex> lock(mu_);
      ++requests_;
      last_ = r;
    };
    ASSERT_TRUE(server_
                    ->Route("GET", "/api/tickets/{id}",
                            [=](const http::HttpRequest& r) {
                              record(r);
                              return http::HttpResponse::Json(
                                  200, {{"id", r.path_params.at("id")}, {"status", "open"}});
                            })
                    .ok());
    ASSERT_TRUE(server_
                    ->Route("POST", "/api/notes",
                            [=](const http::HttpRequest& r) {
                              record(r);
                              return http::HttpResponse::Json(201, {{"stored", r.body}});
                            })
                    .ok());
    ASSERT_TRUE(server_
                    ->Route("GET", "/slow",
                            [=](const http::HttpRequest& r) {
                              record(r);
                              std::this_thread::sleep_for(std::chrono::seconds(3));
                              return http::HttpResponse::Json(200, {{"late", true}});
                            })
                    .ok());
    ASSERT_TRUE(server_
                    ->Route("GET", "/big",
                            [=](const http::HttpRequest& r) {
                              record(r);
                              http::HttpResponse out;
                              out.content_type = "text/plain";
                              out.body = std::string(3 << 20, 'b');
                              return out;
                            })
                    .ok());
    ASSERT_TRUE(server_->Start().ok());
    base_ = server_->base_url();
  }
  void TearDown() override {
    server_->Stop();
    std::filesystem::remove_all(dir_);
  }

  HttpTool Tool(config::HttpToolSpec spec) {
    return HttpTool(
        std::move(spec), &egress_,
        {.secrets_dir = dir_ + "/secrets", .service_account_token_file = dir_ + "/sa-token"});
  }
  ToolContext Context() {
    return {.agent = "team-a/triage",
            .session_id = "s-1",
            .on_behalf_of = "alice",
            .call_id = "call_1",
            .stop = &stop_};
  }
  int Requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  metrics::Registry registry_;
  std::unique_ptr<http::HttpServer> server_;
  std::string base_, dir_;
  EgressPolicy egress_{{{"127.0.0.1", {}}}};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  int requests_ = 0;
  http::HttpRequest last_;
};

TEST_F(HttpToolTest, TheToolServerSeesProvenanceSecretsAndEscapedArguments) {
  config::HttpToolSpec spec;
  spec.url = base_ + "/api/tickets/{id}";
  spec.headers = {{"X-Api-Token", "", "tickets-api", "token"}, {"X-Team", "a", "", ""}};
  spec.service_account_token = true;
  const ToolRun run = Tool(spec).Call({{"id", 4821}, {"verbose", true}}, Context());
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_EQ(json::parse(run.body)["id"], "4821");
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(last_.Header("x-agentry-agent"), "team-a/triage");
  EXPECT_EQ(last_.Header("x-agentry-session"), "s-1");
  EXPECT_EQ(last_.Header("x-agentry-on-behalf-of"), "alice");
  EXPECT_EQ(last_.Header("x-agentry-tool-call"), "call_1");
  EXPECT_EQ(last_.Header("authorization"), "Bearer projected-token");
  EXPECT_EQ(last_.Header("x-api-token"), "s3cret");
  EXPECT_EQ(last_.Header("x-team"), "a");
  EXPECT_EQ(last_.query.at("verbose"), "true");  // unused arguments go in the query
}

TEST_F(HttpToolTest, AnArgumentCannotChangeTheUrlsShape) {
  json rest = {{"id", "7/../admin?x=1#y"}, {"q", "a b"}};
  StatusOr<std::string> url = FillUrlTemplate("http://h/api/tickets/{id}", &rest);
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(*url, "http://h/api/tickets/7%2F..%2Fadmin%3Fx%3D1%23y");
  EXPECT_EQ(rest, (json{{"q", "a b"}}));
  json none = json::object();
  EXPECT_EQ(FillUrlTemplate("http://h/{id}", &none).status().message(),
            "the URL needs argument \"id\"");
  // A host placeholder filled with another host is still refused by egress.
  config::HttpToolSpec spec;
  spec.url = "http://{host}/x";
  const ToolRun run = Tool(spec).Call({{"host", "evil.com"}}, Context());
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "egress to evil.com:80 is not in spec.egress.allow");
}

TEST_F(HttpToolTest, EgressOutsideTheAllowListIsRefusedBeforeAnythingIsSent) {
  config::HttpToolSpec spec;
  spec.url = "http://localhost:" + std::to_string(server_->port()) + "/api/tickets/{id}";
  const ToolRun run = Tool(spec).Call({{"id", 1}}, Context());
  EXPECT_FALSE(run.ok);
  EXPECT_NE(run.error.find("egress to localhost:"), std::string::npos) << run.error;
  EXPECT_EQ(Requests(), 0);
}

TEST_F(HttpToolTest, PostSendsTheArgumentsAsJson) {
  config::HttpToolSpec spec;
  spec.url = base_ + "/api/notes";
  spec.method = "POST";
  const ToolRun run = Tool(spec).Call({{"text", "hi"}, {"n", 2}}, Context());
  ASSERT_TRUE(run.ok) << run.error;
  EXPECT_EQ(run.http_status, 201);
  EXPECT_EQ(json::parse(json::parse(run.body)["stored"].get<std::string>()),
            (json{{"n", 2}, {"text", "hi"}}));
}

TEST_F(HttpToolTest, TimeoutsCapsErrorsAndStopEndTheCall) {
  config::HttpToolSpec slow;
  slow.url = base_ + "/slow";
  slow.timeout = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  ToolRun run = Tool(slow).Call(json::object(), Context());
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "no answer within the timeout (300 ms)");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));

  // The session's maxDuration left cuts a longer timeout short.
  slow.timeout = std::chrono::seconds(30);
  ToolContext short_of_time = Context();
  short_of_time.max_time = std::chrono::milliseconds(250);
  run = Tool(slow).Call(json::object(), short_of_time);
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "no answer within the timeout (250 ms)");

  std::thread stopper([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop_ = true;
  });
  start = std::chrono::steady_clock::now();
  run = Tool(slow).Call(json::object(), Context());
  stopper.join();
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "stopped");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  stop_ = false;

  config::HttpToolSpec big;
  big.url = base_ + "/big";
  big.max_response_size = {1000, "1000"};
  run = Tool(big).Call(json::object(), Context());
  EXPECT_TRUE(run.ok) << run.error;
  EXPECT_TRUE(run.truncated);
  EXPECT_EQ(run.body, std::string(1000, 'b'));

  config::HttpToolSpec missing;
  missing.url = base_ + "/nothing-here";
  run = Tool(missing).Call(json::object(), Context());
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "HTTP 404");
  EXPECT_EQ(run.http_status, 404);

  config::HttpToolSpec unmounted;
  unmounted.url = base_ + "/api/tickets/1";
  unmounted.headers = {{"X-Key", "", "other", "key"}};
  run = Tool(unmounted).Call(json::object(), Context());
  EXPECT_FALSE(run.ok);
  EXPECT_EQ(run.error, "header X-Key: secret other/key is not mounted");
}

}  // namespace
}  // namespace agentry::tools
