#include "nodeagent/engine/kv_cache.h"

namespace agentry::engine {

KvCache::KvCache(const ModelParams& params, int64_t n_ctx)
    : n_ctx_(n_ctx),
      n_embd_kv_(params.n_embd_kv()),
      k_(static_cast<uint64_t>(params.n_layer) * n_ctx * params.n_embd_kv()),
      v_(static_cast<uint64_t>(params.n_layer) * n_ctx * params.n_embd_kv()) {}

}  // namespace agentry::engine
