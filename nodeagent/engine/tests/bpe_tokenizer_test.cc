// Byte-level BPE tokenizers against llama.cpp's own test vectors for the real vocabularies
// that its source ships (models/ggml-vocab-*.gguf with .inp/.out files): Llama 3, Qwen2,
// GPT-2, and StarCoder (whose pre-tokenizer SmolLM shares). The files come with the
// llama.cpp install (scripts/llref-install, a ctest fixture); without it the tests skip.
#include <sstream>

#include <gtest/gtest.h>

#include "common/file.h"
#include "nodeagent/engine/tests/shared_models.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::engine {
namespace {

using test_support::LlamaCppFile;

struct Vocab {
  const char* name;  // models/ggml-vocab-<name>.gguf
  const char* pre;   // its tokenizer.ggml.pre
  size_t vectors;    // how many test strings its .inp holds
};

void PrintTo(const Vocab& v, std::ostream* os) { *os << v.name; }

class BpeVocabTest : public ::testing::TestWithParam<Vocab> {
 protected:
  void SetUp() override {
    path_ = LlamaCppFile(std::string("models/ggml-vocab-") + GetParam().name + ".gguf");
    if (path_.empty()) {
      GTEST_SKIP() << "llama.cpp's test vocabularies are not installed (scripts/llref-install "
                      "could not install node-llama-cpp@3.22.1 from npm)";
    }
    StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::Open(path_);
    ASSERT_TRUE(f.ok()) << f.status().message();
    file_ = std::move(f).value();
    StatusOr<Tokenizer> t = Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::make_unique<Tokenizer>(std::move(t).value());
  }
  std::string path_;
  std::unique_ptr<GgufFile> file_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_P(BpeVocabTest, IsByteLevelWithTheFamilysPreTokenizer) {
  EXPECT_EQ(tok_->model(), Tokenizer::Model::kByteLevelBpe);
  StatusOr<std::string_view> pre = file_->GetString("tokenizer.ggml.pre");
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ(*pre, GetParam().pre);
}

TEST_P(BpeVocabTest, MatchesLlamaCppTestVectors) {
  StatusOr<std::string> inp = ReadFileToString(path_ + ".inp");
  StatusOr<std::string> out = ReadFileToString(path_ + ".out");
  ASSERT_TRUE(inp.ok() && out.ok());
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp->size();) {
    const size_t end = inp->find(sep, pos);
    if (end == std::string::npos) break;
    texts.push_back(inp->substr(pos, end - pos));
    pos = end + sep.size();
  }
  std::vector<std::string> lines;
  std::istringstream out_lines(*out);
  for (std::string line; std::getline(out_lines, line);) lines.push_back(line);
  ASSERT_EQ(texts.size(), GetParam().vectors);
  ASSERT_EQ(lines.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int32_t> want;
    std::istringstream ids(lines[i]);
    for (int32_t id; ids >> id;) want.push_back(id);
    // As llama.cpp's test-tokenizer-0: no BOS, special tokens not parsed.
    EXPECT_EQ(tok_->Encode(texts[i], /*add_bos=*/false), want)
        << "vector " << i << ": \"" << texts[i] << "\"";
  }
}

TEST_P(BpeVocabTest, DecodeGivesBackTheText) {
  const std::string text =
      "def f(x):\n    return {'k': x**2}  # 注释\r\n\tПривет, мир! 🦙🚀 naïve "
      "café "
      "€100 "
      "1234567 I'LL don't   x\n\n\n";
  EXPECT_EQ(tok_->Decode(tok_->Encode(text, false)), text);
}

TEST_P(BpeVocabTest, InvalidUtf8IsRefusedByEncodeUtf8AndReplacedByEncode) {
  const std::string bad = "ok \xC3(";
  StatusOr<std::vector<int32_t>> strict = tok_->EncodeUtf8(bad, false);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(strict.status().message().find("byte 3"), std::string::npos)
      << strict.status().message();
  // llama.cpp's tokenizer reads the stray byte as U+FFFD; so does Encode.
  EXPECT_EQ(tok_->Decode(tok_->Encode(bad, false)), "ok \xEF\xBF\xBD(");
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, BpeVocabTest,
                         ::testing::Values(Vocab{"llama-bpe", "llama-bpe", 46},
                                           Vocab{"qwen2", "qwen2", 46}, Vocab{"gpt-2", "gpt-2", 46},
                                           Vocab{"starcoder", "starcoder", 46}),
                         [](const ::testing::TestParamInfo<Vocab>& info) {
                           std::string name = info.param.name;
                           for (char& c : name) c = std::isalnum(c) ? c : '_';
                           return name;
                         });

}  // namespace
}  // namespace agentry::engine
