// cli/up.h — `agentry up`: the local data plane. Runs the node daemon, the state sidecar and
// the runtime for one ManagedAgent as local processes (the same binary and flags the cluster
// uses), prints where the API is, and stops all three on Ctrl-C.
#pragma once

#include <cstdint>
#include <string>

namespace agentry::cli {

struct UpOptions {
  std::string manifest;    // -f: the ManagedAgent (YAML)
  std::string model_file;  // the GGUF file; default: spec.model.source.file
  std::string dir;         // sockets and the state volume; default: .agentry/<name>
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // the runtime's API; 0: a free port
  int32_t max_tokens = 512;
};

// Exit code 0 after Ctrl-C (SIGINT) or SIGTERM stopped everything cleanly, 1 when a process
// could not start or died, 2 for a bad manifest or option.
int RunUp(const UpOptions& options);

}  // namespace agentry::cli
