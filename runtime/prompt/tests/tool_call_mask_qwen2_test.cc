// TokenMasker against a real vocabulary: llama.cpp's Qwen2 test vocabulary (151k byte-level
// BPE tokens, many of them partial UTF-8). The mask must equal a token-by-token check, and
// mask-guided random generation must yield valid tool calls. Skips when scripts/llref-install
// has not put llama.cpp's models under ~/.cache/agentry/llref.
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "nodeagent/constrain/tests/test_support.h"
#include "nodeagent/constrain/token_mask.h"
#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/tests/shared_models.h"
#include "runtime/prompt/tool_call_grammar.h"

namespace agentry::runtime {
namespace {

using constrain::Grammar;
using constrain::Matcher;
using constrain::TokenMasker;
using nlohmann::json;

class ConstrainQwen2MaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = engine::test_support::LlamaCppFile("models/ggml-vocab-qwen2.gguf");
    if (path.empty()) {
      GTEST_SKIP() << "llama.cpp's models/ggml-vocab-qwen2.gguf is not installed under "
                   << engine::test_support::LlamaCppCacheDir() << " (scripts/llref-install)";
    }
    StatusOr<std::unique_ptr<engine::GgufFile>> f = engine::GgufFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status().message();
    file_ = std::move(f).value();
    StatusOr<engine::Tokenizer> t = engine::Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::make_unique<engine::Tokenizer>(std::move(t).value());
    masker_ = std::make_unique<TokenMasker>(*tok_);
    StatusOr<Grammar> g = ToolCallGrammar(tools_);
    ASSERT_TRUE(g.ok()) << g.status().message();
    grammar_ = std::make_unique<Grammar>(*g);
  }

  std::vector<uint8_t> BruteForce(const Matcher& m) const {
    std::vector<uint8_t> want(tok_->n_vocab());
    Matcher copy = m;
    for (int32_t id = 0; id < tok_->n_vocab(); ++id) {
      if (tok_->IsEndOfGeneration(id)) {
        want[id] = m.IsComplete();
        continue;
      }
      const std::string piece = tok_->Piece(id);
      copy = m;
      want[id] = !piece.empty() && copy.AdvanceAll(piece);
    }
    return want;
  }

  const std::vector<ToolDecl> tools_ = {
      {"get_ticket", "", json::parse(R"({"type": "object", "properties": {"id": {"type": "integer"},
           "note": {"type": "string", "maxLength": 24}}, "required": ["id"]})"),
       false},
      {"jira_search", "",
       json::parse(R"({"type": "object", "properties": {"q": {"type": "string", "maxLength": 40},
           "limit": {"type": "integer"}, "score": {"type": "number"},
           "status": {"enum": ["open", "closed"]}}, "required": ["q"]})"),
       false},
  };
  std::unique_ptr<engine::GgufFile> file_;
  std::unique_ptr<engine::Tokenizer> tok_;
  std::unique_ptr<TokenMasker> masker_;
  std::unique_ptr<Grammar> grammar_;
};

TEST_F(ConstrainQwen2MaskTest, MaskEqualsATokenByTokenCheck) {
  // Every state along valid calls: the tool-name choice, keys, inside a string (also in the
  // middle of multi-byte characters, after a backslash, and with a maxLength nearly used
  // up), numbers, enum values, the closing tag, and the complete state.
  for (const std::string& call :
       {RenderToolCall("jira_search", json{{"q",
                                            "cr\xC3\xA9"
                                            "dit \"card\" \xE6\x97\xA5"},
                                           {"score", -1.5e-3},
                                           {"status", "open"}}),
        RenderToolCall("get_ticket",
                       json{{"id", 7}, {"note", "twenty-two characters \xC3\xA9\xE6\x97\xA5"}})}) {
    const std::string body = call.substr(kToolCallOpen.size());
    Matcher m(*grammar_);
    for (size_t i = 0; i <= body.size(); ++i) {
      std::vector<uint8_t> allowed(tok_->n_vocab(), 1);
      masker_->Mask(m, &allowed);
      ASSERT_EQ(allowed, BruteForce(m)) << "after \"" << body.substr(0, i) << "\"";
      if (i < body.size()) {
        ASSERT_TRUE(m.Advance(static_cast<unsigned char>(body[i])));
      }
    }
    EXPECT_TRUE(m.IsComplete());
  }
}

TEST_F(ConstrainQwen2MaskTest, MaskGuidedRandomTokensYieldValidToolCalls) {
  std::mt19937_64 rng(3);
  std::vector<uint8_t> allowed;
  std::vector<int32_t> options;
  for (int run = 0; run < 20; ++run) {
    Matcher m(*grammar_);
    std::string text;
    bool ended = false;
    for (int step = 0; step < 4000 && !ended; ++step) {
      allowed.assign(tok_->n_vocab(), 1);
      masker_->Mask(m, &allowed);
      options.clear();
      for (int32_t id = 0; id < tok_->n_vocab(); ++id) {
        if (allowed[id] != 0) options.push_back(id);
      }
      ASSERT_FALSE(options.empty()) << "dead end after " << text;
      const int32_t id = options[std::uniform_int_distribution<size_t>(0, options.size() - 1)(rng)];
      ASSERT_TRUE(masker_->Accept(&m, id).ok());
      ended = tok_->IsEndOfGeneration(id);
      if (!ended) text += tok_->Piece(id);
    }
    ASSERT_TRUE(ended) << "run " << run << " did not end: " << text;
    StatusOr<ToolCall> call = ParseToolCall(std::string(kToolCallOpen) + text);
    ASSERT_TRUE(call.ok()) << call.status().message() << " in " << text;
    const ToolDecl* tool = nullptr;
    for (const ToolDecl& t : tools_) tool = t.name == call->name ? &t : tool;
    ASSERT_NE(tool, nullptr) << text;
    std::string why;
    EXPECT_TRUE(constrain::test_support::Satisfies(call->arguments, tool->parameters, &why))
        << why << " in " << text;
  }
}

}  // namespace
}  // namespace agentry::runtime
