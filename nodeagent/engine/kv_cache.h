// nodeagent/engine/kv_cache.h — one sequence's attention keys and values, in F16.
//
// Layout [layer][position][n_embd_kv]; F16 halves the memory of F32 and is what llama.cpp
// keeps by default, so both engines round the same values. Sized once from the context
// length; appending past it is the caller's error to report (see Context::Eval).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/model.h"

namespace agentry::engine {

class KvCache {
 public:
  KvCache(const ModelParams& params, int64_t n_ctx);

  int64_t n_ctx() const { return n_ctx_; }
  int64_t size() const { return size_; }  // positions filled
  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }

  uint16_t* k(int64_t layer, int64_t pos) { return k_.data() + Offset(layer, pos); }
  uint16_t* v(int64_t layer, int64_t pos) { return v_.data() + Offset(layer, pos); }
  const uint16_t* k(int64_t layer, int64_t pos) const { return k_.data() + Offset(layer, pos); }
  const uint16_t* v(int64_t layer, int64_t pos) const { return v_.data() + Offset(layer, pos); }

  // Marks positions [0, n) as filled (after a forward pass wrote them).
  void set_size(int64_t n) { size_ = n; }
  // Forgets positions from `n` on (n <= size()).
  void Truncate(int64_t n) { size_ = n < size_ ? n : size_; }

  // Replaces this cache's contents with the first `n` positions of `other` (a shared
  // prompt prefix). InvalidArgument when the shapes differ or n exceeds other.size() or
  // this cache's context.
  Status CopyPrefixFrom(const KvCache& other, int64_t n);

  // The filled positions as bytes, for snapshots (node daemon Snapshot/Restore):
  //   "AGKV" | u32 version 1 | u32 n_layer | u32 n_embd_kv | u32 n_pos | u32 type (1 = F16)
  //   | per layer: K [n_pos][n_embd_kv] then V, as F16 | u32 CRC-32C of all before
  std::string Serialize() const;
  // Replaces the contents from Serialize()'s bytes. DataLoss for a checksum mismatch or a
  // truncated snapshot, InvalidArgument (naming the field and offset) for one made for
  // another model shape or longer than this context; the cache is unchanged on error.
  Status Restore(std::string_view bytes);

 private:
  uint64_t Offset(int64_t layer, int64_t pos) const {
    return (static_cast<uint64_t>(layer) * n_ctx_ + pos) * n_embd_kv_;
  }

  int64_t n_layer_;
  int64_t n_ctx_;
  int64_t n_embd_kv_;
  int64_t size_ = 0;
  std::vector<uint16_t> k_;
  std::vector<uint16_t> v_;
};

}  // namespace agentry::engine
