// cli/approve.cc — see approve.h.
#include "cli/approve.h"

#include <cstdio>

#include <cpprest/http_client.h>
#include <nlohmann/json.hpp>

#include "cli/runtime_endpoint.h"

namespace agentry::cli {

int RunApprove(const ApproveOptions& options) {
  if (options.user.empty()) {
    std::fprintf(stderr, "agentry approve: --user is required (who decides)\n");
    return 2;
  }
  StatusOr<std::string> url = FindRuntime({options.agent, options.dir, options.url});
  if (!url.ok()) {
    std::fprintf(stderr, "agentry approve: %s\n", url.status().message().c_str());
    return url.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  web::http::client::http_client_config config;
  config.set_timeout(std::chrono::seconds(300));  // the turn goes on after the decision
  web::http::client::http_client client(*url, config);
  const std::string session_path = "/v1/sessions/" + web::uri::encode_data_string(options.session);
  std::string call = options.call;
  if (call.empty()) {
    StatusOr<nlohmann::json> session = CallRuntime(&client, web::http::methods::GET, session_path);
    if (!session.ok()) {
      std::fprintf(stderr, "agentry approve: %s\n", session.status().message().c_str());
      return 1;
    }
    const nlohmann::json& pending = (*session)["pending_approval"];
    if (!pending.is_object()) {
      std::fprintf(stderr, "agentry approve: session %s has no call waiting for approval\n",
                   options.session.c_str());
      return 1;
    }
    call = pending["call_id"].get<std::string>();
    std::printf("%s %s %s(%s)\n", options.deny ? "denying" : "approving", call.c_str(),
                pending["name"].get<std::string>().c_str(), pending["arguments"].dump().c_str());
  }
  const nlohmann::json body = {{"decision", options.deny ? "deny" : "approve"},
                               {"user", options.user},
                               {"reason", options.reason}};
  StatusOr<nlohmann::json> reply =
      CallRuntime(&client, web::http::methods::POST,
                  session_path + "/approvals/" + web::uri::encode_data_string(call), body.dump());
  if (!reply.ok()) {
    std::fprintf(stderr, "agentry approve: %s\n", reply.status().message().c_str());
    return 1;
  }
  std::printf("%s\n", (*reply)["content"].get<std::string>().c_str());
  if ((*reply)["finish_reason"] == "waiting_approval") {
    std::printf("(waiting for approval again: %s)\n", (*reply)["pending_approval"].dump().c_str());
  }
  return 0;
}

}  // namespace agentry::cli
