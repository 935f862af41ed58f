// cli/runtime_endpoint.h — how the CLI's clients (`agentry chat`, `agentry audit`) find an
// agent's runtime API: --url, else the endpoint file `agentry up` writes (DIR/endpoint,
// DIR defaulting to .agentry/NAME), else the only agent `agentry up` runs under .agentry/.
#pragma once

#include <string>

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

}  // namespace agentry::cli
