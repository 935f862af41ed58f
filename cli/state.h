// cli/state.h — `agentry state`: the state sidecar (the agent pod's `state` container, and the
// local data plane's when `agentry up` runs it).
#pragma once

#include <cstdint>
#include <string>

namespace agentry::cli {

struct StateOptions {
  std::string dir = "/var/lib/agentry/state";  // the state volume
  std::string socket = "/run/agentry/state.sock";
  // Calls take milliseconds (a snapshot stream, seconds); gRPC's shutdown also waits this
  // long whenever a client keeps its channel open, so the default is short.
  double grace_seconds = 2;
  bool metrics = true;
  uint16_t metrics_port = 9465;  // 0: a free port, logged
  std::string metrics_host = "127.0.0.1";
};

// Serves until SIGTERM or SIGINT, then lets running calls finish within the grace period.
// Exit code 0 after a clean stop, 1 when it cannot start.
int RunState(const StateOptions& options);

}  // namespace agentry::cli
