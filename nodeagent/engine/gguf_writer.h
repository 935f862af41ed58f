// nodeagent/engine/gguf_writer.h — write GGUF v3 files.
//
// Used by the test-model generator, by `agentry train` to save checkpoints as models, and by
// tests that need exact, hostile or truncated files. The output is what GgufFile reads and
// what llama.cpp reads: metadata in insertion order, tensor data aligned to
// `general.alignment` (32 unless set).
//
//   GgufWriter w;
//   w.SetString("general.architecture", "llama");
//   w.SetUint32("llama.block_count", 2);
//   w.AddTensor("token_embd.weight", GgmlType::kF32, {64, 512}, bytes);
//   Status s = w.WriteFile("model.gguf");
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/gguf.h"

namespace agentry::engine {

class GgufWriter {
 public:
  void SetUint8(std::string_view key, uint8_t v);
  void SetInt32(std::string_view key, int32_t v);
  void SetUint32(std::string_view key, uint32_t v);
  void SetUint64(std::string_view key, uint64_t v);
  void SetFloat32(std::string_view key, float v);
  void SetBool(std::string_view key, bool v);
  void SetString(std::string_view key, std::string_view v);
  void SetStringArray(std::string_view key, const std::vector<std::string>& v);
  void SetFloat32Array(std::string_view key, const std::vector<float>& v);
  void SetInt32Array(std::string_view key, const std::vector<int32_t>& v);

  // `dims[0]` is the contiguous dimension. `data` must hold exactly the tensor's bytes
  // (InvalidArgument otherwise, also for an unknown type or a bad first dimension).
  Status AddTensor(std::string_view name, GgmlType type, const std::vector<uint64_t>& dims,
                   std::string_view data);

  // The whole file.
  std::string Serialize() const;
  // Writes to a temporary file beside `path`, fsyncs, and renames it into place, so a crash
  // never leaves a half-written model under the final name.
  Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> dims;
    std::string data;
  };
  void AddKv(std::string_view key, GgufValueType type, const std::string& encoded_value);
  uint64_t Alignment() const;

  std::string kv_bytes_;  // encoded key/value pairs
  uint64_t kv_count_ = 0;
  uint32_t alignment_ = 32;
  std::vector<Tensor> tensors_;
};

// Writes `bytes` to a temporary file beside `path`, fsyncs, and renames it into place.
Status WriteFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace agentry::engine
