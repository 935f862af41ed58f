// The SentencePiece tokenizer against llama.cpp's own test vectors for the Llama 2 vocabulary.
#include "nodeagent/engine/tokenizer.h"

#include <sys/stat.h>

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

TEST(TokenizerTest, UnimplementedModelsAreRefusedByName) {
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetStringArray("tokenizer.ggml.tokens", {"a"});
  const std::string bytes = w.Serialize();
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(bytes, "bpe.gguf");
  ASSERT_TRUE(f.ok());
  StatusOr<Tokenizer> t = Tokenizer::FromGguf(**f);
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(t.status().message().find("\"gpt2\" is not supported yet"), std::string::npos);
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
