// cli/run.h — `agentry run` (generate text) and `agentry bench` (prefill/decode speed).
#pragma once

#include <cstdint>
#include <string>

#include "nodeagent/engine/sampler.h"
#include "nodeagent/engine/test_model.h"

namespace agentry::cli {

struct RunOptions {
  std::string model;
  std::string prompt;
  int32_t n_predict = 64;
  int32_t threads = 0;  // 0: every online core
  int32_t ctx = 2048;
  bool chat = false;          // wrap the prompt as a user turn in the chat template
  std::string chat_template;  // a format name overriding the model's template ("" = the model's)
  std::string system;         // with --chat: a system message before the user turn
  std::string cache_type = "f16";  // KV cache: f16 or q8_0
  engine::SamplerParams sampler;
};

// Streams the continuation of the prompt to stdout; timings go to stderr. Exit code.
int RunGenerate(const RunOptions& options);

struct BenchOptions {
  std::string model;
  int32_t threads = 0;
  int32_t n_prompt = 512;
  int32_t n_gen = 128;
  int32_t repetitions = 3;
  std::string cache_type = "f16";  // KV cache: f16 or q8_0
};

// Prints prefill and decode tokens/s like llama-bench (median of the repetitions). Exit code.
int RunBench(const BenchOptions& options);

struct TestModelOptions {
  std::string output;
  std::string vocab;
  std::string type = "f32";
  engine::TestModelSpec spec;
};

// Writes a test model (crash-safe: temporary file, fsync, rename). Exit code.
int RunMakeTestModel(const TestModelOptions& options);

}  // namespace agentry::cli
