#include "common/crc32c.h"

#include <string>

#include <gtest/gtest.h>

namespace agentry {
namespace {

TEST(Crc32cTest, StandardCheckValues) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);  // the catalogue's check value for CRC-32C
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4 test vector
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
}

TEST(Crc32cTest, ContinuesAcrossPieces) {
  EXPECT_EQ(Crc32c("56789", Crc32c("1234")), Crc32c("123456789"));
}

TEST(Crc32cTest, DetectsASingleBitFlip) {
  std::string data(4096, 'a');
  const uint32_t before = Crc32c(data);
  data[1234] ^= 0x01;
  EXPECT_NE(Crc32c(data), before);
}

}  // namespace
}  // namespace agentry
