// train/model_config.h — the shape of a model `agentry train` builds, and where each of its
// tensors lives in one flat parameter vector.
//
// The model is the engine's `llama` architecture with tied embeddings (no output.weight):
// token_embd, then per layer attn_norm, attn_q/k/v/output, ffn_norm, ffn_gate/up/down, then
// output_norm. Every tensor is stored as in GGUF, rows of `in` contiguous floats (a matrix
// W of GGUF dims [in, out] maps x to W·x), so exporting is a copy and the optimizer sees one
// contiguous vector.
//
//   ModelConfig c{.vocab = 1024, .dim = 128, .layers = 4, .heads = 4, .kv_heads = 2, .ff = 352};
//   ParameterLayout layout = ParameterLayout::For(c);
//   float* wq = params.data() + layout.layer(0).wq;
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace agentry::train {

struct ModelConfig {
  int64_t vocab = 0;
  int64_t dim = 128;
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t kv_heads = 2;
  int64_t ff = 352;
  int64_t ctx = 1024;  // the context length written to the GGUF file
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;

  int64_t head_dim() const { return dim / heads; }
  int64_t kv_dim() const { return kv_heads * head_dim(); }
  // InvalidArgument naming the field: sizes must be positive, dim a multiple of heads with
  // an even head size, heads a multiple of kv_heads, dim and ff multiples of 32 (the Q8_0
  // export's block size).
  Status Validate() const;
};

// One tensor of the flat vector: its GGUF name and dims, and its offset in floats.
struct TensorSlot {
  std::string name;
  std::vector<uint64_t> dims;  // GGUF order: dims[0] is the contiguous one
  int64_t offset = 0;
  int64_t size = 0;
  bool is_norm = false;  // 1-D gains: initialised to 1, no weight decay, kept F32 on export
};

struct LayerOffsets {
  int64_t attn_norm, wq, wk, wv, wo, ffn_norm, gate, up, down;
};

class ParameterLayout {
 public:
  static ParameterLayout For(const ModelConfig& config);

  int64_t total() const { return total_; }
  int64_t token_embd() const { return token_embd_; }
  int64_t output_norm() const { return output_norm_; }
  const LayerOffsets& layer(int64_t l) const { return layers_[l]; }
  const std::vector<TensorSlot>& tensors() const { return tensors_; }

 private:
  int64_t Add(std::string name, std::vector<uint64_t> dims, bool is_norm);

  int64_t total_ = 0;
  int64_t token_embd_ = 0;
  int64_t output_norm_ = 0;
  std::vector<LayerOffsets> layers_;
  std::vector<TensorSlot> tensors_;
};

// Parameters drawn for step 0 from `seed`: matrices ~ N(0, 0.02²), the residual outputs
// (attn_output, ffn_down) scaled by 1/sqrt(2 * layers) so the residual stream's variance does
// not grow with depth, norm gains 1. The same seed gives the same bits on every machine (own
// generator and Box-Muller, no <random> distributions, whose output is not portable).
std::vector<float> InitialParameters(const ModelConfig& config, uint64_t seed);

}  // namespace agentry::train
