#include "common/json_escape.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace agentry {
namespace {

std::string Escape(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

TEST(JsonEscapeTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(Escape("plain"), "\"plain\"");
  EXPECT_EQ(Escape("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Escape("l1\nl2\tx\r"), "\"l1\\nl2\\tx\\r\"");
  EXPECT_EQ(Escape(std::string("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(Escape(std::string("a\0b", 3)), "\"a\\u0000b\"");
}

TEST(JsonEscapeTest, KeepsValidUtf8) {
  const std::string text = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";  // é € 😀
  EXPECT_EQ(Escape(text), "\"" + text + "\"");
}

TEST(JsonEscapeTest, ReplacesInvalidUtf8SoOutputParses) {
  const char* cases[] = {
      "\xFF",              // never valid
      "\xC3",              // truncated
      "\xC0\xAF",          // overlong '/'
      "\xED\xA0\x80",      // surrogate
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\x80",              // stray continuation
  };
  for (const char* c : cases) {
    const std::string out = Escape(c);
    EXPECT_NE(out.find("\xEF\xBF\xBD"), std::string::npos) << out;
    EXPECT_TRUE(nlohmann::json::accept(out)) << out;
  }
}

TEST(JsonEscapeTest, RoundTripsThroughAJsonParser) {
  std::string all;
  for (int c = 1; c < 128; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(nlohmann::json::parse(Escape(all)).get<std::string>(), all);
}

TEST(Utf8Test, SequenceLengths) {
  EXPECT_EQ(Utf8SequenceLength("a"), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xC3\xA9"), 2u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC"), 3u);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82"), 0u);
  EXPECT_EQ(Utf8SequenceLength(""), 0u);
}

}  // namespace
}  // namespace agentry
