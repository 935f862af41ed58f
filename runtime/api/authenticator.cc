// runtime/api/authenticator.cc — see authenticator.h.
#include "runtime/api/authenticator.h"

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/file.h"
#include "common/http/client.h"
#include "common/sha256.h"

namespace agentry::api {
namespace {

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) {
    part = Trim(part);
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

}  // namespace

Status TokensFile::Reload() {
  std::error_code error;
  const auto modified = std::filesystem::last_write_time(path_, error);
  if (error) return UnavailableError("tokens file " + path_ + ": " + error.message());
  if (modified == loaded_ && !by_token_.empty()) return OkStatus();
  AGENTRY_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path_));
  std::map<std::string, Principal> tokens;
  std::stringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    line = Trim(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t first = line.find(',');
    if (first == std::string::npos) continue;  // no name: not a principal
    Principal p;
    const std::string token = Trim(line.substr(0, first));
    const std::string rest = line.substr(first + 1);
    const size_t second = rest.find(',');
    p.name = Trim(rest.substr(0, second));
    if (second != std::string::npos) p.groups = Split(rest.substr(second + 1), ';');
    if (!token.empty() && !p.name.empty()) tokens[token] = std::move(p);
  }
  by_token_ = std::move(tokens);
  loaded_ = modified;
  return OkStatus();
}

StatusOr<Principal> TokensFile::Check(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  AGENTRY_RETURN_IF_ERROR(Reload());
  const auto it = by_token_.find(token);
  if (it == by_token_.end()) return UnauthenticatedError("the bearer token is not known");
  return it->second;
}

StatusOr<Principal> TokenReview::Check(const std::string& token) {
  const std::string key = Sha256Hex(token);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end() && it->second.until > now) {
      return it->second.result;
    }
  }
  StatusOr<std::string> own = ReadFileToString(options_.token_file);
  if (!own.ok()) return UnavailableError("TokenReview: " + own.status().message());
  nlohmann::json review = {{"apiVersion", "authentication.k8s.io/v1"},
                           {"kind", "TokenReview"},
                           {"spec", {{"token", token}}}};
  if (!options_.audiences.empty()) review["spec"]["audiences"] = options_.audiences;
  http::ClientRequest request;
  request.method = "POST";
  request.url = options_.api_server + "/apis/authentication.k8s.io/v1/tokenreviews";
  request.body = review.dump();
  request.headers = {{"Authorization", "Bearer " + Trim(*own)}};
  request.ca_file = options_.api_server.starts_with("https://") ? options_.ca_file : "";
  request.timeout = std::chrono::seconds(5);
  StatusOr<http::ClientResponse> response = http::Fetch(request);
  if (!response.ok()) return UnavailableError("TokenReview: " + response.status().message());
  if (response->status != 201 && response->status != 200) {
    return UnavailableError("TokenReview: the API server answered HTTP " +
                            std::to_string(response->status));
  }
  const nlohmann::json answer = nlohmann::json::parse(response->body, nullptr, false);
  if (!answer.is_object() || !answer.contains("status") || !answer["status"].is_object()) {
    return UnavailableError("TokenReview: the API server's answer has no status");
  }
  const nlohmann::json& status = answer["status"];
  StatusOr<Principal> result = UnauthenticatedError(
      "the bearer token was refused" + (status.contains("error") && status["error"].is_string()
                                            ? ": " + status["error"].get<std::string>()
                                            : std::string()));
  if (status.value("authenticated", false) && status.contains("user") &&
      status["user"].is_object() && status["user"].contains("username") &&
      status["user"]["username"].is_string()) {
    Principal p;
    p.name = status["user"]["username"];
    if (status["user"].contains("groups") && status["user"]["groups"].is_array()) {
      for (const nlohmann::json& g : status["user"]["groups"]) {
        if (g.is_string()) p.groups.push_back(g);
      }
    }
    result = p;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() > 10000) cache_.clear();  // bounded: a flood of bad tokens cannot grow it
  cache_.insert_or_assign(key, Cached{result, now + options_.cache_for});
  return result;
}

StatusOr<Principal> Access::Caller(const http::HttpRequest& request) {
  if (checker_ == nullptr) return Principal{"anonymous", {}, true};
  const std::string header = request.Header("Authorization");
  if (!header.starts_with("Bearer ") || Trim(header.substr(7)).empty()) {
    return UnauthenticatedError("send Authorization: Bearer TOKEN");
  }
  AGENTRY_ASSIGN_OR_RETURN(Principal p, checker_->Check(Trim(header.substr(7))));
  p.admin = std::find(p.groups.begin(), p.groups.end(), admin_group_) != p.groups.end();
  return p;
}

Status Access::MayUse(const Principal& caller, const std::string& owner,
                      const std::string& session_id) {
  if (caller.admin || (!owner.empty() && caller.name == owner)) return OkStatus();
  return PermissionDeniedError("session " + session_id + " belongs to another principal");
}

Status Access::MustBeAdmin(const Principal& caller, const std::string& what) {
  if (caller.admin) return OkStatus();
  return PermissionDeniedError(what + " is for administrators (" + caller.name +
                               " is not in the admin group)");
}

http::HttpResponse AccessError(const Status& status) {
  http::HttpResponse r = http::HttpResponse::Error(status);
  if (status.code() == StatusCode::kUnauthenticated) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  return r;
}

}  // namespace agentry::api
