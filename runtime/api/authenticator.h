// runtime/api/authenticator.h — who is calling the runtime's API, and what they may see.
//
// Callers send "Authorization: Bearer TOKEN". In a cluster the token is checked with the
// Kubernetes TokenReview API (the pod's service account needs the system:auth-delegator
// role, which the operator binds); locally it is looked up in a tokens file. Results are
// cached for a minute, keyed by the token's SHA-256, so a busy session does not ask the API
// server on every message.
//
// A session belongs to the principal that created it: only that principal and
// administrators (members of the admin group) see it, message it, decide its approvals or
// close it; everyone else gets 403. The audit log is for administrators only.
//
// Tokens file: one principal a line, "TOKEN,NAME[,GROUP;GROUP...]"; blank lines and lines
// starting with '#' are skipped. It is read again when it changes (a mounted Secret that
// rotates), so tokens can be added or revoked without a restart.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/http/server.h"
#include "common/status.h"

namespace agentry::api {

struct Principal {
  std::string name;  // "alice", "system:serviceaccount:team-a:ci"
  std::vector<std::string> groups;
  bool admin = false;
};

// What checks a bearer token. UNAUTHENTICATED for a token it does not accept, UNAVAILABLE
// when it cannot tell (the API server is down).
class TokenChecker {
 public:
  virtual ~TokenChecker() = default;
  virtual StatusOr<Principal> Check(const std::string& token) = 0;
};

class TokensFile final : public TokenChecker {
 public:
  explicit TokensFile(std::string path) : path_(std::move(path)) {}
  StatusOr<Principal> Check(const std::string& token) override;

 private:
  Status Reload();  // under mu_
  std::string path_;
  std::mutex mu_;
  std::filesystem::file_time_type loaded_{};
  std::map<std::string, Principal> by_token_;
};

struct TokenReviewOptions {
  std::string api_server = "https://kubernetes.default.svc";
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::vector<std::string> audiences;  // empty: the API server's
  std::chrono::seconds cache_for{60};
};

class TokenReview final : public TokenChecker {
 public:
  explicit TokenReview(TokenReviewOptions options) : options_(std::move(options)) {}
  StatusOr<Principal> Check(const std::string& token) override;

 private:
  struct Cached {
    StatusOr<Principal> result;
    std::chrono::steady_clock::time_point until;
  };
  TokenReviewOptions options_;
  std::mutex mu_;
  std::map<std::string, Cached> cache_;  // by the token's SHA-256
};

class Access {
 public:
  // `checker` null: authentication is off and every caller is an anonymous administrator
  // (the local data plane); the operator always sets one in a cluster.
  Access(std::unique_ptr<TokenChecker> checker, std::string admin_group = "agentry:admins")
      : checker_(std::move(checker)), admin_group_(std::move(admin_group)) {}

  bool enabled() const { return checker_ != nullptr; }
  // The caller of `request`: UNAUTHENTICATED without a bearer token or with one refused.
  StatusOr<Principal> Caller(const http::HttpRequest& request);
  // OK when `caller` may use a session `owner` created ("" for one created before
  // authentication was on: administrators only); PERMISSION_DENIED otherwise.
  static Status MayUse(const Principal& caller, const std::string& owner,
                       const std::string& session_id);
  // OK for administrators.
  static Status MustBeAdmin(const Principal& caller, const std::string& what);

 private:
  std::unique_ptr<TokenChecker> checker_;
  std::string admin_group_;
};

// 401 carries WWW-Authenticate: Bearer.
http::HttpResponse AccessError(const Status& status);

}  // namespace agentry::api
