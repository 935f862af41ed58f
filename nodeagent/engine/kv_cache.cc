#include "nodeagent/engine/kv_cache.h"

#include <cstring>

#include "common/crc32c.h"

namespace agentry::engine {

KvCache::KvCache(const ModelParams& params, int64_t n_ctx)
    : n_layer_(params.n_layer),
      n_ctx_(n_ctx),
      n_embd_kv_(params.n_embd_kv()),
      k_(static_cast<uint64_t>(params.n_layer) * n_ctx * params.n_embd_kv()),
      v_(static_cast<uint64_t>(params.n_layer) * n_ctx * params.n_embd_kv()) {}

namespace {

constexpr char kMagic[4] = {'A', 'G', 'K', 'V'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kTypeF16 = 1;
constexpr size_t kHeaderBytes = 4 + 5 * 4;

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }

uint32_t GetU32(std::string_view bytes, size_t offset) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + offset, 4);
  return v;
}

}  // namespace

Status KvCache::CopyPrefixFrom(const KvCache& other, int64_t n) {
  if (other.n_layer_ != n_layer_ || other.n_embd_kv_ != n_embd_kv_) {
    return InvalidArgumentError("KV cache prefix copy between different model shapes");
  }
  if (n < 0 || n > other.size_ || n > n_ctx_) {
    return InvalidArgumentError("KV cache prefix of " + std::to_string(n) +
                                " positions: the source has " + std::to_string(other.size_) +
                                ", this context holds " + std::to_string(n_ctx_));
  }
  const size_t row = static_cast<size_t>(n_embd_kv_) * sizeof(uint16_t);
  for (int64_t l = 0; l < n_layer_; ++l) {
    std::memcpy(k(l, 0), other.k(l, 0), row * n);
    std::memcpy(v(l, 0), other.v(l, 0), row * n);
  }
  size_ = n;
  return OkStatus();
}

std::string KvCache::Serialize() const {
  const size_t row = static_cast<size_t>(n_embd_kv_) * sizeof(uint16_t);
  std::string out;
  out.reserve(kHeaderBytes + 2 * n_layer_ * size_ * row + 4);
  out.append(kMagic, 4);
  PutU32(&out, kVersion);
  PutU32(&out, static_cast<uint32_t>(n_layer_));
  PutU32(&out, static_cast<uint32_t>(n_embd_kv_));
  PutU32(&out, static_cast<uint32_t>(size_));
  PutU32(&out, kTypeF16);
  for (int64_t l = 0; l < n_layer_; ++l) {
    out.append(reinterpret_cast<const char*>(k(l, 0)), row * size_);
    out.append(reinterpret_cast<const char*>(v(l, 0)), row * size_);
  }
  PutU32(&out, Crc32c(out));
  return out;
}

Status KvCache::Restore(std::string_view bytes) {
  auto bad = [](size_t offset, const std::string& what) {
    return InvalidArgumentError("KV snapshot: offset " + std::to_string(offset) + ": " + what);
  };
  if (bytes.size() < kHeaderBytes + 4) {
    return DataLossError("KV snapshot: " + std::to_string(bytes.size()) +
                         " bytes is shorter than its header (truncated?)");
  }
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) return bad(0, "not a KV snapshot (magic)");
  if (GetU32(bytes, 4) != kVersion) {
    return bad(4, "version " + std::to_string(GetU32(bytes, 4)) + " is not supported (want 1)");
  }
  const uint32_t n_layer = GetU32(bytes, 8);
  const uint32_t n_embd_kv = GetU32(bytes, 12);
  const uint32_t n_pos = GetU32(bytes, 16);
  if (n_layer != n_layer_ || n_embd_kv != n_embd_kv_) {
    return bad(8, "made for " + std::to_string(n_layer) + " layers x " + std::to_string(n_embd_kv) +
                      " KV width, this model has " + std::to_string(n_layer_) + " x " +
                      std::to_string(n_embd_kv_));
  }
  if (n_pos > n_ctx_) {
    return bad(16, std::to_string(n_pos) + " positions do not fit in a context of " +
                       std::to_string(n_ctx_));
  }
  if (GetU32(bytes, 20) != kTypeF16) return bad(20, "KV type must be 1 (F16)");
  const size_t row = static_cast<size_t>(n_embd_kv_) * sizeof(uint16_t);
  const size_t want = kHeaderBytes + 2 * static_cast<size_t>(n_layer_) * n_pos * row + 4;
  if (bytes.size() != want) {
    return DataLossError("KV snapshot: " + std::to_string(bytes.size()) + " bytes, expected " +
                         std::to_string(want) + " for " + std::to_string(n_pos) + " positions");
  }
  if (Crc32c(bytes.substr(0, want - 4)) != GetU32(bytes, want - 4)) {
    return DataLossError("KV snapshot: checksum mismatch (corrupt snapshot)");
  }
  size_t offset = kHeaderBytes;
  for (int64_t l = 0; l < n_layer_; ++l) {
    std::memcpy(k(l, 0), bytes.data() + offset, row * n_pos);
    offset += row * n_pos;
    std::memcpy(v(l, 0), bytes.data() + offset, row * n_pos);
    offset += row * n_pos;
  }
  size_ = n_pos;
  return OkStatus();
}

}  // namespace agentry::engine
