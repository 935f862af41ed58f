#include "common/unicode/unicode.h"

#include <gtest/gtest.h>

namespace agentry::unicode {
namespace {

TEST(UnicodeTest, CategoryClassesOfKnownCodePoints) {
  EXPECT_EQ(Flags('a'), kLetter);
  EXPECT_EQ(Flags(0x00E9), kLetter);  // é
  EXPECT_EQ(Flags(0x4E2D), kLetter);  // 中 (in a First/Last range of UnicodeData.txt)
  EXPECT_EQ(Flags('7'), kNumber);
  EXPECT_EQ(Flags(0x0663), kNumber);  // ARABIC-INDIC DIGIT THREE
  EXPECT_EQ(Flags(0x00BD), kNumber);  // ½ (No)
  EXPECT_EQ(Flags(0x0301), kMark);    // COMBINING ACUTE ACCENT
  EXPECT_EQ(Flags('!'), kPunctuation);
  EXPECT_EQ(Flags(0x20AC), kSymbol);   // €
  EXPECT_EQ(Flags(0x1F999), kSymbol);  // 🦙
  EXPECT_EQ(Flags(' '), kSeparator | kWhitespace);
  EXPECT_EQ(Flags(0x3000), kSeparator | kWhitespace);  // IDEOGRAPHIC SPACE
  EXPECT_EQ(Flags('\n'), kControl | kWhitespace);
  EXPECT_EQ(Flags(0x0085), kControl | kWhitespace);  // NEXT LINE
  EXPECT_EQ(Flags(0x200B), kControl);                // ZERO WIDTH SPACE is Cf, not White_Space
  EXPECT_EQ(Flags(0xE000), kControl);                // private use
  EXPECT_EQ(Flags(0x0378), kUnassigned);
  EXPECT_EQ(Flags(0x10FFFF), kUnassigned);
  EXPECT_EQ(Flags(0x110000), kUnassigned);
}

TEST(UnicodeTest, EveryCodePointHasExactlyOneClass) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const uint16_t classes = Flags(cp) & static_cast<uint16_t>(~kWhitespace);
    ASSERT_EQ(classes & (classes - 1), 0) << std::hex << cp;
    ASSERT_NE(classes, 0) << std::hex << cp;
  }
}

TEST(UnicodeTest, Utf8RoundTripsEveryScalarValue) {
  std::string s;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    s.clear();
    AppendUtf8(cp, &s);
    ASSERT_TRUE(CheckUtf8(s).ok()) << std::hex << cp;
    size_t offset = 0;
    ASSERT_EQ(DecodeUtf8Lossy(s, &offset), cp);
    ASSERT_EQ(offset, s.size());
  }
}

TEST(UnicodeTest, LossyDecodingReplacesOneBadByteAtATime) {
  // A stray continuation byte, a truncated 3-byte sequence, a lead byte above 0xF7.
  const std::vector<uint32_t> cps = DecodeUtf8Lossy(
      "a\x80"
      "b\xE2\x82"
      "c\xFF");
  EXPECT_EQ(cps, (std::vector<uint32_t>{'a', kReplacementCharacter, 'b', kReplacementCharacter,
                                        kReplacementCharacter, 'c', kReplacementCharacter}));
}

TEST(UnicodeTest, CheckUtf8NamesTheFirstBadByte) {
  EXPECT_TRUE(CheckUtf8("plain, Привет, 🦙").ok());
  const Status truncated = CheckUtf8("abc\xE2\x82");
  EXPECT_EQ(truncated.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(truncated.message().find("byte 3"), std::string::npos) << truncated.message();
  EXPECT_FALSE(CheckUtf8("\xC0\xAF").ok());          // overlong '/'
  EXPECT_FALSE(CheckUtf8("\xED\xA0\x80").ok());      // surrogate U+D800
  EXPECT_FALSE(CheckUtf8("\xF4\x90\x80\x80").ok());  // above U+10FFFF
}

}  // namespace
}  // namespace agentry::unicode
