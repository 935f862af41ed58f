// runtime/harness/session_snapshot.cc — see session_snapshot.h.
#include "runtime/harness/session_snapshot.h"

#include "common/byte_codec.h"
#include "common/sha256.h"

namespace agentry::harness {
namespace {

constexpr std::string_view kMagic = "AGRS";
constexpr uint32_t kVersion = 1;

}  // namespace

std::string PromptKey(std::string_view model, std::string_view system_prompt) {
  std::string both(model);
  both.push_back('\0');
  both.append(system_prompt);
  return Sha256Hex(both);
}

std::string EncodeSessionSnapshot(const SessionSnapshot& snapshot) {
  std::string out(kMagic);
  PutLe<uint32_t>(&out, kVersion);
  PutLe<int64_t>(&out, snapshot.through_seq);
  PutString(&out, snapshot.prompt_key);
  out += snapshot.daemon_bytes;
  return out;
}

StatusOr<SessionSnapshot> DecodeSessionSnapshot(std::string_view blob) {
  if (blob.substr(0, kMagic.size()) != kMagic) {
    return InvalidArgumentError("session snapshot: not one the runtime wrote (magic)");
  }
  ByteReader in(blob.substr(kMagic.size()), "runtime session snapshot");
  AGENTRY_ASSIGN_OR_RETURN(const uint32_t version, in.Get<uint32_t>("version"));
  if (version != kVersion) {
    return InvalidArgumentError("session snapshot: version " + std::to_string(version) +
                                ", this runtime reads " + std::to_string(kVersion));
  }
  SessionSnapshot s;
  AGENTRY_ASSIGN_OR_RETURN(s.through_seq, in.Get<int64_t>("through_seq"));
  if (s.through_seq < 1) return InvalidArgumentError("session snapshot: through_seq < 1");
  AGENTRY_ASSIGN_OR_RETURN(s.prompt_key, in.GetString("prompt key"));
  s.daemon_bytes = std::string(in.Rest());
  if (s.daemon_bytes.empty()) return InvalidArgumentError("session snapshot: no KV bytes");
  return s;
}

}  // namespace agentry::harness
