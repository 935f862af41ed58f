// nodeagent/scheduler/session_snapshot.cc — see session_snapshot.h.
#include "nodeagent/scheduler/session_snapshot.h"

#include <cstring>

#include "common/byte_codec.h"
#include "common/crc32c.h"

namespace agentry::scheduler {
namespace {

constexpr std::string_view kMagic = "AGSN";
constexpr uint32_t kVersion = 1;

}  // namespace

std::string EncodeSessionState(const SessionState& state) {
  std::string out(kMagic);
  PutLe<uint32_t>(&out, kVersion);
  PutString(&out, state.model);
  PutLe<uint8_t>(&out, state.raw_tokens ? 1 : 0);
  PutLe<uint32_t>(&out, static_cast<uint32_t>(state.transcript.size()));
  for (const engine::ChatMessage& m : state.transcript) {
    PutString(&out, m.role);
    PutString(&out, m.content);
  }
  PutLe<uint32_t>(&out, static_cast<uint32_t>(state.tokens.size()));
  for (int32_t t : state.tokens) PutLe<int32_t>(&out, t);
  PutLe<uint64_t>(&out, static_cast<uint64_t>(state.exact_prefix));
  PutLe<uint32_t>(&out, static_cast<uint32_t>(state.pending.size()));
  for (int32_t t : state.pending) PutLe<int32_t>(&out, t);
  PutString(&out, state.kv_text);
  PutLe<uint32_t>(&out, static_cast<uint32_t>(state.text_end.size()));
  for (int64_t e : state.text_end) PutLe<int64_t>(&out, e);
  PutString(&out, state.kv);
  PutLe<uint32_t>(&out, Crc32c(out));
  return out;
}

StatusOr<SessionState> DecodeSessionState(std::string_view bytes) {
  if (bytes.size() < kMagic.size() + 8 || bytes.substr(0, kMagic.size()) != kMagic) {
    return InvalidArgumentError("session snapshot: not a snapshot (no AGSN magic)");
  }
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
  const std::string_view body = bytes.substr(0, bytes.size() - 4);
  if (Crc32c(body) != stored_crc) {
    return DataLossError("session snapshot: checksum mismatch (corrupt or truncated)");
  }
  ByteReader r(body.substr(kMagic.size()), "session snapshot");
  AGENTRY_ASSIGN_OR_RETURN(uint32_t version, r.Get<uint32_t>("version"));
  if (version != kVersion) {
    return InvalidArgumentError("session snapshot: version " + std::to_string(version) +
                                " (this daemon reads version " + std::to_string(kVersion) + ")");
  }
  SessionState s;
  AGENTRY_ASSIGN_OR_RETURN(s.model, r.GetString("model"));
  AGENTRY_ASSIGN_OR_RETURN(uint8_t raw, r.Get<uint8_t>("raw_tokens"));
  if (raw > 1)
    return InvalidArgumentError("session snapshot: raw_tokens is " + std::to_string(raw));
  s.raw_tokens = raw == 1;
  AGENTRY_ASSIGN_OR_RETURN(uint32_t n_messages, r.Get<uint32_t>("n_messages"));
  for (uint32_t i = 0; i < n_messages; ++i) {
    engine::ChatMessage m;
    AGENTRY_ASSIGN_OR_RETURN(m.role, r.GetString("message role"));
    AGENTRY_ASSIGN_OR_RETURN(m.content, r.GetString("message content"));
    s.transcript.push_back(std::move(m));
  }
  AGENTRY_ASSIGN_OR_RETURN(uint32_t n_tokens, r.Get<uint32_t>("n_tokens"));
  if (n_tokens > (body.size() - r.at()) / 4) {
    return InvalidArgumentError("session snapshot: n_tokens " + std::to_string(n_tokens) +
                                " runs past the end");
  }
  s.tokens.resize(n_tokens);
  for (int32_t& t : s.tokens) {
    AGENTRY_ASSIGN_OR_RETURN(t, r.Get<int32_t>("tokens"));
  }
  AGENTRY_ASSIGN_OR_RETURN(uint64_t exact, r.Get<uint64_t>("exact_prefix"));
  if (exact > n_tokens) {
    return InvalidArgumentError("session snapshot: exact_prefix " + std::to_string(exact) +
                                " exceeds n_tokens " + std::to_string(n_tokens));
  }
  s.exact_prefix = static_cast<int64_t>(exact);
  AGENTRY_ASSIGN_OR_RETURN(uint32_t n_pending, r.Get<uint32_t>("n_pending"));
  if (n_pending > 1) {
    return InvalidArgumentError("session snapshot: " + std::to_string(n_pending) +
                                " pending tokens (at most 1)");
  }
  s.pending.resize(n_pending);
  for (int32_t& t : s.pending) {
    AGENTRY_ASSIGN_OR_RETURN(t, r.Get<int32_t>("pending"));
  }
  AGENTRY_ASSIGN_OR_RETURN(s.kv_text, r.GetString("kv_text"));
  AGENTRY_ASSIGN_OR_RETURN(uint32_t n_ends, r.Get<uint32_t>("n_ends"));
  if (n_ends != 0 && n_ends != n_tokens) {
    return InvalidArgumentError("session snapshot: " + std::to_string(n_ends) + " text ends for " +
                                std::to_string(n_tokens) + " tokens");
  }
  s.text_end.resize(n_ends);
  for (int64_t& e : s.text_end) {
    AGENTRY_ASSIGN_OR_RETURN(e, r.Get<int64_t>("text_end"));
    if (e > static_cast<int64_t>(s.kv_text.size())) {
      return InvalidArgumentError("session snapshot: a text end past kv_text");
    }
  }
  AGENTRY_ASSIGN_OR_RETURN(s.kv, r.GetString("kv"));
  if (r.at() + kMagic.size() != body.size()) {
    return InvalidArgumentError(
        "session snapshot: " + std::to_string(body.size() - kMagic.size() - r.at()) +
        " bytes after the KV");
  }
  return s;
}

}  // namespace agentry::scheduler
