// nodeagent/engine/test_model.h — deterministic random-weight models in GGUF, for tests and
// benchmarks of every architecture and weight type the engine supports.
//
// Weights are drawn so that every value is exactly representable in Q8_0 (an int8 times a
// per-block fp16 scale): the F32 and Q8_0 variants of one seed hold identical weights, the
// F16 and BF16 variants the same values rounded to F16 or BF16, and Q4_0 variants quantize
// them. The tokenizer comes
// from a vocabulary-only GGUF (llama.cpp's models/ggml-vocab-*.gguf, or any model) when one is
// given, otherwise from a small synthetic SentencePiece vocabulary.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "nodeagent/engine/gguf.h"

namespace agentry::engine {

struct TestModelSpec {
  std::string arch = "llama";  // llama | qwen2
  int64_t dim = 64;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t ff = 0;  // 0: 8/3 * dim rounded up to a multiple of 32
  int64_t ctx = 512;
  GgmlType type = GgmlType::kF32;  // F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
  uint64_t seed = 0;
  bool tied = false;                // no output.weight: the embeddings are reused
  const GgufFile* vocab = nullptr;  // tokenizer.* metadata is copied from here when set
  std::string chat_template = {};   // tokenizer.chat_template when set ("chatml", a Jinja text)
};

// The whole GGUF file. InvalidArgument for inconsistent shapes (dim % heads, heads %
// kv_heads, dim and ff multiples of 32) or an unsupported type.
StatusOr<std::string> BuildTestModel(const TestModelSpec& spec);

}  // namespace agentry::engine
