#include "nodeagent/engine/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace agentry::engine {
namespace {

template <typename T>
void Put(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

void PutString(std::string* out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

template <typename T>
std::string Scalar(T v) {
  std::string out;
  Put(&out, v);
  return out;
}

template <typename T>
std::string NumericArray(GgufValueType type, const std::vector<T>& v) {
  std::string out;
  Put<uint32_t>(&out, static_cast<uint32_t>(type));
  Put<uint64_t>(&out, v.size());
  for (const T& x : v) Put(&out, x);
  return out;
}

}  // namespace

void GgufWriter::AddKv(std::string_view key, GgufValueType type, const std::string& encoded_value) {
  PutString(&kv_bytes_, key);
  Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(type));
  kv_bytes_.append(encoded_value);
  ++kv_count_;
}

void GgufWriter::SetUint8(std::string_view key, uint8_t v) {
  AddKv(key, GgufValueType::kUint8, Scalar(v));
}
void GgufWriter::SetInt32(std::string_view key, int32_t v) {
  AddKv(key, GgufValueType::kInt32, Scalar(v));
}
void GgufWriter::SetUint32(std::string_view key, uint32_t v) {
  if (key == "general.alignment") alignment_ = v;
  AddKv(key, GgufValueType::kUint32, Scalar(v));
}
void GgufWriter::SetUint64(std::string_view key, uint64_t v) {
  AddKv(key, GgufValueType::kUint64, Scalar(v));
}
void GgufWriter::SetFloat32(std::string_view key, float v) {
  AddKv(key, GgufValueType::kFloat32, Scalar(v));
}
void GgufWriter::SetBool(std::string_view key, bool v) {
  AddKv(key, GgufValueType::kBool, Scalar<uint8_t>(v ? 1 : 0));
}
void GgufWriter::SetString(std::string_view key, std::string_view v) {
  std::string out;
  PutString(&out, v);
  AddKv(key, GgufValueType::kString, out);
}
void GgufWriter::SetStringArray(std::string_view key, const std::vector<std::string>& v) {
  std::string out;
  Put<uint32_t>(&out, static_cast<uint32_t>(GgufValueType::kString));
  Put<uint64_t>(&out, v.size());
  for (const std::string& s : v) PutString(&out, s);
  AddKv(key, GgufValueType::kArray, out);
}
void GgufWriter::SetFloat32Array(std::string_view key, const std::vector<float>& v) {
  AddKv(key, GgufValueType::kArray, NumericArray(GgufValueType::kFloat32, v));
}
void GgufWriter::SetInt32Array(std::string_view key, const std::vector<int32_t>& v) {
  AddKv(key, GgufValueType::kArray, NumericArray(GgufValueType::kInt32, v));
}

Status GgufWriter::AddTensor(std::string_view name, GgmlType type,
                             const std::vector<uint64_t>& dims, std::string_view data) {
  const GgmlTypeTraits traits = GgmlTypeTraitsOf(static_cast<uint32_t>(type));
  if (traits.name == nullptr) return InvalidArgumentError(std::string(name) + ": unknown type");
  if (dims.empty() || dims.size() > 4) {
    return InvalidArgumentError(std::string(name) + ": 1 to 4 dimensions");
  }
  uint64_t elements = 1;
  for (uint64_t d : dims) elements *= d;
  if (dims[0] % traits.block_size != 0) {
    return InvalidArgumentError(std::string(name) + ": dims[0] must be a multiple of " +
                                std::to_string(traits.block_size));
  }
  const uint64_t bytes = elements / traits.block_size * traits.block_bytes;
  if (data.size() != bytes) {
    return InvalidArgumentError(std::string(name) + ": expected " + std::to_string(bytes) +
                                " bytes of data, got " + std::to_string(data.size()));
  }
  tensors_.push_back({std::string(name), type, dims, std::string(data)});
  return OkStatus();
}

uint64_t GgufWriter::Alignment() const { return alignment_ == 0 ? 32 : alignment_; }

std::string GgufWriter::Serialize() const {
  const uint64_t align = Alignment();
  std::string out;
  out.append("GGUF");
  Put<uint32_t>(&out, 3);
  Put<uint64_t>(&out, tensors_.size());
  Put<uint64_t>(&out, kv_count_);
  out.append(kv_bytes_);
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(&out, t.name);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) Put<uint64_t>(&out, d);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&out, offset);
    offset += (t.data.size() + align - 1) / align * align;
  }
  out.resize((out.size() + align - 1) / align * align, '\0');
  for (const Tensor& t : tensors_) {
    out.append(t.data);
    out.resize((out.size() + align - 1) / align * align, '\0');
  }
  return out;
}

Status GgufWriter::WriteFile(const std::string& path) const {
  return WriteFileAtomically(path, Serialize());
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return UnavailableError(tmp + ": " + std::generic_category().message(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = std::generic_category().message(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return UnavailableError(tmp + ": write: " + err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return UnavailableError(tmp + ": fsync/close failed");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::generic_category().message(errno);
    ::unlink(tmp.c_str());
    return UnavailableError(path + ": rename: " + err);
  }
  return OkStatus();
}

}  // namespace agentry::engine
