// Fuzzes ManagedAgent decoding: arbitrary bytes as a manifest must give either an agent or
// an InvalidArgument status — never a crash, hang, or unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/config/agent_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  agentry::StatusOr<agentry::config::ManagedAgent> agent =
      agentry::config::ParseManagedAgent(text, "fuzz.yaml");
  if (!agent.ok() && agent.status().code() != agentry::StatusCode::kInvalidArgument) {
    std::abort();  // every rejection of bad input must be InvalidArgument
  }
  return 0;
}
