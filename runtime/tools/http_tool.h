// runtime/tools/http_tool.h — a tool that is one HTTP request (spec.tools[].http).
//
// The URL's "{name}" placeholders are filled from the arguments, percent-escaped (a string
// as it is, anything else as its JSON text), so an argument can never add a path segment,
// a query or another host. Arguments the URL does not use go in the query string of a GET
// or DELETE, and as a JSON object body otherwise. The final URL must pass the egress policy
// before anything is sent. Every request carries provenance headers, so the receiving
// system can tell an agent acting for a person from the person:
//   X-Agentry-Agent: team-a/triage
//   X-Agentry-Session: s-1
//   X-Agentry-Tool-Call: call_...
//   X-Agentry-On-Behalf-Of: alice      (when the session names someone)
//   Authorization: Bearer <token>      (serviceAccountToken: the pod's projected token)
// plus the spec's headers, whose secret values are read from the mounted Secret at each call
// (a rotated Secret takes effect without a restart).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/config/agent_spec.h"
#include "runtime/tools/egress_policy.h"
#include "runtime/tools/tool_context.h"
#include "runtime/tools/tool_result.h"

namespace agentry::tools {

struct HttpToolOptions {
  // Secrets are mounted as DIR/SECRET_NAME/KEY (the operator mounts each one the tools use).
  std::string secrets_dir = "/var/run/agentry/secrets";
  std::string service_account_token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
};

// "{id}" in `url_template` replaced by the escaped argument; the arguments it used are
// removed from `*rest`. INVALID_ARGUMENT for a placeholder without an argument.
StatusOr<std::string> FillUrlTemplate(const std::string& url_template, nlohmann::json* rest);

class HttpTool {
 public:
  HttpTool(config::HttpToolSpec spec, const EgressPolicy* egress, HttpToolOptions options)
      : spec_(std::move(spec)), egress_(egress), options_(std::move(options)) {}

  ToolRun Call(const nlohmann::json& arguments, const ToolContext& context) const;

 private:
  config::HttpToolSpec spec_;
  const EgressPolicy* egress_;
  HttpToolOptions options_;
};

}  // namespace agentry::tools
