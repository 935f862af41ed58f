// nodeagent/engine/tests/llref_runner.h — llama.cpp as a test oracle: runs llref (the
// reference runner over node-llama-cpp's prebuilt libllama that scripts/llref-install puts in
// the cache) teacher-forced on a token sequence and reads back every position's logits.
// Shared by the engine's parity tests and the trained agent model's.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nodeagent/engine/context.h"
#include "nodeagent/engine/tests/shared_models.h"

namespace agentry::engine::test_support {

// The llref binary, or "" when it is not installed.
inline std::string LlrefPath() {
  const std::string path = LlamaCppCacheDir() + "/llref";
  return access(path.c_str(), X_OK) == 0 ? path : "";
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Reference {
  std::vector<int32_t> prompt_tokens;  // as llama.cpp tokenized -p (empty with --tokens)
  std::vector<float> logits;           // [n_pos][n_vocab]
};

// Runs llref teacher-forced on `tokens` (or on `text` through llama.cpp's tokenizer), with
// `options` (such as "--fa on") added to its command line.
inline Reference RunLlref(const std::string& model, const std::vector<int32_t>& tokens,
                          const std::string& text = "", const std::string& options = "") {
  Reference ref;
  const std::string dump = "/tmp/agentry-parity-" + std::to_string(getpid()) + ".f32";
  std::string cmd = LlrefPath() + " -m " + model + " -t 2 -n 0 -k 1 --pp 0 --tg 0 --dump " + dump;
  if (!options.empty()) cmd += " " + options;
  // For investigations, e.g. AGENTRY_LLREF_ARGS="--backend-dir DIR" to pin one of
  // llama.cpp's CPU variants (a DIR holding the prebuilt libraries with one libggml-cpu-*).
  if (const char* extra = std::getenv("AGENTRY_LLREF_ARGS")) cmd += std::string(" ") + extra;
  std::string text_file;
  if (!tokens.empty()) {
    cmd += " --tokens ";
    for (size_t i = 0; i < tokens.size(); ++i) cmd += (i ? "," : "") + std::to_string(tokens[i]);
  } else {
    cmd += " -p \"$(cat " + text + ")\"";
  }
  FILE* pipe = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << out;
  const size_t at = out.find("prompt_tokens (");
  if (at != std::string::npos) {
    std::istringstream ids(
        out.substr(out.find(':', at) + 1, out.find('\n', at) - out.find(':', at)));
    for (int32_t id; ids >> id;) ref.prompt_tokens.push_back(id);
  }
  const std::string bytes = ReadAll(dump);
  unlink(dump.c_str());
  ref.logits.resize(bytes.size() / sizeof(float));
  std::memcpy(ref.logits.data(), bytes.data(), ref.logits.size() * sizeof(float));
  return ref;
}

inline int32_t Argmax(const float* row, int64_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

// Greedy generation: our 64 greedy tokens, fed back teacher-forced to llama.cpp, must be
// llama.cpp's argmax at every step — so its own greedy run produces the same 64 tokens.
inline void ExpectSameGreedy(const std::string& model_path, const std::vector<int32_t>& prompt) {
  std::unique_ptr<Model> model = LoadModelFile(model_path);
  const int64_t V = model->params().n_vocab;
  ThreadPool pool(2);
  Context ctx(*model, 512, &pool);
  std::vector<float> logits;
  ASSERT_TRUE(ctx.Eval(prompt, false, &logits).ok());
  std::vector<int32_t> seq = prompt;
  for (int i = 0; i < 64; ++i) {
    const int32_t next = Argmax(logits.data(), V);
    seq.push_back(next);
    if (i + 1 < 64) {
      ASSERT_TRUE(ctx.Eval({next}, false, &logits).ok());
    }
  }
  const Reference ref = RunLlref(model_path, seq);
  ASSERT_EQ(ref.logits.size(), seq.size() * V);
  for (size_t t = prompt.size() - 1; t + 1 < seq.size(); ++t) {
    ASSERT_EQ(Argmax(&ref.logits[t * V], V), seq[t + 1])
        << model_path << ": llama.cpp's greedy choice differs at generated token "
        << (t + 1 - prompt.size());
  }
}

}  // namespace agentry::engine::test_support
