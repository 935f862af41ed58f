// nodeagent/engine/gguf.h — read GGUF model files (versions 2 and 3), zero-copy.
//
// The file is memory-mapped; tensor data and strings are views into the mapping, so
// opening a multi-gigabyte model costs only its metadata. The file is treated as hostile:
// every count, length, offset, dimension and type is checked against the bytes that are
// actually there before it is used, so a corrupt or truncated file gives an error naming
// the field and its byte offset, never a crash, hang, or allocation larger than the file.
//
//   StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open("model.gguf");
//   if (!file.ok()) return file.status();
//   StatusOr<std::string_view> arch = (*file)->GetString("general.architecture");
//   const GgufTensorInfo* embd = (*file)->FindTensor("token_embd.weight");
//   const uint8_t* bytes = (*file)->TensorData(*embd);
//
// Format: magic "GGUF", uint32 version, uint64 tensor count, uint64 metadata count, the
// metadata key/value pairs, the tensor infos, padding to `general.alignment` (default 32),
// then the tensor data. All integers little-endian.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace agentry::engine {

// Metadata value types, numbered as in the file.
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
std::string_view GgufValueTypeName(GgufValueType type);

// Tensor element types, numbered as ggml numbers them in the file.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
};

// Layout of one element type: `block_size` elements are stored in `block_bytes` bytes.
struct GgmlTypeTraits {
  const char* name = nullptr;  // "Q4_K"; nullptr for an id this reader does not know
  uint32_t block_size = 0;
  uint32_t block_bytes = 0;
};
// Traits for a raw type id from a file; `name == nullptr` when unknown or unsupported.
GgmlTypeTraits GgmlTypeTraitsOf(uint32_t raw_type);
// "IQ2_XXS" for known-but-unsupported ids (to make errors useful), "type 99" otherwise.
std::string GgmlTypeDescribe(uint32_t raw_type);

// One metadata value. Scalars live in the fields; strings and numeric arrays are views into
// the mapped file; arrays of strings and nested arrays are listed element by element.
struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  uint64_t offset = 0;  // where the value starts in the file

  // Scalars: integers widen into `u`/`i` (both set when representable), floats into `f`.
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string_view str;

  // Arrays.
  GgufValueType array_type = GgufValueType::kUint8;
  uint64_t array_count = 0;
  const uint8_t* array_data = nullptr;    // numeric and bool elements, packed, unaligned
  std::vector<std::string_view> strings;  // string elements
  std::vector<GgufValue> arrays;          // nested array elements

  // Numeric array element `index` (not bounds-checked beyond array_count; see Get*Array).
  template <typename T>
  T ArrayElement(uint64_t index) const;
};

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  uint32_t n_dims = 0;
  uint64_t dims[4] = {1, 1, 1, 1};  // dims[0] is the contiguous (fastest-varying) one
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // relative to the start of the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  uint64_t info_offset = 0;  // where this tensor's info starts in the file
};

class GgufFile {
 public:
  // Maps and parses `path`. NotFound / PermissionDenied for the file itself;
  // InvalidArgument naming the field and byte offset for anything wrong inside it.
  static StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses bytes the caller keeps alive (tests, fuzzing). `name` prefixes errors.
  static StatusOr<std::unique_ptr<GgufFile>> FromBuffer(std::string_view bytes, std::string name);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }
  const std::string& name() const { return name_; }

  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufValue* Find(std::string_view key) const;

  // Typed getters: NotFound when the key is absent, InvalidArgument naming the key and the
  // types when it has another type. Integer getters accept any integer type whose value
  // fits (files differ: some write context_length as u32, others as u64).
  StatusOr<std::string_view> GetString(std::string_view key) const;
  StatusOr<uint64_t> GetUint(std::string_view key) const;
  StatusOr<int64_t> GetInt(std::string_view key) const;
  StatusOr<double> GetFloat(std::string_view key) const;  // float32 or float64
  StatusOr<bool> GetBool(std::string_view key) const;
  // Array getters check the element type (integers: any integer type that fits).
  StatusOr<const std::vector<std::string_view>*> GetStringArray(std::string_view key) const;
  StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;
  StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  // The tensor's bytes inside the mapping (n_bytes long, aligned to alignment()).
  const uint8_t* TensorData(const GgufTensorInfo& tensor) const {
    return base_ + data_offset_ + tensor.offset;
  }

 private:
  GgufFile() = default;
  Status Parse();
  const GgufValue* FindTyped(std::string_view key, GgufValueType type, Status* error) const;

  std::string name_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  // owned when Open() mapped the file
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

template <typename T>
T GgufValue::ArrayElement(uint64_t index) const {
  T out;
  __builtin_memcpy(&out, array_data + index * sizeof(T), sizeof(T));
  return out;
}

}  // namespace agentry::engine
