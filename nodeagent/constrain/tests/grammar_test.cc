// The grammar nodes and the matcher: what each node accepts, and the byte where it refuses.
#include "nodeagent/constrain/grammar.h"

#include <gtest/gtest.h>

#include "nodeagent/constrain/matcher.h"
#include "nodeagent/constrain/tests/test_support.h"

namespace agentry::constrain {
namespace {

using test_support::kAccepted;
using test_support::kIncomplete;
using test_support::RejectAt;

TEST(ConstrainGrammarTest, LiteralSequenceChoice) {
  const Grammar g = Grammar::Sequence(
      {Grammar::Literal("ab"), Grammar::Choice({Grammar::Literal("c"), Grammar::Literal("cd")}),
       Grammar::Literal("!")});
  EXPECT_EQ(RejectAt(g, "abc!"), kAccepted);
  EXPECT_EQ(RejectAt(g, "abcd!"), kAccepted);
  EXPECT_EQ(RejectAt(g, "abc"), kIncomplete);
  EXPECT_EQ(RejectAt(g, "ax"), 1);
  EXPECT_EQ(RejectAt(g, "abcdd"), 4);
  EXPECT_EQ(RejectAt(g, "abc!!"), 4);
  EXPECT_EQ(RejectAt(Grammar(), ""), kAccepted);
  EXPECT_EQ(RejectAt(Grammar(), "a"), 0);
}

TEST(ConstrainGrammarTest, AmbiguousChoicesKeepBothReadingsAlive) {
  // "aab" splits as a+ab or aa+b; both readings must survive the first two bytes.
  const Grammar a = Grammar::Choice({Grammar::Literal("a"), Grammar::Literal("aa")});
  const Grammar b = Grammar::Choice({Grammar::Literal("ab"), Grammar::Literal("b")});
  const Grammar g = Grammar::Sequence({a, b});
  Matcher m(g);
  ASSERT_TRUE(m.AdvanceAll("aa"));
  EXPECT_EQ(m.num_states(), 3u);  // a|ab at "b", aa|ab at "a", aa|b at "b"
  EXPECT_TRUE(m.Advance('b'));
  EXPECT_TRUE(m.IsComplete());
  EXPECT_FALSE(m.CanContinue());
  EXPECT_EQ(m.num_states(), 1u);  // the two readings end in the same state and merge
}

TEST(ConstrainGrammarTest, AdvanceLeavesStateUnchangedOnRejection) {
  Matcher m(Grammar::Literal("abc"));
  ASSERT_TRUE(m.Advance('a'));
  EXPECT_FALSE(m.Advance('x'));
  EXPECT_FALSE(m.AdvanceAll("bx"));  // all or nothing
  EXPECT_TRUE(m.AdvanceAll("bc"));
  EXPECT_TRUE(m.IsComplete());
}

TEST(ConstrainGrammarTest, LiteralSetMatchesEachStringOnce) {
  const Grammar g = Grammar::LiteralSet({"car", "cart", "cat", "dog", "car"});
  for (const char* s : {"car", "cart", "cat", "dog"}) EXPECT_EQ(RejectAt(g, s), kAccepted) << s;
  EXPECT_EQ(RejectAt(g, "ca"), kIncomplete);
  EXPECT_EQ(RejectAt(g, "cab"), 2);
  EXPECT_EQ(RejectAt(g, "carts"), 4);
  Matcher m(g);
  ASSERT_TRUE(m.Advance('c'));
  EXPECT_EQ(m.num_states(), 1u);  // "car", "cart", "cat" share one state for "ca"
  ASSERT_TRUE(m.AdvanceAll("ar"));
  EXPECT_TRUE(m.IsComplete());
  EXPECT_TRUE(m.CanContinue());
}

TEST(ConstrainGrammarTest, RepeatCountsAndSeparators) {
  const Grammar g = Grammar::Repeat(Grammar::Literal("x"), Grammar::Literal(","), 2, 3);
  EXPECT_EQ(RejectAt(g, "x"), kIncomplete);
  EXPECT_EQ(RejectAt(g, "x,x"), kAccepted);
  EXPECT_EQ(RejectAt(g, "x,x,x"), kAccepted);
  EXPECT_EQ(RejectAt(g, "x,x,x,"), 5);
  EXPECT_EQ(RejectAt(g, "xx"), 1);
  const Grammar any = Grammar::Repeat(Grammar::Literal("ab"), Grammar(), 0, kUnbounded);
  EXPECT_EQ(RejectAt(any, ""), kAccepted);
  EXPECT_EQ(RejectAt(any, "ababababab"), kAccepted);
  Matcher m(any);
  ASSERT_TRUE(m.AdvanceAll("abababab"));
  EXPECT_EQ(m.num_states(), 2u);  // the count saturates: "done" or "another"
}

TEST(ConstrainGrammarTest, JsonStringPlainTextAndEscapes) {
  const Grammar g = Grammar::JsonString();
  EXPECT_EQ(RejectAt(g, R"("")"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"("hello world")"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"("a\"b\\c\/d\be\ff\ng\rh\ti")"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"("\u00e9\u20AC")"), kAccepted);
  EXPECT_EQ(RejectAt(g, "\"\x7f\""), kAccepted);  // DEL needs no escape in JSON
  EXPECT_EQ(RejectAt(g, "hello"), 0);             // no opening quote
  EXPECT_EQ(RejectAt(g, R"("a\x")"), 3);          // unknown escape
  EXPECT_EQ(RejectAt(g, R"("\u12g4")"), 5);
  EXPECT_EQ(RejectAt(g, "\"a\nb\""), 2);  // raw control characters must be escaped
  EXPECT_EQ(RejectAt(g, "\"a\tb\""), 2);
  EXPECT_EQ(RejectAt(g, R"("ab)"), kIncomplete);
  EXPECT_EQ(RejectAt(g, R"("ab"x)"), 4);
}

TEST(ConstrainGrammarTest, JsonStringSurrogateEscapesMustPair) {
  const Grammar g = Grammar::JsonString();
  EXPECT_EQ(RejectAt(g, R"("\ud83d\ude00")"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"("\uD83D\uDE00")"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"("\ud83d")"), 7);  // a high surrogate alone
  EXPECT_EQ(RejectAt(g, R"("\ud83dx")"), 7);
  EXPECT_EQ(RejectAt(g, R"("\ud83d\n")"), 8);      // must be \u
  EXPECT_EQ(RejectAt(g, R"("\ud83d\u0041")"), 9);  // not a low surrogate
  EXPECT_EQ(RejectAt(g, R"("\ud83d\ud83d")"), 10);
  EXPECT_EQ(RejectAt(g, R"("\ude00")"), 4);                // a low surrogate first
  EXPECT_EQ(RejectAt(g, R"("\ud7ff\ue000")"), kAccepted);  // just outside the range
}

TEST(ConstrainGrammarTest, JsonStringEnforcesWellFormedUtf8ByteByByte) {
  const Grammar g = Grammar::JsonString();
  EXPECT_EQ(RejectAt(g, "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""), kAccepted);  // é € 😀
  EXPECT_EQ(RejectAt(g, "\"\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF\""), kAccepted);
  EXPECT_EQ(RejectAt(g, "\"\x80\""), 1);              // a lone continuation byte
  EXPECT_EQ(RejectAt(g, "\"\xC0\xAF\""), 1);          // overlong lead
  EXPECT_EQ(RejectAt(g, "\"\xC3\""), 2);              // a lead byte, then the quote
  EXPECT_EQ(RejectAt(g, "\"\xE0\x80\x80\""), 2);      // overlong three-byte form
  EXPECT_EQ(RejectAt(g, "\"\xED\xA0\x80\""), 2);      // an encoded surrogate
  EXPECT_EQ(RejectAt(g, "\"\xF0\x8F\xBF\xBF\""), 2);  // overlong four-byte form
  EXPECT_EQ(RejectAt(g, "\"\xF4\x90\x80\x80\""), 2);  // past U+10FFFF
  EXPECT_EQ(RejectAt(g, "\"\xF5\x80\""), 1);
  EXPECT_EQ(RejectAt(g, "\"\xE2\x82\""), 3);  // cut short
}

TEST(ConstrainGrammarTest, JsonStringLengthInCodePoints) {
  const Grammar g = Grammar::JsonString(2, 3);
  EXPECT_EQ(RejectAt(g, R"("a")"), 2);  // too short to close
  EXPECT_EQ(RejectAt(g, R"("ab")"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"("abc")"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"("abcd")"), 4);
  EXPECT_EQ(RejectAt(g, "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""), kAccepted);  // three
  EXPECT_EQ(RejectAt(g, R"("\n\ud83d\ude00\u0041")"), kAccepted);                 // a pair is one
  EXPECT_EQ(RejectAt(g, R"("\n\ud83d\ude00\u0041x")"), 21);
  EXPECT_EQ(RejectAt(Grammar::JsonString(0, 0), R"("")"), kAccepted);
  EXPECT_EQ(RejectAt(Grammar::JsonString(0, 0), R"("a")"), 1);
}

TEST(ConstrainGrammarTest, JsonInteger) {
  const Grammar g = Grammar::JsonInteger();
  for (const char* s : {"0", "-0", "7", "-42", "1234567890123456", "-9999999999999999"}) {
    EXPECT_EQ(RejectAt(g, s), kAccepted) << s;
  }
  EXPECT_EQ(RejectAt(g, "01"), 1);
  EXPECT_EQ(RejectAt(g, "-"), kIncomplete);
  EXPECT_EQ(RejectAt(g, "--1"), 1);
  EXPECT_EQ(RejectAt(g, "1.5"), 1);
  EXPECT_EQ(RejectAt(g, "+1"), 0);
  EXPECT_EQ(RejectAt(g, "12345678901234567"), 16);  // the 17th digit
  Matcher m(g);
  ASSERT_TRUE(m.AdvanceAll("1234567890123456"));
  EXPECT_FALSE(m.CanContinue());  // so a generation always ends
}

TEST(ConstrainGrammarTest, JsonNumber) {
  const Grammar g = Grammar::JsonNumber();
  for (const char* s : {"0", "-0.5", "3.25", "1e5", "1E+5", "2.5e-07", "0e0", "1e290",
                        "123456789.000000000000000000000001", "1e-0", "1.5e+300", "9e307",
                        "1234567890123456e292", "0.5e307", "5e-324", "1e-999"}) {
    EXPECT_EQ(RejectAt(g, s), kAccepted) << s;
  }
  EXPECT_EQ(RejectAt(g, "1."), kIncomplete);
  EXPECT_EQ(RejectAt(g, ".5"), 0);
  EXPECT_EQ(RejectAt(g, "00"), 1);
  EXPECT_EQ(RejectAt(g, "1.2.3"), 3);
  EXPECT_EQ(RejectAt(g, "1e"), kIncomplete);
  EXPECT_EQ(RejectAt(g, "1e+"), kIncomplete);
  EXPECT_EQ(RejectAt(g, "1e308"), 4);   // 10^308 would be past the largest double's decade
  EXPECT_EQ(RejectAt(g, "12e307"), 5);  // integer digits + exponent <= 308
  EXPECT_EQ(RejectAt(g, "1.99e307"), kAccepted);
  EXPECT_EQ(RejectAt(g, "1e0001"), 5);  // at most three exponent digits
  EXPECT_EQ(RejectAt(g, "1e-1000"), 6);
  Matcher big(g);
  ASSERT_TRUE(big.AdvanceAll("1e307"));
  EXPECT_FALSE(big.CanContinue());                            // so a generation always ends
  EXPECT_EQ(RejectAt(g, "1.0000000000000000000000001"), 26);  // 25th fraction digit
  EXPECT_EQ(RejectAt(g, "1e5.0"), 3);
}

TEST(ConstrainGrammarTest, BooleanNullAndSpaces) {
  EXPECT_EQ(RejectAt(Grammar::JsonBoolean(), "true"), kAccepted);
  EXPECT_EQ(RejectAt(Grammar::JsonBoolean(), "false"), kAccepted);
  EXPECT_EQ(RejectAt(Grammar::JsonBoolean(), "tru"), kIncomplete);
  EXPECT_EQ(RejectAt(Grammar::JsonBoolean(), "True"), 0);
  EXPECT_EQ(RejectAt(Grammar::JsonNull(), "null"), kAccepted);
  EXPECT_EQ(RejectAt(Grammar::JsonNull(), "nul!"), 3);
}

TEST(ConstrainGrammarTest, JsonObjectFixedOrderRequiredAndOptional) {
  const Grammar g = Grammar::JsonObject({{"a", Grammar::JsonInteger(), false},
                                         {"b", Grammar::JsonBoolean(), true},
                                         {"c", Grammar::JsonNull(), false}});
  EXPECT_EQ(RejectAt(g, R"({"b":true})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"a":1,"b":false})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"a":1,"b":true,"c":null})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"b":true,"c":null})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"a": 1, "b": true})"), kAccepted);  // one space after : and ,
  EXPECT_EQ(RejectAt(g, R"({})"), 1);                           // b is required
  EXPECT_EQ(RejectAt(g, R"({"a":1})"), 6);
  EXPECT_EQ(RejectAt(g, R"({"b":true,"a":1})"), 11);  // out of order
  EXPECT_EQ(RejectAt(g, R"({"b":true,"d":1})"), 11);  // not a property
  EXPECT_EQ(RejectAt(g, R"({"a":1,"a":2})"), 8);      // at most once
  EXPECT_EQ(RejectAt(g, R"({ "b":true})"), 1);        // no space after {
  EXPECT_EQ(RejectAt(g, R"({"b" :true})"), 4);        // nor before :
  EXPECT_EQ(RejectAt(g, R"({"b":  true})"), 6);       // at most one space
  EXPECT_EQ(RejectAt(g, R"({"b":true })"), 9);
  EXPECT_EQ(RejectAt(g, R"({"b":true,})"), 10);
  EXPECT_EQ(RejectAt(Grammar::JsonObject({}), "{}"), kAccepted);
  EXPECT_EQ(RejectAt(Grammar::JsonObject({}), "{\""), 1);
}

TEST(ConstrainGrammarTest, JsonObjectKeysAreEscapedAsNlohmannWritesThem) {
  const Grammar g = Grammar::JsonObject({{"a\"b\n", Grammar::JsonNull(), true}});
  EXPECT_EQ(RejectAt(g, "{\"a\\\"b\\n\":null}"), kAccepted);
  // Keys that share a prefix are told apart by the closing quote.
  const Grammar p = Grammar::JsonObject(
      {{"id", Grammar::JsonInteger(), false}, {"idx", Grammar::JsonInteger(), false}});
  EXPECT_EQ(RejectAt(p, R"({"id":1,"idx":2})"), kAccepted);
  EXPECT_EQ(RejectAt(p, R"({"idx":2})"), kAccepted);
  EXPECT_EQ(RejectAt(p, R"({"idx":2,"id":1})"), 8);
}

TEST(ConstrainGrammarTest, JsonArrayBounds) {
  const Grammar g = Grammar::JsonArray(Grammar::JsonInteger(), 1, 2);
  EXPECT_EQ(RejectAt(g, "[1]"), kAccepted);
  EXPECT_EQ(RejectAt(g, "[1, 2]"), kAccepted);
  EXPECT_EQ(RejectAt(g, "[]"), 1);
  EXPECT_EQ(RejectAt(g, "[1,2,3]"), 4);
  EXPECT_EQ(RejectAt(g, "[1,]"), 3);
  EXPECT_EQ(RejectAt(g, "[ 1]"), 1);
  EXPECT_EQ(RejectAt(Grammar::JsonArray(Grammar::JsonNull(), 0, 0), "[]"), kAccepted);
  EXPECT_EQ(RejectAt(Grammar::JsonArray(Grammar::JsonNull(), 0, 0), "[n"), 1);
  EXPECT_EQ(RejectAt(Grammar::JsonArray(Grammar::JsonNull(), 0, kUnbounded), "[null,null]"),
            kAccepted);
}

TEST(ConstrainGrammarTest, JsonAnyNestsToItsDepth) {
  const Grammar g = Grammar::JsonAny(2);
  for (const char* s : {"1", "-2.5e3", "\"x\"", "true", "null", "[]", "{}", "[[1],{\"a\":1}]",
                        "{\"k\": {\"j\": null}, \"k\": 1}"}) {
    EXPECT_EQ(RejectAt(g, s), kAccepted) << s;
  }
  EXPECT_EQ(RejectAt(g, "[[["), 2);  // a third level
  EXPECT_EQ(RejectAt(g, "[[1],{\"a\":[]}]"), 10);
  EXPECT_EQ(RejectAt(g, "{\"a\":{\"b\":{"), 10);
  EXPECT_EQ(RejectAt(g, "{a:1}"), 1);
  EXPECT_EQ(RejectAt(Grammar::JsonAny(0), "["), 0);
}

TEST(ConstrainGrammarTest, MatchersShareTheGrammarAndOutliveIt) {
  Matcher copy = [] {
    const Grammar g = Grammar::Sequence({Grammar::Literal("x"), Grammar::JsonInteger()});
    Matcher m(g);
    EXPECT_TRUE(m.Advance('x'));
    return m;
  }();  // the Grammar handle is gone; the matcher keeps its nodes alive
  Matcher other = copy;
  EXPECT_TRUE(copy.AdvanceAll("12"));
  EXPECT_TRUE(copy.IsComplete());
  EXPECT_FALSE(other.IsComplete());  // copies are independent
  EXPECT_TRUE(other.Advance('7'));
}

}  // namespace
}  // namespace agentry::constrain
