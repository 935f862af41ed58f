// The BPE trainer: merges on hand-checked corpora, agreement with a from-scratch reference
// trainer, the BPE property (merges applied by rank reproduce the trainer's segmentation of
// every training word), errors, and a round trip through the engine's GGUF reader and
// tokenizer.
#include "train/bpe/bpe_trainer.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "train/bpe/tests/corpus_gen.h"
#include <gtest/gtest.h>

#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/test_model.h"

namespace agentry::train {
namespace {

using engine::TokenType;
using test_support::ChatSpecialTokens;
using test_support::GenerateCorpus;

BpeVocab Train(const std::vector<std::string>& texts, const BpeOptions& options,
               BpeSegmentation* segmentation = nullptr) {
  StatusOr<BpeVocab> v = TrainBpe(texts, options, segmentation);
  EXPECT_TRUE(v.ok()) << v.status().message();
  return v.ok() ? std::move(v).value() : BpeVocab{};
}

std::string Gguf(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += ByteTokenText(c);
  return out;
}

// A from-scratch reference: every step recounts all pairs of all words, takes the most
// frequent whose concatenation is not yet a token (ties: smallest (left, right) bytes, the
// order of std::map), and merges it everywhere, left to right.
std::vector<std::string> ReferenceMerges(const std::vector<std::string>& texts,
                                         const BpeOptions& options) {
  std::map<std::string, int64_t> counts;
  for (const std::string& text : texts) {
    for (const BpeWord& w : SplitIntoWords(text, options.special_tokens, options.pre)) {
      if (w.special < 0) ++counts[w.bytes];
    }
  }
  std::vector<std::pair<std::vector<std::string>, int64_t>> words;
  for (const auto& [bytes, count] : counts) {
    std::vector<std::string> symbols;
    for (char c : bytes) symbols.emplace_back(1, c);
    words.emplace_back(std::move(symbols), count);
  }
  std::set<std::string> tokens(options.special_tokens.begin(), options.special_tokens.end());
  for (int b = 0; b < 256; ++b) tokens.insert(ByteTokenText(static_cast<uint8_t>(b)));
  std::vector<std::string> merges;
  const size_t wanted = options.vocab_size - 256 - options.special_tokens.size();
  while (merges.size() < wanted) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [symbols, count] : words) {
      for (size_t i = 0; i + 1 < symbols.size(); ++i) pairs[{symbols[i], symbols[i + 1]}] += count;
    }
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t best_count = 0;
    for (const auto& [pair, count] : pairs) {
      if (count > best_count && tokens.count(Gguf(pair.first + pair.second)) == 0) {
        best = &pair;
        best_count = count;
      }
    }
    if (best == nullptr || best_count < options.min_pair_count) break;
    const auto [left, right] = *best;
    tokens.insert(Gguf(left + right));
    merges.push_back(Gguf(left) + " " + Gguf(right));
    for (auto& [symbols, count] : words) {
      std::vector<std::string> merged;
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          merged.push_back(left + right);
          ++i;
        } else {
          merged.push_back(symbols[i]);
        }
      }
      symbols = std::move(merged);
    }
  }
  return merges;
}

// What the engine and llama.cpp do with one word: merge the adjacent pair of lowest rank,
// leftmost among equals, until no pair is a merge. Written from scratch here, so that the
// test does not depend on the engine for the property it checks.
std::vector<int32_t> ApplyByRank(const BpeVocab& vocab, std::string_view word) {
  std::map<std::string, int32_t> rank;
  for (size_t i = 0; i < vocab.merges.size(); ++i) rank[vocab.merges[i]] = static_cast<int32_t>(i);
  std::vector<std::string> symbols;
  for (char c : word) symbols.push_back(ByteTokenText(static_cast<uint8_t>(c)));
  for (;;) {
    int32_t best = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = rank.find(symbols[i] + " " + symbols[i + 1]);
      if (it != rank.end() && (best < 0 || it->second < best)) {
        best = it->second;
        at = i;
      }
    }
    if (best < 0) break;
    symbols[at] += symbols[at + 1];
    symbols.erase(symbols.begin() + static_cast<ptrdiff_t>(at) + 1);
  }
  std::vector<int32_t> ids;
  for (const std::string& s : symbols) {
    auto it = std::find(vocab.tokens.begin(), vocab.tokens.end(), s);
    ids.push_back(it == vocab.tokens.end() ? -1 : static_cast<int32_t>(it - vocab.tokens.begin()));
  }
  return ids;
}

// The trainer's ids for a text: its own segmentation of each word, special tokens by id.
std::vector<int32_t> TrainerIds(const BpeSegmentation& seg, const BpeOptions& options,
                                std::string_view text) {
  std::vector<int32_t> ids;
  for (const BpeWord& w : SplitIntoWords(text, options.special_tokens, options.pre)) {
    if (w.special >= 0) {
      ids.push_back(256 + w.special);
      continue;
    }
    auto it = seg.find(w.bytes);
    EXPECT_NE(it, seg.end()) << "not a training word: " << w.bytes;
    if (it != seg.end()) ids.insert(ids.end(), it->second.begin(), it->second.end());
  }
  return ids;
}

TEST(BpeTrainerTest, MergesTheMostFrequentPairsAndBreaksTiesByBytes) {
  BpeOptions options;
  options.vocab_size = 1000;
  // Words: "ab" once, " ab" and " cd" three times each. (a, b) occurs 4 times; then
  // (" ", ab), (" ", c) and (c, d) 3 times each, taken in byte order of (left, right).
  BpeSegmentation seg;
  const BpeVocab v = Train({"ab ab ab ab cd cd cd"}, options, &seg);
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "Ġ ab", "Ġ c", "Ġc d"}));
  // No pair is left twice: training stopped early, below vocab_size.
  ASSERT_EQ(v.tokens.size(), 256u + 4);
  EXPECT_EQ(v.tokens[256], "ab");
  EXPECT_EQ(v.tokens[257], "Ġab");
  EXPECT_EQ(v.tokens[259], "Ġcd");
  EXPECT_EQ(v.pre, "qwen2");
  EXPECT_EQ(seg.at(" ab"), (std::vector<int32_t>{257}));
  EXPECT_EQ(seg.at("ab"), (std::vector<int32_t>{256}));
}

TEST(BpeTrainerTest, MinPairCountOneMergesPairsSeenOnce) {
  BpeOptions options;
  options.vocab_size = 1000;
  options.min_pair_count = 1;
  const BpeVocab v = Train({"xyz"}, options);
  EXPECT_EQ(v.merges, (std::vector<std::string>{"x y", "xy z"}));
}

TEST(BpeTrainerTest, ARunOfOneByteMergesLeftToRight) {
  BpeOptions options;
  options.vocab_size = 1000;
  BpeSegmentation seg;
  // "aaaaa" twice: (a, a) counts 4 per word and merges into "aa aa a"; then (aa, aa) and
  // (aa, a) occur twice each, and ("aa", "a") < ("aa", "aa") makes "aa aaa"; then "aaaaa".
  const BpeVocab v = Train({"aaaaa", "aaaaa"}, options, &seg);
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a a", "aa a", "aa aaa"}));
  EXPECT_EQ(seg.at("aaaaa"), (std::vector<int32_t>{258}));
  EXPECT_EQ(ApplyByRank(v, "aaaaa"), seg.at("aaaaa"));
}

TEST(BpeTrainerTest, ByteTokensComeFirstInByteOrder) {
  BpeOptions options;
  options.special_tokens = ChatSpecialTokens();
  const BpeVocab v = Train(GenerateCorpus(20000, 1), options);
  ASSERT_GE(v.tokens.size(), 259u);
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(v.tokens[b], ByteTokenText(static_cast<uint8_t>(b)));
    EXPECT_EQ(v.types[b], TokenType::kNormal);
  }
  EXPECT_EQ(v.tokens['a'], "a");
  EXPECT_EQ(v.tokens[' '], "Ġ");
  EXPECT_EQ(v.tokens['\n'], "Ċ");
  EXPECT_EQ(v.tokens[0xFF], "ÿ");
  // All distinct.
  EXPECT_EQ(std::set<std::string>(v.tokens.begin(), v.tokens.end()).size(), v.tokens.size());
}

TEST(BpeTrainerTest, SpecialTokensFollowTheBytesAsControlTokensAndAreNeverMerged) {
  BpeOptions options;
  options.special_tokens = ChatSpecialTokens();
  options.vocab_size = 600;
  const BpeVocab v = Train(GenerateCorpus(50000, 2), options);
  ASSERT_EQ(v.tokens.size(), 600u);
  EXPECT_EQ(v.merges.size(), 600u - 256 - 3);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(v.tokens[256 + i], options.special_tokens[i]);
    EXPECT_EQ(v.types[256 + i], TokenType::kControl);
  }
  for (size_t i = 259; i < v.tokens.size(); ++i) {
    EXPECT_EQ(v.types[i], TokenType::kNormal);
    // The corpus has '|' and '<' only inside special tokens, which are cut out first.
    EXPECT_EQ(v.tokens[i].find('|'), std::string::npos) << v.tokens[i];
    EXPECT_EQ(v.tokens[i].find('<'), std::string::npos) << v.tokens[i];
  }
}

TEST(BpeTrainerTest, MatchesTheFromScratchReference) {
  BpeOptions options;
  options.special_tokens = ChatSpecialTokens();
  options.vocab_size = 600;
  const std::vector<std::string> texts = GenerateCorpus(30000, 3);
  const BpeVocab v = Train(texts, options);
  EXPECT_EQ(v.merges.size(), 600u - 259);
  EXPECT_EQ(v.merges, ReferenceMerges(texts, options));
  // Merge r makes token 259 + r.
  for (size_t r = 0; r < v.merges.size(); ++r) {
    const std::string& m = v.merges[r];
    const size_t space = m.find(' ', 1);
    EXPECT_EQ(m.substr(0, space) + m.substr(space + 1), v.tokens[259 + r]);
  }
}

TEST(BpeTrainerTest, SkipsPairsWhoseTextIsAlreadyAToken) {
  BpeOptions options;
  options.vocab_size = 1000;
  // The special token "Ġx" is not in the text " x" (specials are cut from raw text), but
  // (Ġ, x), the most frequent pair, would make a token of the same GGUF text.
  options.special_tokens = {"Ġx"};
  const std::vector<std::string> texts = {" x x x yz yz"};
  BpeSegmentation seg;
  const BpeVocab v = Train(texts, options, &seg);
  EXPECT_EQ(v.merges, (std::vector<std::string>{"Ġ y", "Ġy z"}));
  EXPECT_EQ(v.merges, ReferenceMerges(texts, options));
  EXPECT_EQ(std::set<std::string>(v.tokens.begin(), v.tokens.end()).size(), v.tokens.size());
  EXPECT_EQ(seg.at(" x"), (std::vector<int32_t>{' ', 'x'}));
  for (const auto& [word, ids] : seg) EXPECT_EQ(ApplyByRank(v, word), ids) << word;
}

TEST(BpeTrainerTest, IsDeterministicAndIndependentOfTextOrder) {
  BpeOptions options;
  options.special_tokens = ChatSpecialTokens();
  options.vocab_size = 800;
  std::vector<std::string> texts = GenerateCorpus(40000, 4);
  const BpeVocab a = Train(texts, options);
  const BpeVocab b = Train(texts, options);
  std::reverse(texts.begin(), texts.end());
  const BpeVocab c = Train(texts, options);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.tokens, c.tokens);
  EXPECT_EQ(a.merges, c.merges);
}

TEST(BpeTrainerTest, MergesByRankReproduceTheTrainersSegmentation) {
  BpeOptions options;
  options.special_tokens = ChatSpecialTokens();
  options.vocab_size = 700;
  BpeSegmentation seg;
  const BpeVocab v = Train(GenerateCorpus(60000, 5), options, &seg);
  ASSERT_EQ(v.tokens.size(), 700u);
  ASSERT_GT(seg.size(), 100u);
  for (const auto& [word, ids] : seg) EXPECT_EQ(ApplyByRank(v, word), ids) << word;
}

TEST(BpeTrainerTest, SplitIntoWordsCutsSpecialTokensLongestFirst) {
  const std::vector<BpeWord> words =
      SplitIntoWords("a<|x|>b<|x|y|> 12", {"<|x|>", "<|x|y|>"}, engine::PreTokenizer::kQwen2);
  ASSERT_EQ(words.size(), 7u);
  EXPECT_EQ(words[0].bytes, "a");
  EXPECT_EQ(words[1].special, 0);
  EXPECT_EQ(words[2].bytes, "b");
  EXPECT_EQ(words[3].special, 1);
  EXPECT_EQ(words[3].bytes, "<|x|y|>");
  EXPECT_EQ(words[4].bytes, " ");  // qwen2: digits are words of their own
  EXPECT_EQ(words[5].bytes, "1");
  EXPECT_EQ(words[6].bytes, "2");
  // Invalid UTF-8 is seen as U+FFFD, as the tokenizers see it.
  const std::vector<BpeWord> bad = SplitIntoWords("x\xff", {}, engine::PreTokenizer::kQwen2);
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[1].bytes, "\xEF\xBF\xBD");
}

TEST(BpeTrainerTest, RejectsBadOptionsAndEmptyCorpora) {
  BpeOptions options;
  options.special_tokens = ChatSpecialTokens();
  const auto error = [](const std::vector<std::string>& texts, const BpeOptions& o) {
    StatusOr<BpeVocab> v = TrainBpe(texts, o);
    EXPECT_FALSE(v.ok());
    if (v.ok()) return std::string();
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    return v.status().message();
  };
  EXPECT_NE(error({}, options).find("empty"), std::string::npos);
  EXPECT_NE(error({"", "<|im_end|><|endoftext|>"}, options).find("empty"), std::string::npos);
  BpeOptions o = options;
  o.vocab_size = 4097;
  EXPECT_NE(error({"text"}, o).find("4097"), std::string::npos);
  o.vocab_size = 258;  // 256 bytes + 3 specials do not fit
  EXPECT_NE(error({"text"}, o).find("at least 259"), std::string::npos);
  o.vocab_size = 259;  // they do, with no merges
  StatusOr<BpeVocab> bare = TrainBpe({"text text"}, o);
  ASSERT_TRUE(bare.ok()) << bare.status().message();
  EXPECT_EQ(bare->tokens.size(), 259u);
  EXPECT_TRUE(bare->merges.empty());
  o = options;
  o.special_tokens.emplace_back("<|im_end|>");
  EXPECT_NE(error({"text"}, o).find("twice"), std::string::npos);
  o = options;
  o.special_tokens.emplace_back("");
  EXPECT_NE(error({"text"}, o).find("empty"), std::string::npos);
  o = options;
  o.special_tokens.emplace_back("!");
  EXPECT_NE(error({"text"}, o).find("byte token"), std::string::npos);
  o = options;
  o.min_pair_count = 0;
  EXPECT_NE(error({"text"}, o).find("min_pair_count"), std::string::npos);
}

// The vocabulary as the engine reads it from a model file: tokenizer metadata from
// WriteTokenizerMetadata, copied into a tiny random model by BuildTestModel.
class EngineRoundTripTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.special_tokens = ChatSpecialTokens();
    options_.vocab_size = 1024;
    texts_ = GenerateCorpus(200000, 6);
    vocab_ = Train(texts_, options_, &seg_);
    ASSERT_EQ(vocab_.tokens.size(), 1024u);
    engine::GgufWriter w;
    WriteTokenizerMetadata(vocab_, kTemplate, &w);
    vocab_bytes_ = w.Serialize();
    StatusOr<std::unique_ptr<engine::GgufFile>> vf =
        engine::GgufFile::FromBuffer(vocab_bytes_, "vocab");
    ASSERT_TRUE(vf.ok()) << vf.status().message();
    vocab_file_ = std::move(vf).value();
    engine::TestModelSpec spec;
    spec.arch = "qwen2";
    spec.vocab = vocab_file_.get();
    StatusOr<std::string> model = engine::BuildTestModel(spec);
    ASSERT_TRUE(model.ok()) << model.status().message();
    model_bytes_ = std::move(model).value();
    StatusOr<std::unique_ptr<engine::GgufFile>> mf =
        engine::GgufFile::FromBuffer(model_bytes_, "model");
    ASSERT_TRUE(mf.ok()) << mf.status().message();
    model_file_ = std::move(mf).value();
    StatusOr<engine::Tokenizer> t = engine::Tokenizer::FromGguf(*model_file_);
    ASSERT_TRUE(t.ok()) << t.status().message();
    tok_ = std::make_unique<engine::Tokenizer>(std::move(t).value());
  }

  // The text back from ids, special tokens included (Decode leaves them out).
  std::string Text(const std::vector<int32_t>& ids) const {
    std::string out;
    for (int32_t id : ids) {
      out += tok_->type(id) == TokenType::kControl ? tok_->text(id) : tok_->Piece(id);
    }
    return out;
  }

  static constexpr const char* kTemplate =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
  BpeOptions options_;
  std::vector<std::string> texts_;
  BpeVocab vocab_;
  BpeSegmentation seg_;
  std::string vocab_bytes_;
  std::unique_ptr<engine::GgufFile> vocab_file_;
  std::string model_bytes_;
  std::unique_ptr<engine::GgufFile> model_file_;
  std::unique_ptr<engine::Tokenizer> tok_;
};

TEST_F(EngineRoundTripTest, MetadataReadsBack) {
  EXPECT_EQ(tok_->model(), engine::Tokenizer::Model::kByteLevelBpe);
  EXPECT_EQ(tok_->n_vocab(), 1024);
  EXPECT_EQ(tok_->bos(), 256);  // <|endoftext|>
  EXPECT_EQ(tok_->eos(), 258);  // <|im_end|>
  EXPECT_FALSE(tok_->add_bos_default());
  EXPECT_TRUE(tok_->IsEndOfGeneration(258));
  EXPECT_EQ(*model_file_->GetString("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(*model_file_->GetString("tokenizer.chat_template"), kTemplate);
  EXPECT_EQ(*model_file_->GetUint("tokenizer.ggml.padding_token_id"), 256u);
  EXPECT_EQ((*model_file_->GetStringArray("tokenizer.ggml.merges"))->size(), 1024u - 259);
  for (int32_t id = 0; id < tok_->n_vocab(); ++id) {
    EXPECT_EQ(tok_->text(id), vocab_.tokens[id]);
    EXPECT_EQ(tok_->type(id), vocab_.types[id]);
  }
}

TEST_F(EngineRoundTripTest, EncodesTrainingTextsAsTheTrainerSegmentedThem) {
  size_t n_tokens = 0;
  size_t n_bytes = 0;
  for (const std::string& text : texts_) {
    const std::vector<int32_t> ids = tok_->Encode(text, /*add_bos=*/false, /*parse_special=*/true);
    ASSERT_EQ(ids, TrainerIds(seg_, options_, text)) << text;
    ASSERT_EQ(Text(ids), text);
    n_tokens += ids.size();
    n_bytes += text.size();
  }
  std::printf("%zu bytes of training text in %zu tokens (%.2f bytes per token)\n", n_bytes,
              n_tokens, static_cast<double>(n_bytes) / static_cast<double>(n_tokens));
  EXPECT_GT(n_bytes, 3 * n_tokens);  // 765 merges of a repetitive corpus compress it well
}

TEST_F(EngineRoundTripTest, ControlTokensAreSingleIdsOnlyWhenParsingSpecials) {
  EXPECT_EQ(tok_->Encode("<|im_start|>", false, true), (std::vector<int32_t>{257}));
  EXPECT_EQ(tok_->Encode("<|im_end|><|endoftext|>", false, true), (std::vector<int32_t>{258, 256}));
  const std::vector<int32_t> plain = tok_->Encode("<|im_end|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tok_->Decode(plain), "<|im_end|>");
}

TEST_F(EngineRoundTripTest, UnseenTextRoundTripsThroughByteTokens) {
  const std::vector<std::string> texts = {
      "Grüße aus Köln — 日本語のテキスト",
      "русский текст 🤖🚀 👩‍💻",
      "{\"name\":\"get_ticket\",\"arguments\":{\"id\":4821}}",
      "  two  spaces\n\n\ttab\r\nend  \n",
      "\x01\x02\x7f control bytes",
  };
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tok_->Encode(text, false, true);
    EXPECT_EQ(tok_->Decode(ids), text);
    // Each word is what merging by rank makes of it.
    std::vector<int32_t> expected;
    for (const BpeWord& w : SplitIntoWords(text, options_.special_tokens, options_.pre)) {
      const std::vector<int32_t> word = ApplyByRank(vocab_, w.bytes);
      expected.insert(expected.end(), word.begin(), word.end());
    }
    EXPECT_EQ(ids, expected) << text;
  }
  // Digits are one token each (qwen2 pre-tokenizer, and byte tokens for digits).
  EXPECT_EQ(tok_->Encode("4821", false), (std::vector<int32_t>{'4', '8', '2', '1'}));
}

// About the speed the trainer must have for `agentry train`: 2048 tokens from megabytes.
TEST(BpeTrainerSpeedTest, TrainsTwoThousandTokensOnTwoMegabytes) {
  BpeOptions options;
  options.special_tokens = ChatSpecialTokens();
  options.vocab_size = 2048;
  options.min_pair_count = 1;  // the synthetic corpus is repetitive; do not stop early
  const std::vector<std::string> texts = GenerateCorpus(2 << 20, 7);
  size_t bytes = 0;
  for (const std::string& t : texts) bytes += t.size();
  BpeSegmentation seg;
  const auto start = std::chrono::steady_clock::now();
  const BpeVocab v = Train(texts, options, &seg);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("trained %zu tokens (%zu merges) on %zu bytes, %zu distinct words, in %.2f s\n",
              v.tokens.size(), v.merges.size(), bytes, seg.size(), seconds);
  RecordProperty("seconds", std::to_string(seconds));
  EXPECT_EQ(v.tokens.size(), 2048u);
  // The synthetic corpus has few distinct words; check the rank property on all of them.
  for (const auto& [word, ids] : seg) EXPECT_EQ(ApplyByRank(v, word), ids) << word;
}

}  // namespace
}  // namespace agentry::train
