// cli/runtime_endpoint.h — how the CLI's clients (`agentry chat`, `agentry audit`) find an
// agent's runtime API: --url, else the endpoint file `agentry up` writes (DIR/endpoint,
// DIR defaulting to .agentry/NAME), else the only agent `agentry up` runs under .agentry/.
#pragma once

#include <string>

#include <cpprest/http_client.h>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace agentry::cli {

struct RuntimeLocation {
  std::string agent;  // the name `agentry up` ran
  std::string dir;    // the `agentry up` directory
  std::string url;    // given outright
};

// The API's base URL. INVALID_ARGUMENT when no agent or several run here and none is named;
// NOT_FOUND when the named one has no endpoint file (not running).
StatusOr<std::string> FindRuntime(const RuntimeLocation& where);

// The runtime's error answer as one line: "NOT_FOUND: session s-1 not found" (or the HTTP
// status and body when it is not the runtime's JSON error).
std::string RuntimeErrorLine(int status, const std::string& body);

// Adds "Authorization: Bearer $AGENTRY_TOKEN" when that variable is set: a runtime started
// with --auth wants the caller's token.
void AddCredentials(web::http::http_request* request);

// One call of the runtime's JSON API: the answer's JSON, or UNAVAILABLE with the error line
// (or why the runtime could not be reached).
StatusOr<nlohmann::json> CallRuntime(web::http::client::http_client* client,
                                     const web::http::method& method, const std::string& path,
                                     const std::string& body = "");

}  // namespace agentry::cli
