#include "common/sha256.h"

#include <cstdio>
#include <cstdlib>

#include <openssl/evp.h>

namespace agentry {

struct Sha256::Context {
  EVP_MD_CTX* ctx = nullptr;
};

namespace {

void Check(int ok, const char* what) {
  // OpenSSL fails these only when it cannot allocate a few bytes: nothing sensible remains.
  if (ok != 1) {
    std::fprintf(stderr, "agentry: OpenSSL %s failed\n", what);
    std::abort();
  }
}

}  // namespace

Sha256::Sha256() : context_(std::make_unique<Context>()) {
  context_->ctx = EVP_MD_CTX_new();
  Check(context_->ctx != nullptr ? 1 : 0, "EVP_MD_CTX_new");
  Check(EVP_DigestInit_ex(context_->ctx, EVP_sha256(), nullptr), "EVP_DigestInit_ex");
}

Sha256::~Sha256() { EVP_MD_CTX_free(context_->ctx); }

void Sha256::Update(std::string_view data) {
  Check(EVP_DigestUpdate(context_->ctx, data.data(), data.size()), "EVP_DigestUpdate");
}

std::string Sha256::FinishHex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  Check(EVP_DigestFinal_ex(context_->ctx, digest, &size), "EVP_DigestFinal_ex");
  Check(EVP_DigestInit_ex(context_->ctx, EVP_sha256(), nullptr), "EVP_DigestInit_ex");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(size_t{size} * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 15];
  }
  return hex;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 digest;
  digest.Update(data);
  return digest.FinishHex();
}

}  // namespace agentry
