// common/byte_codec.h — the pieces of Agentry's own binary formats (the node daemon's and the
// runtime's session snapshots): little-endian fixed-width integers and u32-length-prefixed
// strings, written to a std::string and read back with errors that name the field.
//
//   std::string out;
//   PutLe<uint32_t>(&out, 7);
//   PutString(&out, "triage");
//   ByteReader in(out, "session snapshot");
//   StatusOr<uint32_t> n = in.Get<uint32_t>("version");  // DATA_LOSS naming it if truncated
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/status.h"

namespace agentry {

// x86-64 and aarch64, the only targets, are little-endian: the bytes are the value's.
static_assert(sizeof(void*) == 8, "a 64-bit little-endian target");

template <typename T>
void PutLe(std::string* out, T v) {
  static_assert(std::is_integral_v<T>);
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

inline void PutString(std::string* out, std::string_view s) {
  PutLe<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class ByteReader {
 public:
  // `format` names the data in errors ("session snapshot").
  ByteReader(std::string_view bytes, std::string format)
      : bytes_(bytes), format_(std::move(format)) {}

  template <typename T>
  StatusOr<T> Get(const char* field) {
    static_assert(std::is_integral_v<T>);
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
  // What is left, consumed.
  std::string_view Rest() {
    std::string_view rest = bytes_.substr(at_);
    at_ = bytes_.size();
    return rest;
  }
  size_t at() const { return at_; }

 private:
  Status Truncated(const char* field) const {
    return DataLossError(format_ + ": truncated at " + std::string(field) + " (offset " +
                         std::to_string(at_) + " of " + std::to_string(bytes_.size()) + ")");
  }
  std::string_view bytes_;
  std::string format_;
  size_t at_ = 0;
};

}  // namespace agentry
