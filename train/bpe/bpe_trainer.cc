#include "train/bpe/bpe_trainer.h"

#include <algorithm>
#include <array>
#include <functional>
#include <utility>

#include "common/unicode/unicode.h"

namespace agentry::train {
namespace {

constexpr int32_t kByteTokens = 256;

// GPT-2's bytes_to_unicode: the printable Latin-1 bytes stand for themselves, the other 68
// are numbered from U+0100 in byte order. The engine keeps its own copy of this table
// (tokenizer.cc); the engine round-trip test fails if the two ever differ.
const std::array<std::string, 256>& ByteTexts() {
  static const std::array<std::string, 256> texts = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      unicode::AppendUtf8(printable ? static_cast<uint32_t>(b) : next++, &t[b]);
    }
    return t;
  }();
  return texts;
}

// Calls `fn(bytes, special)` for each word of `text` in order (see SplitIntoWords). `order`
// lists indices into `specials`, longest first. `bytes` is only valid during the call.
void ForEachWord(std::string_view text, const std::vector<std::string>& specials,
                 const std::vector<int32_t>& order, engine::PreTokenizer pre,
                 const std::function<void(std::string_view, int32_t)>& fn) {
  struct Fragment {
    int32_t special;  // -1 for text
    size_t offset;
    size_t length;
  };
  std::vector<Fragment> fragments = {{-1, 0, text.size()}};
  std::vector<Fragment> next;
  for (int32_t index : order) {
    const std::string& special = specials[index];
    if (special.empty()) continue;
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.special >= 0) {
        next.push_back(f);
        continue;
      }
      size_t begin = f.offset;
      const size_t end = f.offset + f.length;
      for (;;) {
        const size_t at = text.substr(0, end).find(special, begin);
        if (at == std::string_view::npos) break;
        if (at > begin) next.push_back({-1, begin, at - begin});
        next.push_back({index, at, special.size()});
        begin = at + special.size();
      }
      if (begin < end) next.push_back({-1, begin, end - begin});
    }
    fragments.swap(next);
  }
  std::string word;
  for (const Fragment& f : fragments) {
    const std::string_view piece = text.substr(f.offset, f.length);
    if (f.special >= 0) {
      fn(piece, f.special);
      continue;
    }
    // Through code points and back, as the tokenizers go: invalid bytes become U+FFFD.
    const std::vector<uint32_t> cps = unicode::DecodeUtf8Lossy(piece);
    size_t start = 0;
    for (size_t length : engine::SplitWords(pre, cps)) {
      word.clear();
      for (size_t i = start; i < start + length; ++i) unicode::AppendUtf8(cps[i], &word);
      start += length;
      fn(word, -1);
    }
  }
}

// Indices of `specials`, longest first, list order among equal lengths: the order in which
// the engine (its special tokens sorted stably by length, in id order) cuts them out.
std::vector<int32_t> CutOrder(const std::vector<std::string>& specials) {
  std::vector<int32_t> order(specials.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&specials](int32_t a, int32_t b) {
    return specials[a].size() > specials[b].size();
  });
  return order;
}

Status CheckOptions(const BpeOptions& o) {
  const int64_t n_special = static_cast<int64_t>(o.special_tokens.size());
  if (o.vocab_size > kMaxBpeVocabSize || o.vocab_size < kByteTokens + n_special) {
    return InvalidArgumentError("BPE vocab_size " + std::to_string(o.vocab_size) +
                                " is out of range: it must hold the 256 byte tokens and the " +
                                std::to_string(n_special) + " special tokens (at least " +
                                std::to_string(kByteTokens + n_special) + ") and be at most " +
                                std::to_string(kMaxBpeVocabSize));
  }
  if (o.min_pair_count < 1) {
    return InvalidArgumentError("BPE min_pair_count " + std::to_string(o.min_pair_count) +
                                " must be at least 1");
  }
  const std::array<std::string, 256>& bytes = ByteTexts();
  for (size_t i = 0; i < o.special_tokens.size(); ++i) {
    const std::string& s = o.special_tokens[i];
    if (s.empty()) {
      return InvalidArgumentError("BPE special token " + std::to_string(i) + " is empty");
    }
    if (std::find(o.special_tokens.begin(), o.special_tokens.begin() + static_cast<ptrdiff_t>(i),
                  s) != o.special_tokens.begin() + static_cast<ptrdiff_t>(i)) {
      return InvalidArgumentError("BPE special token \"" + s + "\" is listed twice");
    }
    if (std::find(bytes.begin(), bytes.end(), s) != bytes.end()) {
      return InvalidArgumentError("BPE special token \"" + s +
                                  "\" is the text of a byte token; token texts must be unique");
    }
  }
  return OkStatus();
}

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t PairLeft(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t PairRight(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

// The merge loop's state. Tokens are numbered as in the final vocabulary.
class Trainer {
 public:
  Trainer(const BpeOptions& options, std::vector<std::pair<std::string, int64_t>>&& words)
      : options_(options) {
    const std::array<std::string, 256>& bytes = ByteTexts();
    for (int b = 0; b < kByteTokens; ++b) {
      AddToken(std::string(1, static_cast<char>(b)), bytes[b], engine::TokenType::kNormal);
    }
    for (const std::string& s : options.special_tokens) {
      AddToken(s, s, engine::TokenType::kControl);
    }
    words_.reserve(words.size());
    for (auto& [text, count] : words) {
      Word w;
      w.count = count;
      w.symbols.reserve(text.size());
      for (unsigned char c : text) w.symbols.push_back(c);
      words_.push_back(std::move(w));
      word_texts_.push_back(std::move(text));
    }
  }

  void Run() {
    CountPairs();
    const int32_t wanted = options_.vocab_size - static_cast<int32_t>(gguf_.size());
    while (static_cast<int32_t>(merges_.size()) < wanted && !heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), Order());
      const HeapEntry top = heap_.back();
      heap_.pop_back();
      auto it = pair_count_.find(top.pair);
      const int64_t count = it == pair_count_.end() ? 0 : it->second;
      if (count != top.count) {  // stale: the pair's count fell since it was pushed
        if (count > 0) PushHeap({count, top.pair});
        continue;
      }
      // The top entry is current, so no pair occurs more often.
      if (count < options_.min_pair_count) break;
      const std::string text = gguf_[PairLeft(top.pair)] + gguf_[PairRight(top.pair)];
      if (index_.count(text) != 0) continue;  // never merged: see the header
      Merge(top.pair, text);
    }
  }

  BpeVocab Vocab() const {
    BpeVocab v;
    v.tokens = gguf_;
    v.types = types_;
    v.merges = merges_;
    v.pre = engine::PreTokenizerName(options_.pre);
    return v;
  }

  void FillSegmentation(BpeSegmentation* out) const {
    out->clear();
    out->reserve(words_.size());
    for (size_t i = 0; i < words_.size(); ++i) out->emplace(word_texts_[i], words_[i].symbols);
  }

 private:
  struct Word {
    std::vector<int32_t> symbols;
    int64_t count = 0;
  };
  struct HeapEntry {
    int64_t count;
    uint64_t pair;
  };
  // Orders the heap: the most frequent pair on top; among equal counts the pair whose
  // (left bytes, right bytes) is lexicographically smallest, compared as unsigned bytes.
  // A total order on distinct pairs, so the result never depends on hash-table order.
  struct HeapLess {
    const Trainer* t;
    bool operator()(const HeapEntry& a, const HeapEntry& b) const {
      if (a.count != b.count) return a.count < b.count;
      const std::string& al = t->raw_[PairLeft(a.pair)];
      const std::string& bl = t->raw_[PairLeft(b.pair)];
      if (al != bl) return al > bl;
      return t->raw_[PairRight(a.pair)] > t->raw_[PairRight(b.pair)];
    }
  };
  HeapLess Order() const { return {this}; }

  void AddToken(std::string raw, std::string gguf, engine::TokenType type) {
    index_.emplace(gguf, static_cast<int32_t>(gguf_.size()));
    raw_.push_back(std::move(raw));
    gguf_.push_back(std::move(gguf));
    types_.push_back(type);
  }

  void PushHeap(HeapEntry e) {
    heap_.push_back(e);
    std::push_heap(heap_.begin(), heap_.end(), Order());
  }

  void CountPairs() {
    for (size_t w = 0; w < words_.size(); ++w) {
      const Word& word = words_[w];
      for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
        const uint64_t key = PairKey(word.symbols[i], word.symbols[i + 1]);
        pair_count_[key] += word.count;
        AddWhere(key, static_cast<int32_t>(w));
      }
    }
    heap_.reserve(pair_count_.size());
    for (const auto& [key, count] : pair_count_) heap_.push_back({count, key});
    std::make_heap(heap_.begin(), heap_.end(), Order());
  }

  // Records that word `w` holds `key` (words are visited in order, so a repeat is the last).
  void AddWhere(uint64_t key, int32_t w) {
    std::vector<int32_t>& list = where_[key];
    if (list.empty() || list.back() != w) list.push_back(w);
  }

  // Makes the token `text` from `pair` and applies it to every word that holds the pair,
  // recounting the pairs of those words only.
  void Merge(uint64_t pair, const std::string& text) {
    const int32_t left = PairLeft(pair);
    const int32_t right = PairRight(pair);
    const auto id = static_cast<int32_t>(gguf_.size());
    merges_.push_back(gguf_[left] + " " + gguf_[right]);
    AddToken(raw_[left] + raw_[right], text, engine::TokenType::kNormal);

    auto where = where_.find(pair);
    std::vector<int32_t> holders = std::move(where->second);
    where_.erase(where);
    changes_.clear();
    std::vector<int32_t> merged;
    for (int32_t w : holders) {
      Word& word = words_[w];
      const std::vector<int32_t>& s = word.symbols;
      merged.clear();
      bool found = false;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
          merged.push_back(id);
          i += 2;
          found = true;
        } else {
          merged.push_back(s[i]);
          ++i;
        }
      }
      if (!found) continue;  // an index entry left behind by an earlier merge
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        changes_.emplace_back(PairKey(s[i], s[i + 1]), -word.count);
      }
      for (size_t i = 0; i + 1 < merged.size(); ++i) {
        const uint64_t key = PairKey(merged[i], merged[i + 1]);
        changes_.emplace_back(key, word.count);
        // Only pairs with the new token are new to this word.
        if (merged[i] == id || merged[i + 1] == id) AddWhere(key, w);
      }
      word.symbols.swap(merged);
    }
    // Summed per pair first: a pair whose count only moved within a word (removed and added
    // back) must not be pushed as if it had grown.
    std::sort(changes_.begin(), changes_.end());
    for (size_t i = 0; i < changes_.size();) {
      const uint64_t key = changes_[i].first;
      int64_t d = 0;
      for (; i < changes_.size() && changes_[i].first == key; ++i) d += changes_[i].second;
      if (d == 0) continue;
      int64_t& count = pair_count_[key];
      count += d;
      if (d > 0) PushHeap({count, key});  // grew: only pairs with the new token do
      if (count == 0) pair_count_.erase(key);
    }
  }

  const BpeOptions& options_;
  std::vector<Word> words_;
  std::vector<std::string> word_texts_;
  std::vector<std::string> raw_;   // token -> its bytes
  std::vector<std::string> gguf_;  // token -> its GGUF text
  std::vector<engine::TokenType> types_;
  std::unordered_map<std::string, int32_t> index_;  // GGUF text -> token
  std::vector<std::string> merges_;
  std::unordered_map<uint64_t, int64_t> pair_count_;  // weighted by word counts
  // Pair -> words that held it when it was added; some may no longer (checked on use).
  std::unordered_map<uint64_t, std::vector<int32_t>> where_;
  std::vector<HeapEntry> heap_;  // pushes are lazy: an entry may overstate its pair's count
  std::vector<std::pair<uint64_t, int64_t>> changes_;  // (pair, count change) of one merge
};

}  // namespace

const std::string& ByteTokenText(uint8_t byte) { return ByteTexts()[byte]; }

std::vector<BpeWord> SplitIntoWords(std::string_view text,
                                    const std::vector<std::string>& special_tokens,
                                    engine::PreTokenizer pre) {
  std::vector<BpeWord> words;
  ForEachWord(text, special_tokens, CutOrder(special_tokens), pre,
              [&words](std::string_view bytes, int32_t special) {
                words.push_back({std::string(bytes), special});
              });
  return words;
}

StatusOr<BpeVocab> TrainBpe(const std::vector<std::string>& texts, const BpeOptions& options) {
  return TrainBpe(texts, options, nullptr);
}

StatusOr<BpeVocab> TrainBpe(const std::vector<std::string>& texts, const BpeOptions& options,
                            BpeSegmentation* segmentation) {
  AGENTRY_RETURN_IF_ERROR(CheckOptions(options));
  std::unordered_map<std::string, int64_t> counts;
  const std::vector<int32_t> order = CutOrder(options.special_tokens);
  for (const std::string& text : texts) {
    ForEachWord(text, options.special_tokens, order, options.pre,
                [&counts](std::string_view bytes, int32_t special) {
                  if (special < 0) ++counts[std::string(bytes)];
                });
  }
  if (counts.empty()) {
    return InvalidArgumentError("BPE corpus is empty: " + std::to_string(texts.size()) +
                                " texts hold no text besides special tokens");
  }
  // Sorted, so that word indices (and the visiting order of every loop) do not depend on
  // the hash table.
  std::vector<std::pair<std::string, int64_t>> words(counts.begin(), counts.end());
  counts.clear();
  std::sort(words.begin(), words.end());
  Trainer trainer(options, std::move(words));
  trainer.Run();
  if (segmentation != nullptr) trainer.FillSegmentation(segmentation);
  return trainer.Vocab();
}

void WriteTokenizerMetadata(const BpeVocab& vocab, std::string_view chat_template,
                            engine::GgufWriter* out) {
  out->SetString("tokenizer.ggml.model", "gpt2");
  out->SetString("tokenizer.ggml.pre", vocab.pre);
  out->SetStringArray("tokenizer.ggml.tokens", vocab.tokens);
  std::vector<int32_t> types(vocab.types.size());
  for (size_t i = 0; i < types.size(); ++i) types[i] = static_cast<int32_t>(vocab.types[i]);
  out->SetInt32Array("tokenizer.ggml.token_type", types);
  out->SetStringArray("tokenizer.ggml.merges", vocab.merges);
  const auto control = [&vocab](std::string_view name) -> int32_t {
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
      if (vocab.types[i] == engine::TokenType::kControl && vocab.tokens[i] == name) {
        return static_cast<int32_t>(i);
      }
    }
    return -1;
  };
  const int32_t end_of_text = control("<|endoftext|>");
  const int32_t im_end = control("<|im_end|>");
  const int32_t eos = im_end >= 0 ? im_end : end_of_text;
  if (end_of_text >= 0) {
    out->SetUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(end_of_text));
  }
  if (eos >= 0) out->SetUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(eos));
  if (end_of_text >= 0) {
    out->SetUint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(end_of_text));
  }
  out->SetBool("tokenizer.ggml.add_bos_token", false);
  if (!chat_template.empty()) out->SetString("tokenizer.chat_template", chat_template);
}

}  // namespace agentry::train
