// nodeagent/engine/kv_cache.h — one sequence's attention keys and values, F16 or Q8_0.
//
// Layout [layer][position][n_embd_kv], one row of K and one of V per position and layer.
// F16 (the default) halves the memory of F32 and is what llama.cpp keeps by default, so
// both engines round the same values. Q8_0 (`agentry run --cache-type q8_0`) takes 34 bytes
// per 32 values, 53 % of F16, for a small loss of accuracy (docs/engine.md), and is stored
// as llama.cpp stores it with `-ctk q8_0 -ctv q8_0`: when the head size is a multiple of 64,
// keys and values are rotated by a Walsh-Hadamard transform before they are quantized
// (kernels/cpu/attention.h says why). Sized once from the context length; appending past it
// is the caller's error to report (see Context::Eval).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "nodeagent/engine/model.h"

namespace agentry::engine {

// The element type of a cache. The values are GGML type ids, as snapshots record them.
enum class KvCacheType : uint32_t {
  kF16 = 1,
  kQ8_0 = 8,
};

// "f16" or "q8_0".
const char* KvCacheTypeName(KvCacheType type);
// The inverse of KvCacheTypeName; InvalidArgument naming the accepted values otherwise
// (the caller adds which setting it was).
StatusOr<KvCacheType> ParseKvCacheType(std::string_view name);

class KvCache {
 public:
  // `type` must suit the model (CheckType); Context::Eval refuses to run otherwise.
  KvCache(const ModelParams& params, int64_t n_ctx, KvCacheType type = KvCacheType::kF16);

  // OK when a cache of `type` can hold this model's heads: Q8_0 blocks of 32 must not
  // straddle two heads, so the head size must be a multiple of 32. InvalidArgument otherwise.
  static Status CheckType(const ModelParams& params, KvCacheType type);

  KvCacheType type() const { return type_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t size() const { return size_; }  // positions filled
  uint64_t bytes() const { return 2 * plane_bytes_; }
  uint64_t row_bytes() const { return row_bytes_; }  // one position of one layer, K or V

  // Sizes of the Walsh-Hadamard blocks keys (and queries) and values are rotated by before
  // quantization, as llama.cpp chooses them: keys by the largest power of two dividing the
  // head size, values by 64; 0 when not rotated (F16, or a head size not a multiple of 64).
  int64_t k_rotation() const { return k_rotation_; }
  int64_t v_rotation() const { return v_rotation_; }

  // Row (layer, pos) of K or V: row_bytes() bytes of F16 values or Q8_0 blocks.
  uint8_t* k_row(int64_t layer, int64_t pos) { return k_.get() + Offset(layer, pos); }
  uint8_t* v_row(int64_t layer, int64_t pos) { return v_.get() + Offset(layer, pos); }
  const uint8_t* k_row(int64_t layer, int64_t pos) const { return k_.get() + Offset(layer, pos); }
  const uint8_t* v_row(int64_t layer, int64_t pos) const { return v_.get() + Offset(layer, pos); }

  // Marks positions [0, n) as filled (after a forward pass wrote them).
  void set_size(int64_t n) { size_ = n; }
  // Forgets positions from `n` on (n <= size()).
  void Truncate(int64_t n) { size_ = n < size_ ? n : size_; }

  // Replaces this cache's contents with the first `n` positions of `other` (a shared
  // prompt prefix). InvalidArgument when the shapes or element types differ (a Q8_0 prefix
  // is not an F16 one), or n exceeds other.size() or this cache's context.
  Status CopyPrefixFrom(const KvCache& other, int64_t n);

  // The filled positions as bytes, for snapshots (node daemon Snapshot/Restore):
  //   "AGKV" | u32 version 2 | u32 n_layer | u32 n_embd_kv | u32 n_pos
  //   | u32 type (1 = F16, 8 = Q8_0) | u32 k_rotation | u32 v_rotation
  //   | per layer: K [n_pos] rows then V, as stored | u32 CRC-32C of all before
  // Version 1 (written before Q8_0 caches existed) is the same without the two rotation
  // fields and with type 1 only; Restore still reads it.
  std::string Serialize() const;
  // Replaces the contents from Serialize()'s bytes (version 1 or 2). DataLoss for a
  // checksum mismatch or a truncated snapshot; InvalidArgument (naming the field and
  // offset) for one made for another model shape, another cache type or rotation, or
  // longer than this context. The cache is unchanged on error.
  Status Restore(std::string_view bytes);

 private:
  uint64_t Offset(int64_t layer, int64_t pos) const {
    return (static_cast<uint64_t>(layer) * n_ctx_ + pos) * row_bytes_;
  }

  KvCacheType type_;
  int64_t n_layer_;
  int64_t n_ctx_;
  int64_t n_embd_kv_;
  uint64_t row_bytes_;
  int64_t k_rotation_ = 0;
  int64_t v_rotation_ = 0;
  int64_t size_ = 0;
  // K and V for n_ctx positions, left uninitialized: nothing reads a position before it is
  // written (everything reads below size()), and a fresh allocation this large is pages the
  // kernel maps on first write. So making a cache does not write all of it (with zero-filled
  // planes, opening a session on the 147 MB bench model with 4,096 positions took over half a
  // second; docs/PERFORMANCE.md), and a session's memory grows with the positions it reaches.
  struct FreePlane {
    void operator()(uint8_t* p) const;
  };
  using Plane = std::unique_ptr<uint8_t[], FreePlane>;
  static Plane AllocatePlane(uint64_t bytes);
  uint64_t plane_bytes_ = 0;
  Plane k_;
  Plane v_;
};

}  // namespace agentry::engine
