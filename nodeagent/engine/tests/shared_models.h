// nodeagent/engine/tests/shared_models.h — where tests find the real models of ../shared.
#pragma once

#include <sys/stat.h>

#include <string>

namespace agentry::engine::test_support {

// The path of ../shared/models/<relative>, or "" when the checkout has no such file (tests
// then skip, saying which file is missing).
inline std::string SharedModel(const std::string& relative) {
  const std::string path = std::string(AGENTRY_SHARED_MODELS) + "/" + relative;
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? path : "";
}

}  // namespace agentry::engine::test_support
