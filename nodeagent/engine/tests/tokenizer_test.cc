// The SentencePiece tokenizer against llama.cpp's own test vectors for the Llama 2 vocabulary.
#include "nodeagent/engine/tokenizer.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "nodeagent/engine/gguf_writer.h"
#include "nodeagent/engine/tests/shared_models.h"

namespace agentry::engine {
namespace {

using test_support::SharedModel;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Llama2TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = SharedModel("llama2-tiny-random");
    if (dir_.empty()) GTEST_SKIP() << "../shared/models/llama2-tiny-random not present";
    StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(dir_ + "/llama-2-tiny-random.gguf");
    ASSERT_TRUE(f.ok()) << f.status().message();
    file_ = std::move(f).value();
    StatusOr<Tokenizer> t = Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::make_unique<Tokenizer>(std::move(t).value());
  }
  std::string dir_;
  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Llama2TokenizerTest, MatchesLlamaCppTestVectors) {
  const std::string inp = ReadAll(dir_ + "/ggml-vocab-llama-spm.gguf.inp");
  const std::string out = ReadAll(dir_ + "/ggml-vocab-llama-spm.gguf.out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(sep, pos);
    if (end == std::string::npos) break;
    texts.push_back(inp.substr(pos, end - pos));
    pos = end + sep.size();
  }
  std::vector<std::string> lines;
  std::istringstream out_lines(out);
  for (std::string line; std::getline(out_lines, line);) lines.push_back(line);
  ASSERT_EQ(texts.size(), 46u);
  ASSERT_EQ(lines.size(), texts.size());
  int mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int32_t> want;
    std::istringstream ids(lines[i]);
    for (int32_t id; ids >> id;) want.push_back(id);
    const std::vector<int32_t> got = tok_->Encode(texts[i], /*add_bos=*/false);
    if (got != want) ++mismatches;
    EXPECT_EQ(got, want) << "vector " << i << ": \"" << texts[i] << "\"";
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_F(Llama2TokenizerTest, BosAndKnownPieces) {
  EXPECT_EQ(tok_->Encode("Hello world", true), (std::vector<int32_t>{1, 15043, 3186}));
  EXPECT_EQ(tok_->Decode({1, 15043, 3186}), "Hello world");
  EXPECT_EQ(tok_->bos(), 1);
  EXPECT_EQ(tok_->eos(), 2);
  EXPECT_EQ(tok_->Piece(13), "\n");  // <0x0A>
  EXPECT_EQ(tok_->Piece(2), "");     // control token </s>
  EXPECT_EQ(tok_->Encode("", true), (std::vector<int32_t>{1}));
}

TEST_F(Llama2TokenizerTest, InvalidUtf8FallsBackToBytes) {
  const std::vector<int32_t> ids = tok_->Encode(
      "a\xFF"
      "b",
      false);
  ASSERT_FALSE(ids.empty());
  std::string round;
  for (int32_t id : ids) round += tok_->Piece(id);
  EXPECT_EQ(round,
            " a\xFF"
            "b");  // every byte survives, as a byte token where needed
}

TEST_F(Llama2TokenizerTest, RoundTripsMultilingualCodeAndEmoji) {
  const std::string text =
      "def f(x):\n    return {'k': x**2}  # 注释\nПривет, мир! 🦙🚀 naïve "
      "café\t€100";
  const std::vector<int32_t> ids = tok_->Encode(text, true);
  EXPECT_EQ(tok_->Decode(ids), text);
}

TEST(TokenizerTest, Stories260KPromptMatchesLlamaCpp) {
  const std::string path = SharedModel("stories260k/stories260K.gguf");
  if (path.empty()) GTEST_SKIP() << "../shared/models/stories260k not present";
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok());
  StatusOr<Tokenizer> t = Tokenizer::FromGguf(**f);
  ASSERT_TRUE(t.ok()) << t.status().message();
  // stories260K: "<s> Once upon a time" is 1 403 407 261 378 in llama.cpp.
  EXPECT_EQ(t->Encode("Once upon a time", true), (std::vector<int32_t>{1, 403, 407, 261, 378}));
}

StatusOr<Tokenizer> TokenizerFromWriter(const GgufWriter& w) {
  const std::string bytes = w.Serialize();
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(bytes, "vocab.gguf");
  if (!f.ok()) return f.status();
  return Tokenizer::FromGguf(**f);
}

StatusOr<Tokenizer> OneTokenVocab(const char* model, const char* pre) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", model);
  if (pre != nullptr) w.SetString("tokenizer.ggml.pre", pre);
  w.SetStringArray("tokenizer.ggml.tokens", {"a"});
  w.SetStringArray("tokenizer.ggml.merges", {});
  return TokenizerFromWriter(w);
}

TEST(TokenizerTest, UnknownModelsAndPreTokenizersAreRefusedByName) {
  StatusOr<Tokenizer> t = OneTokenVocab("bert", nullptr);
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(t.status().message().find("\"bert\" is not supported"), std::string::npos);

  t = OneTokenVocab("gpt2", nullptr);
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("tokenizer.ggml.pre is missing"), std::string::npos);

  t = OneTokenVocab("gpt2", "falcon");
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(t.status().message().find("\"falcon\" is not supported"), std::string::npos)
      << t.status().message();

  EXPECT_TRUE(OneTokenVocab("gpt2", "llama-bpe").ok());
}

// A byte-level vocabulary small enough to follow by hand: the bytes of "ab c", two merges,
// a control token and a user-defined one.
GgufWriter TinyByteLevelVocab(const std::vector<std::string>& merges = {"a b", "\xC4\xA0 c"}) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "qwen2");
  // "\xC4\xA0" is U+0120, byte-level BPE's name for the space byte.
  const std::string space = "\xC4\xA0";
  w.SetStringArray("tokenizer.ggml.tokens",
                   {"a", "b", "c", space, "ab", space + "c", "<|ctl|>", "<tool>"});
  w.SetInt32Array("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 3, 4});
  w.SetStringArray("tokenizer.ggml.merges", merges);
  w.SetUint32("tokenizer.ggml.eos_token_id", 6);
  return w;
}

TEST(TokenizerTest, ByteLevelMergesByRank) {
  StatusOr<Tokenizer> t = TokenizerFromWriter(TinyByteLevelVocab());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->Encode("ab c", false), (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(t->Encode("ba", false), (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(t->Decode({4, 5}), "ab c");
  EXPECT_FALSE(t->add_bos_default());  // no BOS token in this vocabulary
  EXPECT_TRUE(t->IsEndOfGeneration(6));
  EXPECT_FALSE(t->IsEndOfGeneration(4));
}

TEST(TokenizerTest, ControlTokensParsedOnlyWhenAskedUserDefinedAlways) {
  StatusOr<Tokenizer> t = TokenizerFromWriter(TinyByteLevelVocab());
  ASSERT_TRUE(t.ok()) << t.status().message();
  // parse_special: the control token's text becomes the token.
  EXPECT_EQ(t->Encode("ab<|ctl|>ab", false, true), (std::vector<int32_t>{4, 6, 4}));
  // Without it the text stays text (here, characters the vocabulary lacks are dropped as
  // llama.cpp drops them), but a user-defined token is always cut out.
  const std::vector<int32_t> plain = t->Encode("ab<|ctl|>ab", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 6), 0);
  EXPECT_EQ(t->Encode("ab<tool> c", false, false), (std::vector<int32_t>{4, 7, 5}));
  EXPECT_EQ(t->Piece(6), "");        // control tokens print nothing
  EXPECT_EQ(t->Piece(7), "<tool>");  // user-defined ones print their text
}

TEST(TokenizerTest, LiteralSpansKeepControlTokenTextAsText) {
  StatusOr<Tokenizer> t = TokenizerFromWriter(TinyByteLevelVocab());
  ASSERT_TRUE(t.ok()) << t.status().message();
  const std::string text = "<|ctl|>ab<|ctl|><tool>";
  EXPECT_EQ(t->Encode(text, false, true, {}), (std::vector<int32_t>{6, 4, 6, 7}));
  // The span [7, 16) holds "ab<|ctl|>": its control token stays text, and the user-defined
  // <tool> right after it is still cut out.
  const std::vector<int32_t> ids = t->Encode(text, false, true, {{7, 9}});
  EXPECT_EQ(ids.front(), 6);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 6), 1);
  EXPECT_EQ(ids.back(), 7);
}

TEST(TokenizerTest, MalformedMergesAreRefused) {
  StatusOr<Tokenizer> t = TokenizerFromWriter(TinyByteLevelVocab({"a b", "nospace"}));
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("tokenizer.ggml.merges[1]"), std::string::npos);
}

TEST(TokenizerTest, InconsistentVocabularyIsRefused) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", {"a", "b"});
  w.SetFloat32Array("tokenizer.ggml.scores", {0.0f});
  w.SetUint32("tokenizer.ggml.bos_token_id", 7);
  const std::string bytes = w.Serialize();
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(bytes, "v.gguf");
  ASSERT_TRUE(f.ok());
  StatusOr<Tokenizer> t = Tokenizer::FromGguf(**f);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("scores has 1 entries for 2 tokens"), std::string::npos);
}

}  // namespace
}  // namespace agentry::engine
