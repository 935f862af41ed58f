// cli/runtime_endpoint.cc — see runtime_endpoint.h.
#include "cli/runtime_endpoint.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/file.h"
#include "common/strings.h"

namespace agentry::cli {

namespace fs = std::filesystem;

StatusOr<std::string> FindRuntime(const RuntimeLocation& where) {
  if (!where.url.empty()) return where.url;
  std::string endpoint;
  if (!where.dir.empty() || !where.agent.empty()) {
    endpoint = (where.dir.empty() ? ".agentry/" + where.agent : where.dir) + "/endpoint";
  } else {
    std::vector<std::string> found;
    std::error_code ec;
    for (const fs::directory_entry& d : fs::directory_iterator(".agentry", ec)) {
      if (fs::exists(d.path() / "endpoint")) found.push_back((d.path() / "endpoint").string());
    }
    if (found.size() != 1) {
      return InvalidArgumentError(
          found.empty() ? "no agent is running here (no .agentry/*/endpoint): start one with "
                          "`agentry up -f AGENT.yaml`, or give --url"
                        : "several agents run here: name one or give --url");
    }
    endpoint = found.front();
  }
  StatusOr<std::string> url = ReadFileToString(endpoint);
  if (!url.ok()) {
    return NotFoundError(endpoint + " not found: is `agentry up` running for this agent? " +
                         "(or give --url)");
  }
  return std::string(TrimAsciiWhitespace(*url));
}

std::string RuntimeErrorLine(int status, const std::string& body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    return j["error"].value("code", "") + ": " + j["error"].value("message", "");
  }
  return "HTTP " + std::to_string(status) + (body.empty() ? "" : ": " + body);
}

void AddCredentials(web::http::http_request* request) {
  const char* token = std::getenv("AGENTRY_TOKEN");
  if (token != nullptr && *token != '\0') {
    request->headers().add("Authorization", std::string("Bearer ") + token);
  }
}

StatusOr<nlohmann::json> CallRuntime(web::http::client::http_client* client,
                                     const web::http::method& method, const std::string& path,
                                     const std::string& body) {
  try {
    web::http::http_request request(method);
    request.set_request_uri(path);
    if (!body.empty()) request.set_body(body, "application/json");
    AddCredentials(&request);
    web::http::http_response response = client->request(request).get();
    const std::string text = response.extract_utf8string(true).get();
    if (response.status_code() >= 300) {
      return UnavailableError(RuntimeErrorLine(response.status_code(), text));
    }
    return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  } catch (const std::exception& e) {
    return UnavailableError(std::string("the runtime could not be reached: ") + e.what());
  }
}

}  // namespace agentry::cli
