// Bearer tokens: a tokens file (read again when it changes) and the Kubernetes TokenReview
// API (a fake API server written for the test answers the review), with the result cached;
// who may use a session and the audit log.
#include "runtime/api/authenticator.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/metrics/registry.h"

namespace agentry::api {
namespace {

using nlohmann::json;

http::HttpRequest WithToken(const std::string& token) {
  http::HttpRequest r;
  if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
  return r;
}

TEST(AuthenticatorTest, TokensFileNamesPrincipalsAndFollowsChanges) {
  const std::string path = ::testing::TempDir() + "/tokens_" + std::to_string(getpid());
  std::ofstream(path) << "# token,name,groups\n"
                         "tok-alice,alice\n"
                         "tok-root, root , agentry:admins; ops\n"
                         "broken-line\n";
  Access access(std::make_unique<TokensFile>(path));
  StatusOr<Principal> alice = access.Caller(WithToken("tok-alice"));
  ASSERT_TRUE(alice.ok()) << alice.status().message();
  EXPECT_EQ(alice->name, "alice");
  EXPECT_FALSE(alice->admin);
  StatusOr<Principal> root = access.Caller(WithToken("tok-root"));
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->name, "root");
  EXPECT_EQ(root->groups, (std::vector<std::string>{"agentry:admins", "ops"}));
  EXPECT_TRUE(root->admin);
  EXPECT_EQ(access.Caller(WithToken("nope")).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Caller(WithToken("")).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Caller(WithToken("broken-line")).status().code(), StatusCode::kUnauthenticated);
  // Revoking alice and adding bob needs no restart.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ofstream(path) << "tok-bob,bob\n";
  std::filesystem::last_write_time(
      path, std::filesystem::last_write_time(path) + std::chrono::seconds(1));
  EXPECT_EQ(access.Caller(WithToken("tok-alice")).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(access.Caller(WithToken("tok-bob"))->name, "bob");
  std::filesystem::remove(path);
}

TEST(AuthenticatorTest, TokenReviewAsksTheApiServerOnceAMinutePerToken) {
  metrics::Registry registry;
  http::HttpServer api_server(http::HttpServerOptions{.registry = &registry});
  std::atomic<int> reviews{0};
  std::string seen_authorization;
  ASSERT_TRUE(api_server
                  .Route("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                         [&](const http::HttpRequest& r) {
                           ++reviews;
                           seen_authorization = r.Header("authorization");
                           const json review = json::parse(r.body);
                           json out = review;
                           if (review["spec"]["token"] == "good") {
                             out["status"] = {
                                 {"authenticated", true},
                                 {"user",
                                  {{"username", "system:serviceaccount:team-a:ci"},
                                   {"groups", {"system:serviceaccounts", "agentry:admins"}}}}};
                           } else {
                             out["status"] = {{"authenticated", false}, {"error", "token expired"}};
                           }
                           return http::HttpResponse::Json(201, out);
                         })
                  .ok());
  ASSERT_TRUE(api_server.Start().ok());
  const std::string own = ::testing::TempDir() + "/sa_token_" + std::to_string(getpid());
  std::ofstream(own) << "runtime-sa-token\n";
  TokenReviewOptions options;
  options.api_server = api_server.base_url();
  options.token_file = own;
  Access access(std::make_unique<TokenReview>(options));
  for (int i = 0; i < 3; ++i) {
    StatusOr<Principal> p = access.Caller(WithToken("good"));
    ASSERT_TRUE(p.ok()) << p.status().message();
    EXPECT_EQ(p->name, "system:serviceaccount:team-a:ci");
    EXPECT_TRUE(p->admin);
  }
  EXPECT_EQ(reviews.load(), 1);  // cached
  EXPECT_EQ(seen_authorization, "Bearer runtime-sa-token");
  const Status bad = access.Caller(WithToken("expired")).status();
  EXPECT_EQ(bad.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(bad.message(), "the bearer token was refused: token expired");
  api_server.Stop();
  // The API server gone: the cached answer holds, a new token cannot be told.
  EXPECT_TRUE(access.Caller(WithToken("good")).ok());
  EXPECT_EQ(access.Caller(WithToken("other")).status().code(), StatusCode::kUnavailable);
  std::filesystem::remove(own);
}

TEST(AuthenticatorTest, SessionsBelongToTheirPrincipal) {
  const Principal alice{"alice", {}, false}, bob{"bob", {}, false}, root{"root", {}, true};
  EXPECT_TRUE(Access::MayUse(alice, "alice", "s1").ok());
  EXPECT_EQ(Access::MayUse(bob, "alice", "s1").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(Access::MayUse(root, "alice", "s1").ok());
  EXPECT_EQ(Access::MayUse(alice, "", "s0").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Access::MustBeAdmin(alice, "the audit log").message(),
            "the audit log is for administrators (alice is not in the admin group)");
  EXPECT_EQ(AccessError(UnauthenticatedError("x")).status, 401);
  EXPECT_EQ(AccessError(UnauthenticatedError("x")).headers,
            (std::vector<std::pair<std::string, std::string>>{{"WWW-Authenticate", "Bearer"}}));
}

}  // namespace
}  // namespace agentry::api
