// common/sha256.h — SHA-256 (OpenSSL), as lower-case hex.
//
//   std::string h = Sha256Hex("abc");  // "ba7816bf..."
//   Sha256 digest;                     // or incrementally, for data that arrives in pieces
//   digest.Update(piece);
//   std::string h2 = digest.FinishHex();
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace agentry {

std::string Sha256Hex(std::string_view data);

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // The digest of everything updated so far; the object is then reset for new data.
  std::string FinishHex();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

}  // namespace agentry
