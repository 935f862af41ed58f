// Fuzzes the node daemon's session snapshot decoder, which Restore feeds with bytes from the
// network: any input gives a state whose fields agree (text ends inside the text, a pending
// token at most, the exact prefix within the tokens), or DataLoss / InvalidArgument — never
// a crash, hang or huge allocation. A decoded state encodes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/crc32c.h"
#include "nodeagent/scheduler/session_snapshot.h"

namespace {

void Check(std::string_view bytes) {
  auto state = agentry::scheduler::DecodeSessionState(bytes);
  if (!state.ok()) {
    const agentry::StatusCode code = state.status().code();
    if (code != agentry::StatusCode::kDataLoss && code != agentry::StatusCode::kInvalidArgument) {
      std::abort();
    }
    return;
  }
  if (state->exact_prefix > static_cast<int64_t>(state->tokens.size())) std::abort();
  if (state->pending.size() > 1) std::abort();
  if (!state->text_end.empty() && state->text_end.size() != state->tokens.size()) std::abort();
  for (int64_t end : state->text_end) {
    if (end > static_cast<int64_t>(state->kv_text.size())) std::abort();
  }
  if (agentry::scheduler::EncodeSessionState(*state) != bytes) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Check(bytes);
  // The same bytes with a checksum that matches, so the fields behind it are reached too.
  std::string fixed(bytes);
  const uint32_t crc = agentry::Crc32c(fixed);
  fixed.append(reinterpret_cast<const char*>(&crc), sizeof(crc));
  Check(fixed);
  return 0;
}
