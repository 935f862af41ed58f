// cli/audit.cc — see audit.h.
#include "cli/audit.h"

#include <cstdio>

#include <cpprest/http_client.h>
#include <nlohmann/json.hpp>

#include "cli/runtime_endpoint.h"

namespace agentry::cli {
namespace {

using Json = nlohmann::json;

// GET `path` of the runtime's API.
StatusOr<Json> Get(const std::string& url, const std::string& path) {
  web::http::client::http_client_config config;
  config.set_timeout(std::chrono::seconds(60));
  web::http::client::http_client client(url, config);
  return CallRuntime(&client, web::http::methods::GET, path);
}

}  // namespace

int RunAudit(const AuditOptions& options) {
  if (options.action != "verify" && options.action != "list") {
    std::fprintf(stderr, "agentry audit: verify or list, not %s\n", options.action.c_str());
    return 2;
  }
  StatusOr<std::string> url = FindRuntime({options.agent, options.dir, options.url});
  if (!url.ok()) {
    std::fprintf(stderr, "agentry audit: %s\n", url.status().message().c_str());
    return url.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (options.action == "verify") {
    StatusOr<Json> v = Get(*url, "/v1/audit/verify");
    if (!v.ok()) {
      std::fprintf(stderr, "agentry audit: %s\n", v.status().message().c_str());
      return 1;
    }
    if ((*v)["ok"] == true) {
      std::printf(
          "audit chain verified: %lld records, head %s\n",
          static_cast<long long>((*v)["records"].get<int64_t>()),  // NOLINT(google-runtime-int)
          (*v)["head_hash"].get<std::string>().c_str());
      return 0;
    }
    std::printf(
        "audit chain BROKEN at record %lld: %s\n",
        static_cast<long long>((*v)["first_bad_seq"].get<int64_t>()),  // NOLINT(google-runtime-int)
        (*v)["reason"].get<std::string>().c_str());
    return 1;
  }
  int64_t after = 0;
  while (true) {
    std::string path = "/v1/audit?limit=1000&after=" + std::to_string(after);
    if (!options.session.empty())
      path += "&session=" + web::uri::encode_data_string(options.session);
    StatusOr<Json> page = Get(*url, path);
    if (!page.ok()) {
      std::fprintf(stderr, "agentry audit: %s\n", page.status().message().c_str());
      return 1;
    }
    for (const Json& r : (*page)["records"]) std::printf("%s\n", r.dump().c_str());
    if (!page->contains("next_after")) return 0;
    after = (*page)["next_after"].get<int64_t>();
  }
}

}  // namespace agentry::cli
