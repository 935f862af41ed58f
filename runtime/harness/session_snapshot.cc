// runtime/harness/session_snapshot.cc — see session_snapshot.h.
#include "runtime/harness/session_snapshot.h"

#include <cstring>

#include "common/sha256.h"

namespace agentry::harness {
namespace {

constexpr std::string_view kMagic = "AGRS";
constexpr uint32_t kVersion = 1;

template <typename T>
void Put(std::string* out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out->push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xff));
  }
}

template <typename T>
bool Take(std::string_view* in, T* value) {
  if (in->size() < sizeof(T)) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  }
  *value = static_cast<T>(v);
  in->remove_prefix(sizeof(T));
  return true;
}

}  // namespace

std::string PromptKey(std::string_view model, std::string_view system_prompt) {
  std::string both(model);
  both.push_back('\0');
  both.append(system_prompt);
  return Sha256Hex(both);
}

std::string EncodeSessionSnapshot(const SessionSnapshot& snapshot) {
  std::string out(kMagic);
  Put<uint32_t>(&out, kVersion);
  Put<int64_t>(&out, snapshot.through_seq);
  Put<uint32_t>(&out, static_cast<uint32_t>(snapshot.prompt_key.size()));
  out += snapshot.prompt_key;
  out += snapshot.daemon_bytes;
  return out;
}

StatusOr<SessionSnapshot> DecodeSessionSnapshot(std::string_view blob) {
  if (blob.substr(0, kMagic.size()) != kMagic) {
    return InvalidArgumentError("session snapshot: not one the runtime wrote (magic)");
  }
  blob.remove_prefix(kMagic.size());
  uint32_t version = 0;
  SessionSnapshot s;
  uint32_t key_size = 0;
  if (!Take(&blob, &version) || !Take(&blob, &s.through_seq) || !Take(&blob, &key_size)) {
    return InvalidArgumentError("session snapshot: truncated header");
  }
  if (version != kVersion) {
    return InvalidArgumentError("session snapshot: version " + std::to_string(version) +
                                ", this runtime reads " + std::to_string(kVersion));
  }
  if (s.through_seq < 1) return InvalidArgumentError("session snapshot: through_seq < 1");
  if (key_size > blob.size()) return InvalidArgumentError("session snapshot: truncated key");
  s.prompt_key = std::string(blob.substr(0, key_size));
  s.daemon_bytes = std::string(blob.substr(key_size));
  if (s.daemon_bytes.empty()) return InvalidArgumentError("session snapshot: no KV bytes");
  return s;
}

}  // namespace agentry::harness
