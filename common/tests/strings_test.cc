#include "common/strings.h"

#include <gtest/gtest.h>

namespace agentry {
namespace {

TEST(StringsTest, TrimAsciiWhitespaceRemovesBothEndsOnly) {
  EXPECT_EQ(TrimAsciiWhitespace(" \t a b \r\n"), "a b");
  EXPECT_EQ(TrimAsciiWhitespace("x"), "x");
  EXPECT_EQ(TrimAsciiWhitespace(" \n\t "), "");
  EXPECT_EQ(TrimAsciiWhitespace(""), "");
  EXPECT_EQ(TrimAsciiWhitespace("\xc2\xa0y"), "\xc2\xa0y");  // not ASCII whitespace: kept
}

TEST(StringsTest, ParseNonNegativeIntTakesDigitsOnly) {
  EXPECT_EQ(ParseNonNegativeInt("0"), 0);
  EXPECT_EQ(ParseNonNegativeInt("007"), 7);
  EXPECT_EQ(ParseNonNegativeInt("2147483647"), 2147483647);
  for (const char* bad : {"", "+2", "-0", "-1", "2x", " 2", "2 ", "1.5", "2147483648"}) {
    EXPECT_EQ(ParseNonNegativeInt(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace agentry
