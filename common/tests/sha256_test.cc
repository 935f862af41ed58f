// SHA-256 against the FIPS 180-2 test vectors, whole and in pieces.
#include "common/sha256.h"

#include <string>

#include <gtest/gtest.h>

namespace agentry {
namespace {

TEST(Sha256Test, MatchesTheStandardVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, PiecesGiveTheDigestOfTheWholeAndFinishResets) {
  const std::string million(1000000, 'a');
  Sha256 digest;
  for (size_t i = 0; i < million.size(); i += 4099) digest.Update(million.substr(i, 4099));
  EXPECT_EQ(digest.FinishHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  digest.Update("abc");
  EXPECT_EQ(digest.FinishHex(), Sha256Hex("abc"));
}

}  // namespace
}  // namespace agentry
