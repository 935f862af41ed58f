// nodeagent/scheduler/session_snapshot.cc — see session_snapshot.h.
#include "nodeagent/scheduler/session_snapshot.h"

#include <cstring>

#include "common/crc32c.h"

namespace agentry::scheduler {
namespace {

constexpr std::string_view kMagic = "AGSN";
constexpr uint32_t kVersion = 1;

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86-64 and aarch64 are little-endian, as the format
  out->append(b, sizeof(T));
}
void PutString(std::string* out, std::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  StatusOr<T> Get(const char* field) {
    if (bytes_.size() - at_ < sizeof(T)) return Truncated(field);
    T v;
    std::memcpy(&v, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  StatusOr<std::string> GetString(const char* field) {
    AGENTRY_ASSIGN_OR_RETURN(uint32_t n, Get<uint32_t>(field));
    if (bytes_.size() - at_ < n) return Truncated(field);
    std::string s(bytes_.substr(at_, n));
    at_ += n;
    return s;
  }
  size_t at() const { return at_; }

 private:
  Status Truncated(const char* field) const {
    return DataLossError("session snapshot: truncated at " + std::string(field) + " (offset " +
                         std::to_string(at_) + " of " + std::to_string(bytes_.size()) + ")");
  }
  std::string_view bytes_;
  size_t at_ = 0;
};

}  // namespace

std::string EncodeSessionState(const SessionState& state) {
  std::string out(kMagic);
  Put<uint32_t>(&out, kVersion);
  PutString(&out, state.model);
  Put<uint8_t>(&out, state.raw_tokens ? 1 : 0);
  Put<uint32_t>(&out, static_cast<uint32_t>(state.transcript.size()));
  for (const engine::ChatMessage& m : state.transcript) {
    PutString(&out, m.role);
    PutString(&out, m.content);
  }
  Put<uint32_t>(&out, static_cast<uint32_t>(state.tokens.size()));
  for (int32_t t : state.tokens) Put<int32_t>(&out, t);
  Put<uint64_t>(&out, static_cast<uint64_t>(state.exact_prefix));
  Put<uint32_t>(&out, static_cast<uint32_t>(state.pending.size()));
  for (int32_t t : state.pending) Put<int32_t>(&out, t);
  PutString(&out, state.kv_text);
  Put<uint32_t>(&out, static_cast<uint32_t>(state.text_end.size()));
  for (int64_t e : state.text_end) Put<int64_t>(&out, e);
  PutString(&out, state.kv);
  Put<uint32_t>(&out, Crc32c(out));
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
  Reader r(body.substr(kMagic.size()));
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
