// runtime/harness/session_snapshot.h — the blob the runtime keeps in the state sidecar for a
// session: the node daemon's snapshot of the session's KV, wrapped with what it covers.
//
//   "AGRS" | version (u32, 1) | through_seq (i64) | prompt key (u32 length, bytes) | daemon bytes
//
// through_seq: the last transcript event the daemon's KV holds; the events after it are sent
// after a restore. The prompt key (model name and system prompt, hashed) refuses a snapshot
// taken under other instructions or another model: the runtime rebuilds instead. One blob,
// written whole, so what it covers can never disagree with what it holds. Integers are
// little-endian.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace agentry::harness {

struct SessionSnapshot {
  int64_t through_seq = 0;
  std::string prompt_key;
  std::string daemon_bytes;
};

// SHA-256 (hex) of the model's name and the system prompt.
std::string PromptKey(std::string_view model, std::string_view system_prompt);

std::string EncodeSessionSnapshot(const SessionSnapshot& snapshot);
// An error naming what is wrong (DATA_LOSS for a truncated one) for anything but a blob
// EncodeSessionSnapshot wrote.
StatusOr<SessionSnapshot> DecodeSessionSnapshot(std::string_view blob);

}  // namespace agentry::harness
