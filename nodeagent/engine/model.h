// nodeagent/engine/model.h — a llama-family model bound to its GGUF file.
//
// Reads the hyperparameters of the `llama` and `qwen2` architectures from the file's
// metadata and binds every weight in place (no copy). Everything a forward pass relies on
// is checked here, once: shapes agree with the hyperparameters, types are supported,
// required tensors are present, so a bad file fails at load with the tensor's name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/matmul.h"

namespace agentry::engine {

enum class RopeStyle { kNormal, kNeox };  // adjacent pairs (llama) / halves (qwen2)

struct ModelParams {
  std::string arch;  // "llama" | "qwen2"
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_ff = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_rot = 0;  // rotated dimensions per head
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / linear scaling factor
  RopeStyle rope_style = RopeStyle::kNormal;

  int64_t n_embd_kv() const { return n_head_kv * head_dim; }
};

struct LayerWeights {
  Weight attn_norm;
  Weight wq, wk, wv, wo;
  Weight bq, bk, bv;  // qwen2 attention biases; data == nullptr when absent
  Weight ffn_norm;
  Weight ffn_gate, ffn_up, ffn_down;
};

class Model {
 public:
  // Takes ownership of the file; the weights point into its mapping.
  static StatusOr<std::unique_ptr<Model>> Load(std::unique_ptr<GgufFile> file);

  const ModelParams& params() const { return params_; }
  const GgufFile& file() const { return *file_; }
  const Weight& token_embd() const { return token_embd_; }
  const Weight& output_norm() const { return output_norm_; }
  const Weight& output() const { return output_; }  // token_embd when tied
  const std::vector<LayerWeights>& layers() const { return layers_; }

 private:
  Model() = default;
  std::unique_ptr<GgufFile> file_;
  ModelParams params_;
  Weight token_embd_;
  Weight output_norm_;
  Weight output_;
  std::vector<LayerWeights> layers_;
};

}  // namespace agentry::engine
