#include "nodeagent/engine/model.h"

namespace agentry::engine {
namespace {

// Reads `arch.key` as a positive integer; absent -> `fallback` (or NotFound when < 0).
StatusOr<int64_t> ReadCount(const GgufFile& f, const std::string& key, int64_t fallback) {
  StatusOr<uint64_t> v = f.GetUint(key);
  if (!v.ok()) {
    if (v.status().code() == StatusCode::kNotFound && fallback >= 0) return fallback;
    return v.status().WithPrefix(f.name());
  }
  if (*v == 0 || *v > (uint64_t{1} << 31)) {
    return InvalidArgumentError(f.name() + ": " + key + ": must be 1 to 2^31, got " +
                                std::to_string(*v));
  }
  return static_cast<int64_t>(*v);
}

StatusOr<float> ReadFloat(const GgufFile& f, const std::string& key, float fallback) {
  StatusOr<double> v = f.GetFloat(key);
  if (!v.ok()) {
    if (v.status().code() == StatusCode::kNotFound) return fallback;
    return v.status().WithPrefix(f.name());
  }
  if (!(*v > 0) || *v > 1e12) {
    return InvalidArgumentError(f.name() + ": " + key + ": must be positive and finite");
  }
  return static_cast<float>(*v);
}

// Binds tensor `name` and checks its shape is [in, out] (out = 1 for vectors).
StatusOr<Weight> Bind(const GgufFile& f, const std::string& name, int64_t in, int64_t out,
                      bool required = true) {
  const GgufTensorInfo* info = f.FindTensor(name);
  if (info == nullptr) {
    if (!required) return Weight{};
    return InvalidArgumentError(f.name() + ": tensor " + name + " is missing");
  }
  const uint64_t want_out = static_cast<uint64_t>(out);
  const bool shape_ok = info->dims[0] == static_cast<uint64_t>(in) && info->dims[1] == want_out &&
                        info->dims[2] == 1 && info->dims[3] == 1;
  if (!shape_ok) {
    return InvalidArgumentError(f.name() + ": tensor " + name + ": shape [" +
                                std::to_string(info->dims[0]) + ", " +
                                std::to_string(info->dims[1]) + "], expected [" +
                                std::to_string(in) + ", " + std::to_string(out) + "]");
  }
  StatusOr<Weight> w = BindWeight(f, *info);
  if (!w.ok()) return w.status().WithPrefix(f.name());
  return w;
}

}  // namespace

StatusOr<std::unique_ptr<Model>> Model::Load(std::unique_ptr<GgufFile> file) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(file);
  const GgufFile& f = *m->file_;
  ModelParams& p = m->params_;

  StatusOr<std::string_view> arch = f.GetString("general.architecture");
  if (!arch.ok()) return arch.status().WithPrefix(f.name());
  p.arch = std::string(*arch);
  if (p.arch != "llama" && p.arch != "qwen2") {
    return InvalidArgumentError(f.name() + ": general.architecture: unsupported architecture \"" +
                                p.arch + "\" (supported: llama, qwen2)");
  }
  const std::string a = p.arch + ".";
  AGENTRY_ASSIGN_OR_RETURN(p.n_embd, ReadCount(f, a + "embedding_length", -1));
  AGENTRY_ASSIGN_OR_RETURN(p.n_layer, ReadCount(f, a + "block_count", -1));
  AGENTRY_ASSIGN_OR_RETURN(p.n_ff, ReadCount(f, a + "feed_forward_length", -1));
  AGENTRY_ASSIGN_OR_RETURN(p.n_head, ReadCount(f, a + "attention.head_count", -1));
  AGENTRY_ASSIGN_OR_RETURN(p.n_head_kv, ReadCount(f, a + "attention.head_count_kv", p.n_head));
  AGENTRY_ASSIGN_OR_RETURN(p.n_ctx_train, ReadCount(f, a + "context_length", 2048));
  if (p.n_embd % p.n_head != 0 || p.n_head % p.n_head_kv != 0) {
    return InvalidArgumentError(f.name() + ": " + a + "attention.head_count " +
                                std::to_string(p.n_head) + " must divide embedding_length " +
                                std::to_string(p.n_embd) + " and be a multiple of head_count_kv " +
                                std::to_string(p.n_head_kv));
  }
  p.head_dim = p.n_embd / p.n_head;
  AGENTRY_ASSIGN_OR_RETURN(p.n_rot, ReadCount(f, a + "rope.dimension_count", p.head_dim));
  if (p.n_rot > p.head_dim || p.n_rot % 2 != 0) {
    return InvalidArgumentError(
        f.name() + ": " + a + "rope.dimension_count " + std::to_string(p.n_rot) +
        " must be even and at most the head size " + std::to_string(p.head_dim));
  }
  AGENTRY_ASSIGN_OR_RETURN(p.rms_eps, ReadFloat(f, a + "attention.layer_norm_rms_epsilon", 1e-5f));
  AGENTRY_ASSIGN_OR_RETURN(p.rope_freq_base, ReadFloat(f, a + "rope.freq_base", 10000.0f));
  StatusOr<std::string_view> scaling = f.GetString(a + "rope.scaling.type");
  if (scaling.ok() && *scaling == "linear") {
    AGENTRY_ASSIGN_OR_RETURN(float factor, ReadFloat(f, a + "rope.scaling.factor", 1.0f));
    p.rope_freq_scale = 1.0f / factor;
  } else if (scaling.ok() && *scaling != "none") {
    return InvalidArgumentError(f.name() + ": " + a + "rope.scaling.type \"" +
                                std::string(*scaling) + "\" is not supported (none, linear)");
  }
  p.rope_style = p.arch == "qwen2" ? RopeStyle::kNeox : RopeStyle::kNormal;

  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr)
    return InvalidArgumentError(f.name() + ": tensor token_embd.weight is missing");
  p.n_vocab = static_cast<int64_t>(embd->dims[1]);
  AGENTRY_ASSIGN_OR_RETURN(m->token_embd_, Bind(f, "token_embd.weight", p.n_embd, p.n_vocab));
  AGENTRY_ASSIGN_OR_RETURN(m->output_norm_, Bind(f, "output_norm.weight", p.n_embd, 1));
  AGENTRY_ASSIGN_OR_RETURN(m->output_, Bind(f, "output.weight", p.n_embd, p.n_vocab, false));
  if (m->output_.data == nullptr) m->output_ = m->token_embd_;  // tied embeddings

  const int64_t kv = p.n_embd_kv();
  m->layers_.resize(p.n_layer);
  for (int64_t i = 0; i < p.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    LayerWeights& l = m->layers_[i];
    AGENTRY_ASSIGN_OR_RETURN(l.attn_norm, Bind(f, b + "attn_norm.weight", p.n_embd, 1));
    AGENTRY_ASSIGN_OR_RETURN(l.wq, Bind(f, b + "attn_q.weight", p.n_embd, p.n_embd));
    AGENTRY_ASSIGN_OR_RETURN(l.wk, Bind(f, b + "attn_k.weight", p.n_embd, kv));
    AGENTRY_ASSIGN_OR_RETURN(l.wv, Bind(f, b + "attn_v.weight", p.n_embd, kv));
    AGENTRY_ASSIGN_OR_RETURN(l.wo, Bind(f, b + "attn_output.weight", p.n_embd, p.n_embd));
    AGENTRY_ASSIGN_OR_RETURN(l.bq, Bind(f, b + "attn_q.bias", p.n_embd, 1, false));
    AGENTRY_ASSIGN_OR_RETURN(l.bk, Bind(f, b + "attn_k.bias", kv, 1, false));
    AGENTRY_ASSIGN_OR_RETURN(l.bv, Bind(f, b + "attn_v.bias", kv, 1, false));
    AGENTRY_ASSIGN_OR_RETURN(l.ffn_norm, Bind(f, b + "ffn_norm.weight", p.n_embd, 1));
    AGENTRY_ASSIGN_OR_RETURN(l.ffn_gate, Bind(f, b + "ffn_gate.weight", p.n_embd, p.n_ff));
    AGENTRY_ASSIGN_OR_RETURN(l.ffn_up, Bind(f, b + "ffn_up.weight", p.n_embd, p.n_ff));
    AGENTRY_ASSIGN_OR_RETURN(l.ffn_down, Bind(f, b + "ffn_down.weight", p.n_ff, p.n_embd));
  }
  return m;
}

}  // namespace agentry::engine
