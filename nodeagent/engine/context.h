// nodeagent/engine/context.h — run a model over one sequence: the forward pass.
//
//   Context ctx(model, /*n_ctx=*/512, &pool);
//   std::vector<float> logits;
//   Status s = ctx.Eval({1, 403, 407}, /*all_logits=*/false, &logits);  // prefill
//   s = ctx.Eval({next}, false, &logits);                                // one decode step
//
// Each Eval appends its tokens after those already in the KV cache, so a later turn only
// pays for its new tokens. The computation follows llama.cpp's graph for the llama family
// (RMSNorm, RoPE, causal GQA attention over an F16 KV cache, SwiGLU), with activations
// converted to each weight's dot type the same way, so logits agree closely. With a Q8_0
// KV cache, attention follows llama.cpp's flash-attention path instead, the only one it
// runs over a quantized V cache (see Attention in context.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/quants.h"
#include "nodeagent/engine/kv_cache.h"
#include "nodeagent/engine/matmul.h"
#include "nodeagent/engine/model.h"
#include "nodeagent/engine/thread_pool.h"

namespace agentry::engine {

class Context {
 public:
  Context(const Model& model, int64_t n_ctx, ThreadPool* pool,
          KvCacheType cache_type = KvCacheType::kF16);

  // Appends `tokens`; fills `logits` with n_vocab values for the last token, or for every
  // token (n_tokens * n_vocab, in order) when `all_logits`. InvalidArgument for a token id
  // outside the vocabulary or a cache type the model's heads do not suit
  // (KvCache::CheckType); OutOfRange when the tokens do not fit in the context.
  Status Eval(const std::vector<int32_t>& tokens, bool all_logits, std::vector<float>* logits);

  int64_t n_past() const { return kv_.size(); }
  KvCache& kv_cache() { return kv_; }
  const Model& model() const { return model_; }

 private:
  void Attention(int64_t layer, int64_t n_tokens, int64_t n_past);
  void AttentionQ8_0(int64_t layer, int64_t n_tokens, int64_t n_past);
  // Writes tokens [t0, t1) of this batch's K and V rows (k_, v_, after RoPE) into the cache
  // at n_past + t.
  void StoreKv(int64_t layer, int64_t n_past, int64_t t0, int64_t t1);

  const Model& model_;
  // Per-token steps (norms, RoPE, residuals) run on pool_->ForRange and give the same bits for
  // any split of the tokens.
  ThreadPool* pool_;
  KvCache kv_;
  MatMulScratch scratch_;
  // Activations for one batch, [n_tokens][...].
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, ffn_;
  std::vector<float> rope_cos_, rope_sin_;
  std::vector<float> norm_w_;  // one norm weight vector, dequantized
  std::vector<float> bias_;    // one attention bias, dequantized
  std::vector<uint16_t> q16_;  // q_ rounded to F16 for the K·Q product
  struct AttentionScratch {
    std::vector<float> scores;            // one chunk's [tokens][keys]
    std::vector<uint16_t> probs16;        // the same, softmaxed and rounded to F16
    std::vector<float> out;               // Q8_0 cache: one head's output
    std::vector<kernels::block_q8_0> q8;  // Q8_0 cache: the query, quantized
  };
  std::vector<AttentionScratch> attention_scratch_;  // one per pool thread
};

}  // namespace agentry::engine
