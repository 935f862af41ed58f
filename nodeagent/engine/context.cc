#include "nodeagent/engine/context.h"

#include "nodeagent/engine/forward.h"

namespace agentry::engine {

Context::Context(const Model& model, int64_t n_ctx, ThreadPool* pool, KvCacheType cache_type)
    : model_(model), pool_(pool), kv_(model.params(), n_ctx, cache_type) {}

Context::~Context() = default;

Status Context::Eval(const std::vector<int32_t>& tokens, bool all_logits,
                     std::vector<float>* logits) {
  if (buffers_ == nullptr) buffers_ = std::make_unique<ForwardBuffers>();
  const BatchSequence one[] = {{this, tokens, all_logits, logits}};
  return EvalBatch(one, pool_, buffers_.get());
}

}  // namespace agentry::engine
