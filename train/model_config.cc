// train/model_config.cc — see model_config.h.
#include "train/model_config.h"

#include <cmath>

#include "train/rng.h"

namespace agentry::train {

Status ModelConfig::Validate() const {
  auto positive = [](int64_t v, const char* name) -> Status {
    if (v <= 0) return InvalidArgumentError(std::string(name) + ": must be positive");
    return OkStatus();
  };
  for (const auto& [v, name] : {std::pair{vocab, "vocab"},
                                {dim, "dim"},
                                {layers, "layers"},
                                {heads, "heads"},
                                {kv_heads, "kv_heads"},
                                {ff, "ff"},
                                {ctx, "ctx"}}) {
    if (Status s = positive(v, name); !s.ok()) return s;
  }
  if (dim % heads != 0 || head_dim() % 2 != 0) {
    return InvalidArgumentError("dim: " + std::to_string(dim) + " must split into " +
                                std::to_string(heads) + " heads of an even size");
  }
  if (heads % kv_heads != 0) {
    return InvalidArgumentError("kv_heads: " + std::to_string(kv_heads) + " must divide heads (" +
                                std::to_string(heads) + ")");
  }
  if (dim % 32 != 0) return InvalidArgumentError("dim: must be a multiple of 32");
  if (ff % 32 != 0) return InvalidArgumentError("ff: must be a multiple of 32");
  if (!(rope_base > 0.0f) || !(rms_eps > 0.0f)) {
    return InvalidArgumentError("rope_base and rms_eps: must be positive");
  }
  return OkStatus();
}

int64_t ParameterLayout::Add(std::string name, std::vector<uint64_t> dims, bool is_norm) {
  int64_t size = 1;
  for (uint64_t d : dims) size *= static_cast<int64_t>(d);
  TensorSlot slot{std::move(name), std::move(dims), total_, size, is_norm};
  tensors_.push_back(std::move(slot));
  total_ += size;
  return tensors_.back().offset;
}

ParameterLayout ParameterLayout::For(const ModelConfig& c) {
  ParameterLayout p;
  const auto d = static_cast<uint64_t>(c.dim);
  const auto kv = static_cast<uint64_t>(c.kv_dim());
  const auto ff = static_cast<uint64_t>(c.ff);
  p.token_embd_ = p.Add("token_embd.weight", {d, static_cast<uint64_t>(c.vocab)}, false);
  for (int64_t l = 0; l < c.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerOffsets o{};
    o.attn_norm = p.Add(b + "attn_norm.weight", {d}, true);
    o.wq = p.Add(b + "attn_q.weight", {d, d}, false);
    o.wk = p.Add(b + "attn_k.weight", {d, kv}, false);
    o.wv = p.Add(b + "attn_v.weight", {d, kv}, false);
    o.wo = p.Add(b + "attn_output.weight", {d, d}, false);
    o.ffn_norm = p.Add(b + "ffn_norm.weight", {d}, true);
    o.gate = p.Add(b + "ffn_gate.weight", {d, ff}, false);
    o.up = p.Add(b + "ffn_up.weight", {d, ff}, false);
    o.down = p.Add(b + "ffn_down.weight", {ff, d}, false);
    p.layers_.push_back(o);
  }
  p.output_norm_ = p.Add("output_norm.weight", {d}, true);
  return p;
}

std::vector<float> InitialParameters(const ModelConfig& config, uint64_t seed) {
  const ParameterLayout layout = ParameterLayout::For(config);
  std::vector<float> params(static_cast<size_t>(layout.total()));
  Rng rng(seed);
  const float residual_scale = 1.0f / std::sqrt(2.0f * static_cast<float>(config.layers));
  for (const TensorSlot& t : layout.tensors()) {
    float* p = params.data() + t.offset;
    if (t.is_norm) {
      for (int64_t i = 0; i < t.size; ++i) p[i] = 1.0f;
      continue;
    }
    const bool residual =
        t.name.ends_with("attn_output.weight") || t.name.ends_with("ffn_down.weight");
    const float stddev = 0.02f * (residual ? residual_scale : 1.0f);
    for (int64_t i = 0; i < t.size; ++i) p[i] = stddev * rng.Normal();
  }
  return params;
}

}  // namespace agentry::train
