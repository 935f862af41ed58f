// cli/selfcheck.h — `agentry selfcheck`: prove this build works on this machine.
//
// Runs the same pieces every Agentry binary is made of and reports each as a line:
// the CPU features the kernels will dispatch on, the log configuration, decoding of the
// given manifests, a real HTTP server on loopback answering /healthz, /readyz and /metrics,
// and (when promtool is installed) Prometheus' own check of that /metrics output.
#pragma once

#include <string>
#include <vector>

namespace agentry::cli {

struct SelfcheckOptions {
  std::vector<std::string> manifests;
};

// Returns the exit code: 0 when every check passed, 1 otherwise.
int RunSelfcheck(const SelfcheckOptions& options);

}  // namespace agentry::cli
