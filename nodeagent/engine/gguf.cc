#include "nodeagent/engine/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>

namespace agentry::engine {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are refused
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxNameBytes = 256;  // tensor names; llama.cpp uses 64
constexpr uint64_t kMaxKeyBytes = 65536;

struct TypeRow {
  uint32_t id;
  GgmlTypeTraits traits;
};

constexpr TypeRow kTypes[] = {
    {0, {"F32", 1, 4}},       {1, {"F16", 1, 2}},       {2, {"Q4_0", 32, 18}},
    {3, {"Q4_1", 32, 20}},    {6, {"Q5_0", 32, 22}},    {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},    {9, {"Q8_1", 32, 36}},    {10, {"Q2_K", 256, 84}},
    {11, {"Q3_K", 256, 110}}, {12, {"Q4_K", 256, 144}}, {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}}, {15, {"Q8_K", 256, 292}}, {24, {"I8", 1, 1}},
    {25, {"I16", 1, 2}},      {26, {"I32", 1, 4}},      {27, {"I64", 1, 8}},
    {28, {"F64", 1, 8}},      {30, {"BF16", 1, 2}},
};

// Ids ggml knows whose layout this reader does not implement; named in errors.
const char* UnsupportedTypeName(uint32_t id) {
  switch (id) {
    case 16:
      return "IQ2_XXS";
    case 17:
      return "IQ2_XS";
    case 18:
      return "IQ3_XXS";
    case 19:
      return "IQ1_S";
    case 20:
      return "IQ4_NL";
    case 21:
      return "IQ3_S";
    case 22:
      return "IQ2_S";
    case 23:
      return "IQ4_XS";
    case 29:
      return "IQ1_M";
    case 34:
      return "TQ1_0";
    case 35:
      return "TQ2_0";
    case 39:
      return "MXFP4";
    default:
      return nullptr;
  }
}

// Bytes one element of a fixed-size value type takes; 0 for string and array.
uint64_t ScalarBytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    case GgufValueType::kString:
    case GgufValueType::kArray:
      return 0;
  }
  return 0;
}

bool IsKnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

bool IsIntegerType(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

// Bounds-checked little-endian reads; every error names the field and the offset.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::string& name)
      : base_(base), size_(size), name_(name) {}

  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  Status Error(uint64_t at, const std::string& field, const std::string& what) const {
    return InvalidArgumentError(name_ + ": offset " + std::to_string(at) + ": " + field + ": " +
                                what);
  }

  Status Need(uint64_t bytes, const std::string& field) const {
    if (bytes > remaining()) {
      return Error(pos_, field,
                   "needs " + std::to_string(bytes) + " bytes but the file ends after " +
                       std::to_string(remaining()) + " (truncated?)");
    }
    return OkStatus();
  }

  template <typename T>
  Status Read(const std::string& field, T* out) {
    AGENTRY_RETURN_IF_ERROR(Need(sizeof(T), field));
    std::memcpy(out, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return OkStatus();
  }

  Status ReadString(const std::string& field, uint64_t max_len, std::string_view* out) {
    const uint64_t at = pos_;
    uint64_t len = 0;
    AGENTRY_RETURN_IF_ERROR(Read(field + " length", &len));
    if (len > max_len) {
      return Error(
          at, field,
          "length " + std::to_string(len) + " exceeds the limit of " + std::to_string(max_len));
    }
    AGENTRY_RETURN_IF_ERROR(Need(len, field));
    *out = std::string_view(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return OkStatus();
  }

  const uint8_t* here() const { return base_ + pos_; }
  void Skip(uint64_t bytes) { pos_ += bytes; }  // callers Need() first

 private:
  const uint8_t* base_;
  uint64_t size_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

Status ReadScalar(Cursor* c, GgufValueType type, const std::string& field, GgufValue* v) {
  switch (type) {
#define AGENTRY_GGUF_INT(enum_name, ctype)       \
  case GgufValueType::enum_name: {               \
    ctype x = 0;                                 \
    AGENTRY_RETURN_IF_ERROR(c->Read(field, &x)); \
    v->i = static_cast<int64_t>(x);              \
    v->u = static_cast<uint64_t>(x);             \
    return OkStatus();                           \
  }
    AGENTRY_GGUF_INT(kUint8, uint8_t)
    AGENTRY_GGUF_INT(kInt8, int8_t)  // NOLINT(bugprone-signed-char-misuse): int8 is a number here
    AGENTRY_GGUF_INT(kUint16, uint16_t)
    AGENTRY_GGUF_INT(kInt16, int16_t)
    AGENTRY_GGUF_INT(kUint32, uint32_t)
    AGENTRY_GGUF_INT(kInt32, int32_t)
    AGENTRY_GGUF_INT(kUint64, uint64_t)
    AGENTRY_GGUF_INT(kInt64, int64_t)
#undef AGENTRY_GGUF_INT
    case GgufValueType::kFloat32: {
      float x = 0;
      AGENTRY_RETURN_IF_ERROR(c->Read(field, &x));
      v->f = x;
      return OkStatus();
    }
    case GgufValueType::kFloat64:
      return c->Read(field, &v->f);
    case GgufValueType::kBool: {
      uint8_t x = 0;
      const uint64_t at = c->offset();
      AGENTRY_RETURN_IF_ERROR(c->Read(field, &x));
      if (x > 1) return c->Error(at, field, "bool must be 0 or 1, got " + std::to_string(x));
      v->b = x == 1;
      return OkStatus();
    }
    case GgufValueType::kString:
      return c->ReadString(field, std::numeric_limits<uint64_t>::max(), &v->str);
    case GgufValueType::kArray:
      break;
  }
  return c->Error(c->offset(), field, "not a scalar type");
}

Status ReadValue(Cursor* c, GgufValueType type, const std::string& field, int depth, GgufValue* v);

Status ReadArray(Cursor* c, const std::string& field, int depth, GgufValue* v) {
  const uint64_t at = c->offset();
  if (depth > kMaxArrayDepth) {
    return c->Error(at, field, "arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  }
  uint32_t raw_type = 0;
  AGENTRY_RETURN_IF_ERROR(c->Read(field + " element type", &raw_type));
  if (!IsKnownValueType(raw_type)) {
    return c->Error(at, field, "unknown array element type " + std::to_string(raw_type));
  }
  v->array_type = static_cast<GgufValueType>(raw_type);
  AGENTRY_RETURN_IF_ERROR(c->Read(field + " count", &v->array_count));
  // Every element takes at least this many bytes, so a count larger than the rest of the
  // file allows is refused before anything is allocated for it.
  const uint64_t fixed = ScalarBytes(v->array_type);
  const uint64_t min_bytes =
      fixed != 0 ? fixed : (v->array_type == GgufValueType::kString ? 8 : 12);
  if (v->array_count > c->remaining() / min_bytes) {
    return c->Error(at, field,
                    "array of " + std::to_string(v->array_count) + " " +
                        std::string(GgufValueTypeName(v->array_type)) +
                        " elements does not fit in the " + std::to_string(c->remaining()) +
                        " bytes left");
  }
  if (fixed != 0) {
    v->array_data = c->here();
    if (v->array_type == GgufValueType::kBool) {
      for (uint64_t k = 0; k < v->array_count; ++k) {
        if (v->array_data[k] > 1) {
          return c->Error(c->offset() + k, field + "[" + std::to_string(k) + "]",
                          "bool must be 0 or 1");
        }
      }
    }
    c->Skip(fixed * v->array_count);
    return OkStatus();
  }
  if (v->array_type == GgufValueType::kString) {
    v->strings.resize(v->array_count);
    for (uint64_t k = 0; k < v->array_count; ++k) {
      AGENTRY_RETURN_IF_ERROR(c->ReadString(field + "[" + std::to_string(k) + "]",
                                            std::numeric_limits<uint64_t>::max(), &v->strings[k]));
    }
    return OkStatus();
  }
  v->arrays.resize(v->array_count);
  for (uint64_t k = 0; k < v->array_count; ++k) {
    v->arrays[k].type = GgufValueType::kArray;
    v->arrays[k].offset = c->offset();
    AGENTRY_RETURN_IF_ERROR(
        ReadArray(c, field + "[" + std::to_string(k) + "]", depth + 1, &v->arrays[k]));
  }
  return OkStatus();
}

Status ReadValue(Cursor* c, GgufValueType type, const std::string& field, int depth, GgufValue* v) {
  v->type = type;
  v->offset = c->offset();
  if (type == GgufValueType::kArray) return ReadArray(c, field, depth, v);
  return ReadScalar(c, type, field, v);
}

// Checked a * b.
bool MulOverflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace

std::string_view GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

GgmlTypeTraits GgmlTypeTraitsOf(uint32_t raw_type) {
  for (const TypeRow& row : kTypes) {
    if (row.id == raw_type) return row.traits;
  }
  return {};
}

std::string GgmlTypeDescribe(uint32_t raw_type) {
  if (const char* name = GgmlTypeTraitsOf(raw_type).name) return name;
  if (const char* name = UnsupportedTypeName(raw_type)) return name;
  return "type " + std::to_string(raw_type);
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) munmap(mapping_, size_);
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string message = path + ": " + std::generic_category().message(err);
    if (err == ENOENT) return NotFoundError(message);
    if (err == EACCES) return PermissionDeniedError(message);
    return UnavailableError(message);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgumentError(path + ": not a regular file");
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = path;
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0) {
    void* map = mmap(nullptr, file->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
      const std::string err = std::generic_category().message(errno);
      ::close(fd);
      return UnavailableError(path + ": mmap: " + err);
    }
    file->mapping_ = map;
    file->base_ = static_cast<const uint8_t*>(map);
  }
  ::close(fd);  // the mapping keeps the file alive
  AGENTRY_RETURN_IF_ERROR(file->Parse());
  return file;
}

StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBuffer(std::string_view bytes, std::string name) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name_ = std::move(name);
  file->base_ = reinterpret_cast<const uint8_t*>(bytes.data());
  file->size_ = bytes.size();
  AGENTRY_RETURN_IF_ERROR(file->Parse());
  return file;
}

Status GgufFile::Parse() {
  Cursor c(base_, size_, name_);
  uint32_t magic = 0;
  AGENTRY_RETURN_IF_ERROR(c.Read("magic", &magic));
  if (magic != kMagic) return c.Error(0, "magic", "not a GGUF file (no \"GGUF\" magic)");
  AGENTRY_RETURN_IF_ERROR(c.Read("version", &version_));
  if (version_ != 2 && version_ != 3) {
    return c.Error(4, "version",
                   "unsupported GGUF version " + std::to_string(version_) + " (want 2 or 3)");
  }
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
  AGENTRY_RETURN_IF_ERROR(c.Read("tensor_count", &n_tensors));
  AGENTRY_RETURN_IF_ERROR(c.Read("metadata_kv_count", &n_kv));
  // A key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at
  // least 8 + 4 + 8 + 4 + 8. Refuse counts the file cannot hold before reserving anything.
  if (n_kv > c.remaining() / 13) {
    return c.Error(
        16, "metadata_kv_count",
        std::to_string(n_kv) + " pairs cannot fit in a " + std::to_string(size_) + "-byte file");
  }
  if (n_tensors > c.remaining() / 32) {
    return c.Error(8, "tensor_count",
                   std::to_string(n_tensors) + " tensors cannot fit in a " + std::to_string(size_) +
                       "-byte file");
  }

  kvs_.resize(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string field = "metadata[" + std::to_string(k) + "]";
    GgufKv& kv = kvs_[k];
    AGENTRY_RETURN_IF_ERROR(c.ReadString(field + ".key", kMaxKeyBytes, &kv.key));
    const std::string vfield = std::string(kv.key);
    uint32_t raw_type = 0;
    const uint64_t type_at = c.offset();
    AGENTRY_RETURN_IF_ERROR(c.Read(vfield + " type", &raw_type));
    if (!IsKnownValueType(raw_type)) {
      return c.Error(type_at, vfield, "unknown value type " + std::to_string(raw_type));
    }
    AGENTRY_RETURN_IF_ERROR(
        ReadValue(&c, static_cast<GgufValueType>(raw_type), vfield, 0, &kv.value));
    if (!kv_index_.emplace(kv.key, k).second) {
      return c.Error(kv.value.offset, vfield, "key appears more than once");
    }
  }

  if (const GgufValue* align = Find("general.alignment")) {
    if (align->type != GgufValueType::kUint32 || align->u == 0 ||
        (align->u & (align->u - 1)) != 0) {
      return c.Error(align->offset, "general.alignment",
                     "must be a uint32 power of two, got " +
                         std::string(GgufValueTypeName(align->type)) + " " +
                         std::to_string(align->u));
    }
    alignment_ = align->u;
  }

  tensors_.resize(n_tensors);
  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo& info = tensors_[t];
    info.info_offset = c.offset();
    const std::string field = "tensor_infos[" + std::to_string(t) + "]";
    AGENTRY_RETURN_IF_ERROR(c.ReadString(field + ".name", kMaxNameBytes, &info.name));
    const std::string tfield = field + " (" + std::string(info.name) + ")";
    const uint64_t dims_at = c.offset();
    AGENTRY_RETURN_IF_ERROR(c.Read(tfield + ".n_dims", &info.n_dims));
    if (info.n_dims == 0 || info.n_dims > kMaxDims) {
      return c.Error(dims_at, tfield + ".n_dims",
                     "must be 1 to 4, got " + std::to_string(info.n_dims));
    }
    info.n_elements = 1;
    for (uint32_t d = 0; d < info.n_dims; ++d) {
      const uint64_t at = c.offset();
      const std::string dfield = tfield + ".dims[" + std::to_string(d) + "]";
      AGENTRY_RETURN_IF_ERROR(c.Read(dfield, &info.dims[d]));
      if (info.dims[d] == 0 || info.dims[d] > (uint64_t{1} << 40)) {
        return c.Error(at, dfield, "must be 1 to 2^40, got " + std::to_string(info.dims[d]));
      }
      if (MulOverflows(info.n_elements, info.dims[d], &info.n_elements) ||
          info.n_elements > (uint64_t{1} << 48)) {
        return c.Error(at, dfield, "element count overflows");
      }
    }
    uint32_t raw_type = 0;
    const uint64_t type_at = c.offset();
    AGENTRY_RETURN_IF_ERROR(c.Read(tfield + ".type", &raw_type));
    const GgmlTypeTraits traits = GgmlTypeTraitsOf(raw_type);
    if (traits.name == nullptr) {
      return c.Error(type_at, tfield + ".type",
                     "unsupported tensor type " + GgmlTypeDescribe(raw_type));
    }
    info.type = static_cast<GgmlType>(raw_type);
    if (info.dims[0] % traits.block_size != 0) {
      return c.Error(dims_at, tfield + ".dims[0]",
                     std::to_string(info.dims[0]) + " is not a multiple of the " + traits.name +
                         " block size " + std::to_string(traits.block_size));
    }
    info.n_bytes = info.n_elements / traits.block_size * traits.block_bytes;
    const uint64_t offset_at = c.offset();
    AGENTRY_RETURN_IF_ERROR(c.Read(tfield + ".offset", &info.offset));
    if (info.offset % alignment_ != 0) {
      return c.Error(offset_at, tfield + ".offset",
                     std::to_string(info.offset) + " is not a multiple of the alignment " +
                         std::to_string(alignment_));
    }
    if (!tensor_index_.emplace(info.name, t).second) {
      return c.Error(info.info_offset, tfield + ".name", "tensor name appears more than once");
    }
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t end_of_infos = c.offset();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_offset_ > size_) {
    return c.Error(end_of_infos, "data section",
                   "starts at " + std::to_string(data_offset_) + ", past the end of the " +
                       std::to_string(size_) + "-byte file");
  }
  const uint64_t data_size = data_offset_ <= size_ ? size_ - data_offset_ : 0;
  for (const GgufTensorInfo& info : tensors_) {
    if (info.offset > data_size || info.n_bytes > data_size - info.offset) {
      return c.Error(info.info_offset, "tensor " + std::string(info.name),
                     "data [" + std::to_string(info.offset) + ", " +
                         std::to_string(info.offset + info.n_bytes) +
                         ") lies outside the data section of " + std::to_string(data_size) +
                         " bytes (truncated file?)");
    }
  }
  return OkStatus();
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Status WrongType(std::string_view key, std::string_view want, const GgufValue& v) {
  std::string got(GgufValueTypeName(v.type));
  if (v.type == GgufValueType::kArray) got += " of " + std::string(GgufValueTypeName(v.array_type));
  return InvalidArgumentError(std::string(key) + ": expected " + std::string(want) + ", found " +
                              got);
}

bool IsSigned(GgufValueType t) {
  return t == GgufValueType::kInt8 || t == GgufValueType::kInt16 || t == GgufValueType::kInt32 ||
         t == GgufValueType::kInt64;
}

}  // namespace

StatusOr<std::string_view> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFoundError(std::string(key) + ": not in the file");
  if (v->type != GgufValueType::kString) return WrongType(key, "string", *v);
  return v->str;
}

StatusOr<uint64_t> GgufFile::GetUint(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFoundError(std::string(key) + ": not in the file");
  if (!IsIntegerType(v->type)) return WrongType(key, "an unsigned integer", *v);
  if (IsSigned(v->type) && v->i < 0) {
    return InvalidArgumentError(std::string(key) + ": must not be negative, got " +
                                std::to_string(v->i));
  }
  return v->u;
}

StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFoundError(std::string(key) + ": not in the file");
  if (!IsIntegerType(v->type)) return WrongType(key, "an integer", *v);
  if (v->type == GgufValueType::kUint64 && v->u > static_cast<uint64_t>(INT64_MAX)) {
    return InvalidArgumentError(std::string(key) + ": " + std::to_string(v->u) +
                                " does not fit in int64");
  }
  return v->i;
}

StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFoundError(std::string(key) + ": not in the file");
  if (v->type != GgufValueType::kFloat32 && v->type != GgufValueType::kFloat64) {
    return WrongType(key, "a float", *v);
  }
  return v->f;
}

StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFoundError(std::string(key) + ": not in the file");
  if (v->type != GgufValueType::kBool) return WrongType(key, "bool", *v);
  return v->b;
}

StatusOr<const std::vector<std::string_view>*> GgufFile::GetStringArray(
    std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFoundError(std::string(key) + ": not in the file");
  if (v->type != GgufValueType::kArray || v->array_type != GgufValueType::kString) {
    return WrongType(key, "array of string", *v);
  }
  return &v->strings;
}

StatusOr<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFoundError(std::string(key) + ": not in the file");
  if (v->type != GgufValueType::kArray || v->array_type != GgufValueType::kFloat32) {
    return WrongType(key, "array of float32", *v);
  }
  std::vector<float> out(v->array_count);
  for (uint64_t k = 0; k < v->array_count; ++k) out[k] = v->ArrayElement<float>(k);
  return out;
}

StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return NotFoundError(std::string(key) + ": not in the file");
  if (v->type != GgufValueType::kArray || !IsIntegerType(v->array_type)) {
    return WrongType(key, "array of integers", *v);
  }
  std::vector<int64_t> out(v->array_count);
  for (uint64_t k = 0; k < v->array_count; ++k) {
    switch (v->array_type) {
      case GgufValueType::kUint8:
        out[k] = v->ArrayElement<uint8_t>(k);
        break;
      case GgufValueType::kInt8:
        out[k] = v->ArrayElement<int8_t>(k);  // NOLINT(bugprone-signed-char-misuse): a number
        break;
      case GgufValueType::kUint16:
        out[k] = v->ArrayElement<uint16_t>(k);
        break;
      case GgufValueType::kInt16:
        out[k] = v->ArrayElement<int16_t>(k);
        break;
      case GgufValueType::kUint32:
        out[k] = v->ArrayElement<uint32_t>(k);
        break;
      case GgufValueType::kInt32:
        out[k] = v->ArrayElement<int32_t>(k);
        break;
      case GgufValueType::kInt64:
        out[k] = v->ArrayElement<int64_t>(k);
        break;
      case GgufValueType::kUint64: {
        const uint64_t x = v->ArrayElement<uint64_t>(k);
        if (x > static_cast<uint64_t>(INT64_MAX)) {
          return InvalidArgumentError(std::string(key) + "[" + std::to_string(k) +
                                      "]: does not fit in int64");
        }
        out[k] = static_cast<int64_t>(x);
        break;
      }
      default:
        break;
    }
  }
  return out;
}

}  // namespace agentry::engine
