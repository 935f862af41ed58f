// TokenMasker along tool calls (nodeagent/constrain under runtime/prompt/tool_call_grammar.h),
// over a small synthetic vocabulary: the mask equals a token-by-token check,
// mask-guided random generation always yields a valid tool call, and Accept refuses what the
// mask refuses. ReplyConstraint: a reply that opens the tag is always a valid call; one that
// does not is never masked.
#include <cstdio>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "nodeagent/constrain/reply_constraint.h"
#include "nodeagent/constrain/tests/test_support.h"
#include "nodeagent/constrain/token_mask.h"
#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/gguf_writer.h"
#include "runtime/prompt/tool_call_grammar.h"

namespace agentry::runtime {
namespace {

using constrain::Grammar;
using constrain::Matcher;
using constrain::ReplyConstraint;
using constrain::TokenMasker;
using nlohmann::json;

// A SentencePiece vocabulary: control tokens, all 256 byte tokens, the user-defined tool-call
// tags, and pieces that cut JSON in the awkward places real vocabularies do (quotes glued to
// punctuation, partial keys, a space marker, multi-byte characters).
engine::Tokenizer SyntheticTokenizer() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<|im_end|>"};
  std::vector<int32_t> types = {2, 3, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens.emplace_back(name);
    types.push_back(6);
  }
  tokens.emplace_back("<tool_call>");
  types.push_back(4);
  tokens.emplace_back("</tool_call>");
  types.push_back(4);
  const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's space
  // clang-format off
  std::vector<std::string> normal = {
      "{\"", "{\"name\":\"", "name", "\":", "\":\"", "\"", "\",", "\",\"", "arguments", "\":{",
      "\"arguments\":{", "}", "}}", "}}</", "</", "tool", "_call", ">", "get", "_ticket",
      "search", "id", "query", "limit", "tags", "note", "12", "0", "7", "-", ".", "e", "true",
      "false", "null", "nul", "tr", "ue", "\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC", "\\n", "\\u",
      "00", "e9", "\"}", "\"]", "[", "]", "[\"", ",", "ab", "abc", "\\\"", "\\", "\"}}", "]}}",
      "\"},", "low", "high", "ping", "<", ">Sure", "<tool"};
  // clang-format on
  for (const char* glued : {"", "the", "is", "\""}) normal.push_back(space + glued);
  normal.push_back("," + space);
  normal.push_back(":" + space);
  for (const std::string& t : normal) {
    tokens.push_back(t);
    types.push_back(1);
  }
  engine::GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  w.SetUint32("tokenizer.ggml.bos_token_id", 1);
  w.SetUint32("tokenizer.ggml.eos_token_id", 2);
  const std::string bytes = w.Serialize();
  StatusOr<std::unique_ptr<engine::GgufFile>> f = engine::GgufFile::FromBuffer(bytes, "vocab");
  EXPECT_TRUE(f.ok()) << f.status().message();
  StatusOr<engine::Tokenizer> t = engine::Tokenizer::FromGguf(**f);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return std::move(t).value();
}

std::vector<ToolDecl> Tools() {
  return {
      {"get_ticket", "", json::parse(R"({"type": "object", "properties": {"id": {"type": "integer"},
           "note": {"type": "string", "maxLength": 20}}, "required": ["id"]})"),
       false},
      {"search", "", json::parse(R"({"type": "object", "properties": {"query": {"type": "string"},
           "limit": {"type": "integer"}, "tags": {"type": "array",
           "items": {"enum": ["low", "high"]}, "maxItems": 2}}, "required": ["query"]})"),
       false},
      {"ping", "", nullptr, false},
  };
}

// What the mask must be, one token at a time.
std::vector<uint8_t> BruteForce(const engine::Tokenizer& tok, const Matcher& m) {
  std::vector<uint8_t> want(tok.n_vocab());
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (tok.IsEndOfGeneration(id)) {
      want[id] = m.IsComplete();
      continue;
    }
    const std::string piece = tok.Piece(id);
    Matcher copy = m;
    want[id] = !piece.empty() && copy.AdvanceAll(piece);
  }
  return want;
}

TEST(ConstrainTokenMaskTest, MaskEqualsATokenByTokenCheckAlongValidCalls) {
  const engine::Tokenizer tok = SyntheticTokenizer();
  const TokenMasker masker(tok);
  StatusOr<Grammar> g = ToolCallGrammar(Tools());
  ASSERT_TRUE(g.ok()) << g.status().message();
  int states = 0;
  for (const std::string& call :
       {RenderToolCall("get_ticket", json{{"id", -120}, {"note", "\xC3\xA9t\xC3\xA9 \"x\"\n"}}),
        RenderToolCall("search", json{{"query", "the"}, {"limit", 7}, {"tags", {"low", "high"}}}),
        RenderToolCall("ping", json::object()),
        RenderToolCall("get_ticket", json{{"id", 0}, {"note", "nineteen characters\xC3\xA9"}}),
        std::string("<tool_call>{\"name\": \"search\", \"arguments\": {\"query\": \"\\u00e9\"}}"
                    "</tool_call>")}) {
    Matcher m(*g);
    const std::string body = call.substr(kToolCallOpen.size());
    for (size_t i = 0; i <= body.size(); ++i) {
      std::vector<uint8_t> allowed(tok.n_vocab(), 1);
      masker.Mask(m, &allowed);
      ASSERT_EQ(allowed, BruteForce(tok, m)) << "after \"" << body.substr(0, i) << "\"";
      ++states;
      if (i < body.size()) {
        ASSERT_TRUE(m.Advance(static_cast<unsigned char>(body[i])));
      }
    }
    EXPECT_TRUE(m.IsComplete());
  }
  EXPECT_GT(states, 200);
}

TEST(ConstrainTokenMaskTest, EndOfGenerationOnlyWhenCompleteControlTokensNever) {
  const engine::Tokenizer tok = SyntheticTokenizer();
  const TokenMasker masker(tok);
  Matcher m(Grammar::Literal("ab"));
  std::vector<uint8_t> allowed(tok.n_vocab() + 3, 1);  // padded like a model's output rows
  allowed[tok.Find("ab")] = 0;                         // a caller's own mask is kept
  masker.Mask(m, &allowed);
  int open = 0;
  for (int32_t id = 0; id < static_cast<int32_t>(allowed.size()); ++id) open += allowed[id];
  EXPECT_EQ(open, 1);  // only the byte token for 'a'
  EXPECT_EQ(allowed[tok.Find("<0x61>")], 1);
  ASSERT_TRUE(m.AdvanceAll("ab"));
  allowed.assign(tok.n_vocab() + 3, 1);
  masker.Mask(m, &allowed);
  for (int32_t id = 0; id < static_cast<int32_t>(allowed.size()); ++id) {
    const bool eog = id < tok.n_vocab() && tok.IsEndOfGeneration(id);
    EXPECT_EQ(allowed[id], eog ? 1 : 0) << id;
  }
  EXPECT_EQ(allowed[2], 1);  // </s>
  EXPECT_EQ(allowed[3], 1);  // <|im_end|>
  EXPECT_EQ(allowed[1], 0);  // <s>: a control token that does not end anything
}

TEST(ConstrainTokenMaskTest, AcceptRefusesWhatTheMaskRefuses) {
  const engine::Tokenizer tok = SyntheticTokenizer();
  const TokenMasker masker(tok);
  Matcher m(Grammar::Sequence({Grammar::Literal("{"), Grammar::JsonInteger()}));
  EXPECT_EQ(masker.Accept(&m, 2).code(), StatusCode::kFailedPrecondition);  // not complete
  EXPECT_EQ(masker.Accept(&m, 1).code(), StatusCode::kFailedPrecondition);  // control
  EXPECT_EQ(masker.Accept(&m, -1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(masker.Accept(&m, tok.n_vocab()).code(), StatusCode::kInvalidArgument);
  const Status refused = masker.Accept(&m, tok.Find("{\"name\":\""));
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("cannot come next"), std::string::npos) << refused.message();
  ASSERT_TRUE(masker.Accept(&m, tok.Find("{\"")).code() == StatusCode::kFailedPrecondition);
  ASSERT_TRUE(masker.Accept(&m, tok.Find("<0x7B>")).ok());  // '{', unchanged before
  ASSERT_TRUE(masker.Accept(&m, tok.Find("12")).ok());
  ASSERT_TRUE(masker.Accept(&m, tok.Find("7")).ok());
  EXPECT_TRUE(masker.Accept(&m, tok.Find("</s>")).ok());  // complete now
  EXPECT_TRUE(m.IsComplete());
}

// Mask-guided generation with the engine's own sampler and random logits: every run ends in
// a tool call that ParseToolCall reads and whose arguments satisfy the chosen tool's schema.
TEST(ConstrainTokenMaskTest, MaskGuidedSamplingAlwaysYieldsValidToolCalls) {
  const engine::Tokenizer tok = SyntheticTokenizer();
  const TokenMasker masker(tok);
  const std::vector<ToolDecl> tools = Tools();
  StatusOr<Grammar> g = ToolCallGrammar(tools);
  ASSERT_TRUE(g.ok()) << g.status().message();
  std::mt19937_64 rng(11);
  std::set<std::string> names;
  for (int run = 0; run < 300; ++run) {
    StatusOr<engine::Sampler> sampler =
        engine::Sampler::Create({.temperature = 1.0f,
                                 .top_k = 0,
                                 .top_p = 1.0f,
                                 .min_p = 0.0f,
                                 .seed = static_cast<uint64_t>(run)});
    ASSERT_TRUE(sampler.ok());
    Matcher m(*g);
    sampler->SetMask(masker.MaskFor(&m));
    std::string text;
    std::vector<float> logits(tok.n_vocab());
    bool ended = false;
    for (int step = 0; step < 5000 && !ended; ++step) {
      for (float& l : logits) l = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
      StatusOr<int32_t> id = sampler->Sample(logits.data(), tok.n_vocab());
      ASSERT_TRUE(id.ok()) << id.status().message() << " after " << text;
      ASSERT_TRUE(masker.Accept(&m, *id).ok()) << *id << " after " << text;
      ended = tok.IsEndOfGeneration(*id);
      if (!ended) text += tok.Piece(*id);
    }
    ASSERT_TRUE(ended) << "run " << run << " did not end: " << text;
    StatusOr<ToolCall> call = ParseToolCall(std::string(kToolCallOpen) + text);
    ASSERT_TRUE(call.ok()) << call.status().message() << " in " << text;
    const ToolDecl* tool = nullptr;
    for (const ToolDecl& t : tools) tool = t.name == call->name ? &t : tool;
    ASSERT_NE(tool, nullptr) << text;
    names.insert(tool->name);
    const json schema = tool->parameters.is_null()
                            ? json{{"type", "object"}, {"properties", json::object()}}
                            : tool->parameters;
    std::string why;
    EXPECT_TRUE(constrain::test_support::Satisfies(call->arguments, schema, &why))
        << why << " in " << text;
  }
  EXPECT_EQ(names.size(), tools.size());
}

// A reply's first tokens come from a script (a tag written whole, in pieces, after
// whitespace, or plain text); the rest are drawn with random logits under the constraint's
// mask. A reply that opened the tag always ends as a whole call that parses and satisfies its
// tool's schema; any other reply is never masked.
TEST(ReplyConstraintTest, OnlyAReplyThatOpensTheTagIsConstrainedAndItIsAlwaysAValidCall) {
  const engine::Tokenizer tok = SyntheticTokenizer();
  const TokenMasker masker(tok);
  const std::vector<ToolDecl> tools = Tools();
  StatusOr<Grammar> call = ToolCallGrammar(tools);
  ASSERT_TRUE(call.ok()) << call.status().message();
  const auto id = [&](const std::string& piece) {
    for (int32_t i = 0; i < tok.n_vocab(); ++i) {
      if (tok.Piece(i) == piece && !tok.IsEndOfGeneration(i)) return i;
    }
    ADD_FAILURE() << "no token " << piece;
    return int32_t{0};
  };
  const std::vector<std::vector<std::string>> openings = {{"<tool_call>"},
                                                          {"<tool", "_call", ">"},
                                                          {" ", "<tool_call>"},
                                                          {"<", "tool", "_call", ">"},
                                                          {"ab"},
                                                          {"<", "ab"},
                                                          {"<tool", ">"},
                                                          {"\n", "<tool_call>"}};
  std::mt19937_64 rng(5);
  int calls = 0;
  for (int run = 0; run < 200; ++run) {
    const std::vector<std::string>& opening = openings[run % openings.size()];
    StatusOr<engine::Sampler> sampler = engine::Sampler::Create(
        {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = static_cast<uint64_t>(run)});
    ASSERT_TRUE(sampler.ok());
    ReplyConstraint c = ReplyConstraint::ToolCall(std::string(kToolCallOpen), *call);
    sampler->SetMask([&](std::vector<uint8_t>* allowed) { c.Mask(masker, allowed); });
    std::string text;
    std::vector<float> logits(tok.n_vocab());
    bool masked = false;
    for (int step = 0; step < 5000 && !c.Finished(); ++step) {
      int32_t next = 0;
      if (static_cast<size_t>(step) < opening.size()) {
        next = id(opening[step]);
      } else {
        for (float& l : logits) l = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
        masked = masked || c.Engaged();
        StatusOr<int32_t> drawn = sampler->Sample(logits.data(), tok.n_vocab());
        ASSERT_TRUE(drawn.ok()) << drawn.status().message();
        next = *drawn;
        if (tok.IsEndOfGeneration(next)) break;
      }
      ASSERT_EQ(c.TakePiece(tok.Piece(next)), ReplyConstraint::Take::kTaken) << text;
      text += tok.Piece(next);
      if (step > 60 && !c.Engaged()) break;  // plain text: long enough to have seen it
    }
    const std::string_view start = std::string_view{text}.substr(text.find_first_not_of(" \n"));
    if (!start.starts_with(kToolCallOpen)) {
      EXPECT_FALSE(masked) << text;
      EXPECT_FALSE(c.InToolCall()) << text;
      continue;
    }
    ++calls;
    ASSERT_TRUE(c.Finished()) << text;
    EXPECT_TRUE(c.InToolCall());
    StatusOr<ToolCall> parsed = ParseToolCall(text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().message() << " in " << text;
    EXPECT_TRUE(text.ends_with(kToolCallClose)) << text;
  }
  EXPECT_GE(calls, 100);
}

// One token that finishes the tag and goes on with bytes no call starts with is drawn again
// under the mask, which now allows only what continues the tag into a call.
TEST(ReplyConstraintTest, ATokenThatFinishesTheTagWithOtherBytesIsDrawnAgain) {
  const engine::Tokenizer tok = SyntheticTokenizer();
  const TokenMasker masker(tok);
  StatusOr<Grammar> call = ToolCallGrammar(Tools());
  ASSERT_TRUE(call.ok()) << call.status().message();
  ReplyConstraint c = ReplyConstraint::ToolCall(std::string(kToolCallOpen), *call);
  EXPECT_EQ(c.TakePiece("<tool"), ReplyConstraint::Take::kTaken);
  EXPECT_EQ(c.TakePiece("_call"), ReplyConstraint::Take::kTaken);
  EXPECT_FALSE(c.Engaged());
  EXPECT_EQ(c.TakePiece(">Sure"), ReplyConstraint::Take::kResample);
  ASSERT_TRUE(c.Engaged());
  std::vector<uint8_t> allowed(tok.n_vocab(), 1);
  c.Mask(masker, &allowed);
  std::set<std::string> pieces;
  for (int32_t i = 0; i < tok.n_vocab(); ++i) {
    if (allowed[i] != 0) pieces.insert(tok.Piece(i));
  }
  EXPECT_EQ(pieces, (std::set<std::string>{">"}));
  EXPECT_EQ(c.TakePiece(">"), ReplyConstraint::Take::kTaken);
  EXPECT_EQ(c.TakePiece("plain"), ReplyConstraint::Take::kRefused);
  EXPECT_EQ(c.TakePiece("{\"name\":\""), ReplyConstraint::Take::kTaken);
  EXPECT_FALSE(c.Finished());
}

// Text that leaves the tag's prefix is plain from there on, even if a tag follows later.
TEST(ReplyConstraintTest, PlainTextIsNeverConstrained) {
  StatusOr<Grammar> call = ToolCallGrammar(Tools());
  ASSERT_TRUE(call.ok()) << call.status().message();
  ReplyConstraint c = ReplyConstraint::ToolCall(std::string(kToolCallOpen), *call);
  EXPECT_EQ(c.TakePiece("Use "), ReplyConstraint::Take::kTaken);
  EXPECT_EQ(c.TakePiece("<tool_call>"), ReplyConstraint::Take::kTaken);
  EXPECT_EQ(c.TakePiece("not json"), ReplyConstraint::Take::kTaken);
  EXPECT_FALSE(c.Engaged());
  EXPECT_FALSE(c.Finished());
}

}  // namespace
}  // namespace agentry::runtime
