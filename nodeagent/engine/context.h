// nodeagent/engine/context.h — one sequence: its KV cache, and the forward pass over it.
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
// runs over a quantized V cache (see AttentionQ8_0 in forward.cc). Eval is EvalBatch
// (forward.h) of this one sequence; the node daemon batches several contexts' steps.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/kv_cache.h"
#include "nodeagent/engine/model.h"
#include "nodeagent/engine/thread_pool.h"

namespace agentry::engine {

struct ForwardBuffers;

class Context {
 public:
  Context(const Model& model, int64_t n_ctx, ThreadPool* pool,
          KvCacheType cache_type = KvCacheType::kF16);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Appends `tokens`; fills `logits` with n_vocab values for the last token, or for every
  // token (n_tokens * n_vocab, in order) when `all_logits`. InvalidArgument for a token id
  // outside the vocabulary or a cache type the model's heads do not suit
  // (KvCache::CheckType); OutOfRange when the tokens do not fit in the context.
  Status Eval(const std::vector<int32_t>& tokens, bool all_logits, std::vector<float>* logits);

  int64_t n_past() const { return kv_.size(); }
  KvCache& kv_cache() { return kv_; }
  const Model& model() const { return model_; }

 private:
  const Model& model_;
  ThreadPool* pool_;
  KvCache kv_;
  // Activations for Eval, made on its first call: contexts that only ever run in batches
  // (the node daemon's) never hold any.
  std::unique_ptr<ForwardBuffers> buffers_;
};

}  // namespace agentry::engine
