// cli/nodeagent.h — `agentry nodeagent`: the node daemon (the DaemonSet's process, and the
// local data plane's when run standalone).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace agentry::cli {

struct NodeagentOptions {
  std::string socket = "/var/run/agentry/nodeagent.sock";
  std::vector<std::string> models;  // NAME=PATH[,template=FORMAT]
  int64_t context = 0;              // 0: each model's training context
  int64_t kv_memory_mib = 1024;     // per device
  std::string spill_dir;
  int32_t threads = 0;  // 0: all cores this process may use
  int64_t prefill_chunk = 128;
  std::string cache_type = "f16";
  double grace_seconds = 30;
  bool metrics = true;
  uint16_t metrics_port = 9464;  // 0: a free port, logged
  std::string metrics_host = "127.0.0.1";
  std::string dev_root = "/dev", proc_root = "/proc", sys_root = "/sys";
};

// Serves until SIGTERM or SIGINT, then drains (see docs/nodeagent.md). Exit code 0 after a
// clean drain, 1 when it cannot start, 2 for bad options.
int RunNodeagent(const NodeagentOptions& options);

}  // namespace agentry::cli
