// nodeagent/scheduler/session_snapshot.h — a session's state as bytes, for Snapshot/Restore
// (moving a live session to another node through the state sidecar) and for eviction.
//
//   "AGSN" | u32 version 1 | str model | u8 raw_tokens | u32 n_messages
//   | n_messages x (str role, str content) | u32 n_tokens | n_tokens x i32 | u64 exact_prefix
//   | u32 n_pending | n_pending x i32 | str kv_text | u32 n_ends | n_ends x i64 text_end
//   | str kv (KvCache::Serialize: its own header and CRC) | u32 CRC-32C of all before
// Integers little-endian; str = u32 length, then the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/chat_template.h"

namespace agentry::scheduler {

struct SessionState {
  std::string model;
  bool raw_tokens = false;                      // the session takes tokens, not messages
  std::vector<engine::ChatMessage> transcript;  // messages so far, replies included
  std::vector<int32_t> tokens;                  // the tokens the KV holds
  int64_t exact_prefix = 0;                     // positions computed in whole aligned chunks
  std::vector<int32_t> pending;                 // raw sessions: generated, not yet evaluated
  std::string kv_text;                          // chat sessions: the text the tokens stand for
  std::vector<int64_t> text_end;                // where each token ends in it (-1: inside a prompt)
  std::string kv;                               // KvCache::Serialize()
};

std::string EncodeSessionState(const SessionState& state);
// DataLoss for a checksum mismatch or truncated bytes; InvalidArgument naming the field for
// anything else malformed (magic, version, counts past the end, tokens and KV that disagree).
StatusOr<SessionState> DecodeSessionState(std::string_view bytes);

}  // namespace agentry::scheduler
