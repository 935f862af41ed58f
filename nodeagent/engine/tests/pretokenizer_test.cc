// The pre-tokenizers' word splits on cases that tell the families' regexes apart. (Ids for
// real vocabularies are checked against llama.cpp in bpe_tokenizer_test.cc.)
#include "nodeagent/engine/pretokenizer.h"

#include <gtest/gtest.h>

#include "common/unicode/unicode.h"

namespace agentry::engine {
namespace {

std::vector<std::string> Words(PreTokenizer pre, std::string_view text) {
  const std::vector<uint32_t> cps = unicode::DecodeUtf8Lossy(text);
  std::vector<std::string> words;
  size_t start = 0;
  for (size_t n : SplitWords(pre, cps)) {
    std::string w;
    for (size_t i = start; i < start + n; ++i) unicode::AppendUtf8(cps[i], &w);
    words.push_back(w);
    start += n;
  }
  EXPECT_EQ(start, cps.size()) << "the words must cover the text";
  return words;
}

using W = std::vector<std::string>;

TEST(PreTokenizerTest, Llama3GroupsDigitsByThreeQwen2SplitsEachDigit) {
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "x 1234567"), (W{"x", " ", "123", "456", "7"}));
  EXPECT_EQ(Words(PreTokenizer::kQwen2, "x 123"), (W{"x", " ", "1", "2", "3"}));
  EXPECT_EQ(Words(PreTokenizer::kGpt2, "x 1234567"), (W{"x", " 1234567"}));
  EXPECT_EQ(Words(PreTokenizer::kSmolLM, "x 123"), (W{"x", " ", "1", "2", "3"}));
}

TEST(PreTokenizerTest, ContractionsIgnoreCaseOnlyInLlama3Style) {
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "I'LL we're"), (W{"I", "'LL", " we", "'re"}));
  EXPECT_EQ(Words(PreTokenizer::kGpt2, "I'LL we're"), (W{"I", "'", "LL", " we", "'re"}));
}

TEST(PreTokenizerTest, LettersTakeOneLeadingNonLetterInLlama3Style) {
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "(hello) \tworld"), (W{"(hello", ")", " ", "\tworld"}));
  EXPECT_EQ(Words(PreTokenizer::kGpt2, "(hello) world"), (W{"(", "hello", ")", " world"}));
}

TEST(PreTokenizerTest, WhitespaceRunsGiveTheirLastSpaceToTheNextWord) {
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "a   b"), (W{"a", "  ", " b"}));
  EXPECT_EQ(Words(PreTokenizer::kGpt2, "a   b"), (W{"a", "  ", " b"}));
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "a  "), (W{"a", "  "}));  // at the end: all of it
}

TEST(PreTokenizerTest, NewlinesEndWhitespaceRunsAndFollowPunctuation) {
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "a \n\n b"), (W{"a", " \n\n", " b"}));
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "x.\n\ny"), (W{"x", ".\n\n", "y"}));
  EXPECT_EQ(Words(PreTokenizer::kGpt2, "x.\n\ny"), (W{"x", ".", "\n", "\n", "y"}));
}

TEST(PreTokenizerTest, NonAsciiClassesCount) {
  // Cyrillic letters, an ideographic space (whitespace), Arabic-Indic digits (numbers).
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "мир\u3000\u0661\u0662"),
            (W{"мир", "\u3000", "\u0661\u0662"}));
  EXPECT_EQ(Words(PreTokenizer::kLlama3, "🦙.cpp"), (W{"🦙.", "cpp"}));
}

TEST(PreTokenizerTest, NamesMapToFamilies) {
  EXPECT_EQ(*PreTokenizerFromName("llama-bpe"), PreTokenizer::kLlama3);
  EXPECT_EQ(*PreTokenizerFromName("qwen2"), PreTokenizer::kQwen2);
  EXPECT_EQ(*PreTokenizerFromName("smollm"), PreTokenizer::kSmolLM);
  EXPECT_EQ(PreTokenizerFromName("jais").status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace agentry::engine
