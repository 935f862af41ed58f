// cli/validate.h — `agentry validate FILE...`: decode ManagedAgent manifests locally.
#pragma once

#include <string>
#include <vector>

namespace agentry::cli {

// Prints "FILE: ok (agent NAMESPACE/NAME)" or every field error; returns the exit code
// (0 when every ManagedAgent document is valid, 1 otherwise).
int RunValidate(const std::vector<std::string>& files);

}  // namespace agentry::cli
