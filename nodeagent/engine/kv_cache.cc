#include "nodeagent/engine/kv_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/crc32c.h"
#include "kernels/cpu/quants.h"

namespace agentry::engine {
namespace {

constexpr char kSnapshotMagic[4] = {'A', 'G', 'K', 'V'};
constexpr uint32_t kVersion = 2;
constexpr size_t kHeaderBytesV1 = 4 + 5 * 4;
constexpr size_t kHeaderBytesV2 = 4 + 7 * 4;

uint64_t RowBytes(KvCacheType type, int64_t n_embd_kv) {
  if (type == KvCacheType::kQ8_0) {
    // Rounded up so that even a shape CheckType refuses gets a cache it cannot overrun.
    return static_cast<uint64_t>((n_embd_kv + kernels::kQK8_0 - 1) / kernels::kQK8_0) *
           sizeof(kernels::block_q8_0);
  }
  return static_cast<uint64_t>(n_embd_kv) * sizeof(uint16_t);
}

// llama.cpp's choice (llama_kv_cache::build_input_k_rot): keys by the largest power of two
// dividing the head size, starting from 64.
int64_t KeyRotation(int64_t head_dim) {
  int64_t n = 64;
  while (head_dim % (2 * n) == 0) n *= 2;
  return n;
}

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

uint32_t GetU32(std::string_view bytes, size_t offset) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + offset, 4);
  return v;
}

}  // namespace

const char* KvCacheTypeName(KvCacheType type) {
  return type == KvCacheType::kQ8_0 ? "q8_0" : "f16";
}

StatusOr<KvCacheType> ParseKvCacheType(std::string_view name) {
  if (name == "f16") return KvCacheType::kF16;
  if (name == "q8_0") return KvCacheType::kQ8_0;
  return InvalidArgumentError("want f16 or q8_0, got \"" + std::string(name) + "\"");
}

void KvCache::FreePlane::operator()(uint8_t* p) const { std::free(p); }

KvCache::Plane KvCache::AllocatePlane(uint64_t bytes) {
  // Large planes in whole 2 MiB pages where the kernel allows them (transparent huge pages,
  // "madvise" or "always"): a decode step then writes its rows into pages already there
  // instead of faulting a new 4 KiB page every few positions of every layer.
  constexpr uint64_t kHugePage = uint64_t{2} << 20;
  const bool huge = bytes >= kHugePage;
  const uint64_t size =
      huge ? (bytes + kHugePage - 1) / kHugePage * kHugePage : std::max<uint64_t>(bytes, 1);
  void* p = huge ? std::aligned_alloc(kHugePage, size) : std::malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  if (huge) madvise(p, size, MADV_HUGEPAGE);  // advice: without it, ordinary pages
  return Plane(static_cast<uint8_t*>(p));
}

KvCache::KvCache(const ModelParams& params, int64_t n_ctx, KvCacheType type)
    : type_(type),
      n_layer_(params.n_layer),
      n_ctx_(n_ctx),
      n_embd_kv_(params.n_embd_kv()),
      row_bytes_(RowBytes(type, params.n_embd_kv())),
      plane_bytes_(static_cast<uint64_t>(params.n_layer) * n_ctx * row_bytes_),
      k_(AllocatePlane(plane_bytes_)),
      v_(AllocatePlane(plane_bytes_)) {
  if (type == KvCacheType::kQ8_0 && params.head_dim % 64 == 0) {
    k_rotation_ = KeyRotation(params.head_dim);
    v_rotation_ = 64;
  }
}

Status KvCache::CheckType(const ModelParams& params, KvCacheType type) {
  if (type == KvCacheType::kQ8_0 && params.head_dim % kernels::kQK8_0 != 0) {
    return InvalidArgumentError("a Q8_0 KV cache needs a head size that is a multiple of 32; " +
                                std::to_string(params.head_dim) +
                                " in this model (use the F16 cache)");
  }
  return OkStatus();
}

Status KvCache::CopyPrefixFrom(const KvCache& other, int64_t n) {
  if (other.n_layer_ != n_layer_ || other.n_embd_kv_ != n_embd_kv_) {
    return InvalidArgumentError("KV cache prefix copy between different model shapes");
  }
  if (other.type_ != type_ || other.k_rotation_ != k_rotation_ ||
      other.v_rotation_ != v_rotation_) {
    return InvalidArgumentError(std::string("KV cache prefix copy from a ") +
                                KvCacheTypeName(other.type_) + " cache into a " +
                                KvCacheTypeName(type_) + " cache: the types must match");
  }
  if (n < 0 || n > other.size_ || n > n_ctx_) {
    return InvalidArgumentError("KV cache prefix of " + std::to_string(n) +
                                " positions: the source has " + std::to_string(other.size_) +
                                ", this context holds " + std::to_string(n_ctx_));
  }
  for (int64_t l = 0; l < n_layer_; ++l) {
    std::memcpy(k_row(l, 0), other.k_row(l, 0), row_bytes_ * n);
    std::memcpy(v_row(l, 0), other.v_row(l, 0), row_bytes_ * n);
  }
  size_ = n;
  return OkStatus();
}

std::string KvCache::Serialize() const {
  std::string out;
  out.reserve(kHeaderBytesV2 + 2 * n_layer_ * size_ * row_bytes_ + 4);
  out.append(kSnapshotMagic, 4);
  PutU32(&out, kVersion);
  PutU32(&out, static_cast<uint32_t>(n_layer_));
  PutU32(&out, static_cast<uint32_t>(n_embd_kv_));
  PutU32(&out, static_cast<uint32_t>(size_));
  PutU32(&out, static_cast<uint32_t>(type_));
  PutU32(&out, static_cast<uint32_t>(k_rotation_));
  PutU32(&out, static_cast<uint32_t>(v_rotation_));
  for (int64_t l = 0; l < n_layer_; ++l) {
    out.append(reinterpret_cast<const char*>(k_row(l, 0)), row_bytes_ * size_);
    out.append(reinterpret_cast<const char*>(v_row(l, 0)), row_bytes_ * size_);
  }
  PutU32(&out, Crc32c(out));
  return out;
}

Status KvCache::Restore(std::string_view bytes) {
  auto bad = [](size_t offset, const std::string& what) {
    return InvalidArgumentError("KV snapshot: offset " + std::to_string(offset) + ": " + what);
  };
  if (bytes.size() < kHeaderBytesV1 + 4) {
    return DataLossError("KV snapshot: " + std::to_string(bytes.size()) +
                         " bytes is shorter than its header (truncated?)");
  }
  if (std::memcmp(bytes.data(), kSnapshotMagic, 4) != 0) return bad(0, "not a KV snapshot (magic)");
  const uint32_t version = GetU32(bytes, 4);
  if (version != 1 && version != 2) {
    return bad(4, "version " + std::to_string(version) + " is not supported (want 1 or 2)");
  }
  const size_t header = version == 1 ? kHeaderBytesV1 : kHeaderBytesV2;
  if (bytes.size() < header + 4) {
    return DataLossError("KV snapshot: " + std::to_string(bytes.size()) +
                         " bytes is shorter than its header (truncated?)");
  }
  const uint32_t n_layer = GetU32(bytes, 8);
  const uint32_t n_embd_kv = GetU32(bytes, 12);
  const uint32_t n_pos = GetU32(bytes, 16);
  const uint32_t type = GetU32(bytes, 20);
  // Version 1 knew F16 only, unrotated.
  const uint32_t k_rotation = version == 1 ? 0 : GetU32(bytes, 24);
  const uint32_t v_rotation = version == 1 ? 0 : GetU32(bytes, 28);
  if (n_layer != n_layer_ || n_embd_kv != n_embd_kv_) {
    return bad(8, "made for " + std::to_string(n_layer) + " layers x " + std::to_string(n_embd_kv) +
                      " KV width, this model has " + std::to_string(n_layer_) + " x " +
                      std::to_string(n_embd_kv_));
  }
  if (n_pos > n_ctx_) {
    return bad(16, std::to_string(n_pos) + " positions do not fit in a context of " +
                       std::to_string(n_ctx_));
  }
  if (type != static_cast<uint32_t>(KvCacheType::kF16) &&
      type != static_cast<uint32_t>(KvCacheType::kQ8_0)) {
    return bad(20, "KV type " + std::to_string(type) + " is not 1 (F16) or 8 (Q8_0)");
  }
  if (version == 1 && type != static_cast<uint32_t>(KvCacheType::kF16)) {
    return bad(20, "a version 1 snapshot must hold an F16 cache, not type " + std::to_string(type));
  }
  if (type != static_cast<uint32_t>(type_)) {
    return bad(20, std::string("the snapshot holds a ") +
                       KvCacheTypeName(static_cast<KvCacheType>(type)) + " cache, this cache is " +
                       KvCacheTypeName(type_) + " (restore into a cache of the same type)");
  }
  if (k_rotation != k_rotation_ || v_rotation != v_rotation_) {
    return bad(24, "keys and values rotated in blocks of " + std::to_string(k_rotation) + " and " +
                       std::to_string(v_rotation) + ", this cache uses " +
                       std::to_string(k_rotation_) + " and " + std::to_string(v_rotation_));
  }
  const size_t want = header + 2 * static_cast<size_t>(n_layer_) * n_pos * row_bytes_ + 4;
  if (bytes.size() != want) {
    return DataLossError("KV snapshot: " + std::to_string(bytes.size()) + " bytes, expected " +
                         std::to_string(want) + " for " + std::to_string(n_pos) + " positions");
  }
  if (Crc32c(bytes.substr(0, want - 4)) != GetU32(bytes, want - 4)) {
    return DataLossError("KV snapshot: checksum mismatch (corrupt snapshot)");
  }
  size_t offset = header;
  for (int64_t l = 0; l < n_layer_; ++l) {
    std::memcpy(k_row(l, 0), bytes.data() + offset, row_bytes_ * n_pos);
    offset += row_bytes_ * n_pos;
    std::memcpy(v_row(l, 0), bytes.data() + offset, row_bytes_ * n_pos);
    offset += row_bytes_ * n_pos;
  }
  size_ = n_pos;
  return OkStatus();
}

}  // namespace agentry::engine
