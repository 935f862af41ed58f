// Fuzzes the GGUF reader: arbitrary bytes must give a parsed file whose every tensor lies
// inside the buffer, or an InvalidArgument — never a crash, hang or huge allocation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "nodeagent/engine/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto file = agentry::engine::GgufFile::FromBuffer(bytes, "fuzz.gguf");
  if (!file.ok()) {
    if (file.status().code() != agentry::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  for (const auto& t : (*file)->tensors()) {
    const uint8_t* begin = (*file)->TensorData(t);
    if (begin < data || begin + t.n_bytes > data + size) std::abort();
  }
  return 0;
}
