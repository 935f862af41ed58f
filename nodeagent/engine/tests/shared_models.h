// nodeagent/engine/tests/shared_models.h — where tests find the real models of ../shared,
// and how they load one.
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "nodeagent/engine/model.h"

namespace agentry::engine::test_support {

// The path of ../shared/models/<relative>, or "" when the checkout has no such file (tests
// then skip, saying which file is missing).
inline std::string SharedModel(const std::string& relative) {
  const std::string path = std::string(AGENTRY_SHARED_MODELS) + "/" + relative;
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? path : "";
}

// Where scripts/llref-install puts llama.cpp (the reference runner `llref/llref` and the
// source bundle `llama.cpp/`): $AGENTRY_CACHE/llref, by default ~/.cache/agentry/llref.
inline std::string LlamaCppCacheDir() {
  const char* cache = std::getenv("AGENTRY_CACHE");
  const char* home = std::getenv("HOME");
  return (cache != nullptr ? std::string(cache)
                           : std::string(home != nullptr ? home : "/tmp") + "/.cache/agentry") +
         "/llref";
}

// The path of a file under the installed llama.cpp source (e.g.
// "models/ggml-vocab-qwen2.gguf"), or "" when it is not installed.
inline std::string LlamaCppFile(const std::string& relative) {
  const std::string path = LlamaCppCacheDir() + "/llama.cpp/" + relative;
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? path : "";
}

// Maps and loads a model file; a failure is a test failure (and the value() below aborts
// with the status, so the test stops at the cause).
inline std::unique_ptr<Model> LoadModelFile(const std::string& path) {
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().message();
  StatusOr<std::unique_ptr<Model>> m = Model::Load(std::move(f).value());
  EXPECT_TRUE(m.ok()) << m.status().message();
  return std::move(m).value();
}

}  // namespace agentry::engine::test_support
