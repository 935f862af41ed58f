#include "nodeagent/engine/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>
#include <queue>

#include "common/unicode/unicode.h"

namespace agentry::engine {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// Bytes in the UTF-8 sequence starting with `c`, judged from its first byte only (a byte
// that cannot start one counts as one), as llama.cpp's tokenizers split words into symbols.
size_t Utf8CharLength(unsigned char c) {
  return std::max<size_t>(unicode::Utf8LengthFromLead(c), 1);
}

// Byte-level BPE stores every byte as a printable code point (GPT-2's bytes_to_unicode):
// the printable Latin-1 bytes stand for themselves, the other 68 are numbered from U+0100
// in byte order. So a space is "Ġ" (U+0120) and a newline "Ċ" (U+010A).
struct ByteMap {
  std::array<uint32_t, 256> to_codepoint;
  std::array<std::string, 256> to_utf8;
  std::unordered_map<uint32_t, uint8_t> to_byte;
};

const ByteMap& GetByteMap() {
  static const ByteMap map = [] {
    ByteMap m;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      m.to_codepoint[b] = printable ? static_cast<uint32_t>(b) : next++;
      unicode::AppendUtf8(m.to_codepoint[b], &m.to_utf8[b]);
      m.to_byte.emplace(m.to_codepoint[b], static_cast<uint8_t>(b));
    }
    return m;
  }();
  return map;
}

// Tokens that end a turn in the chat formats of the families llama.cpp knows, by text.
bool IsEndOfTurnText(std::string_view t) {
  static constexpr std::string_view kNames[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>",         "<end_of_turn>",     "<|endoftext|>",
      "<|eom_id|>", "<EOT>",      "<|end_of_text|>", "<end_of_utterance>"};
  return std::find(std::begin(kNames), std::end(kNames), t) != std::end(kNames);
}

// One piece of a word while it is being merged: a doubly linked list over the word.
struct Symbol {
  int prev;
  int next;
  const char* text;
  size_t n;  // 0 once merged into its left neighbour
};

// A pair of adjacent symbols that may merge: the highest priority first (SentencePiece: the
// merged piece's score; byte-level BPE: minus the merge's rank), on a tie the leftmost.
struct Candidate {
  int left;
  int right;
  float priority;
  size_t size;
};
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
  }
};

std::vector<Symbol> SplitIntoCharacters(std::string_view word) {
  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < word.size();) {
    const size_t len =
        std::min(Utf8CharLength(static_cast<unsigned char>(word[offset])), word.size() - offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, index + 1, word.data() + offset, len});
    offset += len;
  }
  if (!symbols.empty()) symbols.back().next = -1;
  return symbols;
}

// Merges `right` into `left`; false when the pair went stale through an earlier merge.
bool MergeSymbols(std::vector<Symbol>* symbols, int left, int right, size_t size) {
  Symbol& l = (*symbols)[left];
  Symbol& r = (*symbols)[right];
  if (l.n == 0 || r.n == 0 || l.n + r.n != size) return false;
  l.n += r.n;
  r.n = 0;
  l.next = r.next;
  if (r.next >= 0) (*symbols)[r.next].prev = left;
  return true;
}

// The pieces `word` merges into, in order: adjacent symbols merge, best candidate first, while
// `priority(left, right)` gives one (a float, or nullopt when the pair may not merge).
template <typename PriorityFn>
std::vector<std::string_view> MergePairs(std::string_view word, PriorityFn priority) {
  std::vector<Symbol> symbols = SplitIntoCharacters(word);
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string_view l(symbols[left].text, symbols[left].n);
    const std::string_view r(symbols[right].text, symbols[right].n);
    if (std::optional<float> p = priority(l, r)) queue.push({left, right, *p, l.size() + r.size()});
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    if (!MergeSymbols(&symbols, c.left, c.right, c.size)) continue;
    try_add(symbols[c.left].prev, c.left);
    try_add(c.left, symbols[c.left].next);
  }
  std::vector<std::string_view> pieces;
  for (int i = 0; i >= 0 && !symbols.empty(); i = symbols[i].next) {
    pieces.emplace_back(symbols[i].text, symbols[i].n);
  }
  return pieces;
}

}  // namespace

StatusOr<Tokenizer> Tokenizer::FromGguf(const GgufFile& f) {
  StatusOr<std::string_view> model = f.GetString("tokenizer.ggml.model");
  if (!model.ok()) return model.status().WithPrefix(f.name());
  Tokenizer t;
  if (*model == "gpt2") {
    t.model_ = Model::kByteLevelBpe;
    StatusOr<std::string_view> pre = f.GetString("tokenizer.ggml.pre");
    if (!pre.ok()) {
      return InvalidArgumentError(f.name() +
                                  ": tokenizer.ggml.pre is missing; byte-level BPE needs the "
                                  "pre-tokenizer to split words the way the model was trained");
    }
    StatusOr<PreTokenizer> p = PreTokenizerFromName(*pre);
    if (!p.ok()) return p.status().WithPrefix(f.name());
    t.pre_ = *p;
    // What llama.cpp assumes for these families before the file's own flags.
    t.ignore_merges_ = t.pre_ == PreTokenizer::kLlama3;
    t.add_bos_ = t.pre_ == PreTokenizer::kLlama3;
    t.add_space_prefix_ = false;
    t.bos_ = -1;
    t.eos_ = -1;
    t.unk_ = -1;
  } else if (*model != "llama") {
    return UnimplementedError(f.name() + ": tokenizer.ggml.model \"" + std::string(*model) +
                              "\" is not supported (supported: llama, gpt2)");
  }
  AGENTRY_ASSIGN_OR_RETURN(const std::vector<std::string_view>* tokens,
                           f.GetStringArray("tokenizer.ggml.tokens"));
  const size_t n = tokens->size();
  if (n == 0 || n > (size_t{1} << 24)) {
    return InvalidArgumentError(f.name() + ": tokenizer.ggml.tokens: " + std::to_string(n) +
                                " tokens (want 1 to 2^24)");
  }
  t.tokens_.assign(tokens->begin(), tokens->end());
  StatusOr<std::vector<float>> scores = f.GetFloatArray("tokenizer.ggml.scores");
  t.scores_ = scores.ok() ? std::move(scores).value() : std::vector<float>(n, 0.0f);
  StatusOr<std::vector<int64_t>> types = f.GetIntArray("tokenizer.ggml.token_type");
  t.types_.assign(n, TokenType::kNormal);
  if (types.ok()) {
    if (types->size() != n) {
      return InvalidArgumentError(f.name() + ": tokenizer.ggml.token_type has " +
                                  std::to_string(types->size()) + " entries for " +
                                  std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < n; ++i) t.types_[i] = static_cast<TokenType>((*types)[i]);
  }
  if (t.scores_.size() != n) {
    return InvalidArgumentError(f.name() + ": tokenizer.ggml.scores has " +
                                std::to_string(t.scores_.size()) + " entries for " +
                                std::to_string(n) + " tokens");
  }
  t.index_.reserve(n);
  for (size_t i = 0; i < n; ++i) t.index_.emplace(t.tokens_[i], static_cast<int32_t>(i));

  if (t.model_ == Model::kByteLevelBpe) {
    AGENTRY_ASSIGN_OR_RETURN(const std::vector<std::string_view>* merges,
                             f.GetStringArray("tokenizer.ggml.merges"));
    if (merges->size() >= (size_t{1} << 24)) {
      return InvalidArgumentError(f.name() + ": tokenizer.ggml.merges: " +
                                  std::to_string(merges->size()) + " merges (want below 2^24)");
    }
    t.merge_ranks_.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string_view m = (*merges)[i];
      // "left right"; the separator is the first space after the first character, since a
      // piece may itself begin with a space.
      const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
      if (space == std::string_view::npos) {
        return InvalidArgumentError(f.name() + ": tokenizer.ggml.merges[" + std::to_string(i) +
                                    "] \"" + std::string(m) + "\" is not \"left right\"");
      }
      t.merge_ranks_.emplace(std::string(m), static_cast<int>(i));
    }
  }

  auto read_id = [&](const char* key, int32_t* out) -> Status {
    StatusOr<uint64_t> v = f.GetUint(key);
    if (!v.ok()) return v.status().code() == StatusCode::kNotFound ? OkStatus() : v.status();
    if (*v >= n) {
      return InvalidArgumentError(f.name() + ": " + key + ": " + std::to_string(*v) +
                                  " is not a token id");
    }
    *out = static_cast<int32_t>(*v);
    return OkStatus();
  };
  int32_t eot = -1;
  AGENTRY_RETURN_IF_ERROR(read_id("tokenizer.ggml.bos_token_id", &t.bos_));
  AGENTRY_RETURN_IF_ERROR(read_id("tokenizer.ggml.eos_token_id", &t.eos_));
  AGENTRY_RETURN_IF_ERROR(read_id("tokenizer.ggml.unknown_token_id", &t.unk_));
  AGENTRY_RETURN_IF_ERROR(read_id("tokenizer.ggml.eot_token_id", &eot));
  if (StatusOr<bool> b = f.GetBool("tokenizer.ggml.add_bos_token"); b.ok()) t.add_bos_ = *b;
  if (StatusOr<bool> s = f.GetBool("tokenizer.ggml.add_space_prefix"); s.ok()) {
    t.add_space_prefix_ = *s && t.model_ == Model::kSentencePiece;
  }

  t.byte_values_.assign(n, -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    t.byte_tokens_[b] = t.model_ == Model::kSentencePiece ? t.Find(name) : -1;
    if (t.byte_tokens_[b] >= 0) t.byte_values_[t.byte_tokens_[b]] = static_cast<int16_t>(b);
  }

  t.end_of_generation_.assign(n, false);
  for (size_t i = 0; i < n; ++i) {
    const TokenType type = t.types_[i];
    if (type == TokenType::kControl || type == TokenType::kUserDefined ||
        type == TokenType::kUnknown) {
      if (!t.tokens_[i].empty()) t.special_.push_back(static_cast<int32_t>(i));
    }
    if (type == TokenType::kControl || type == TokenType::kUserDefined) {
      t.end_of_generation_[i] = IsEndOfTurnText(t.tokens_[i]);
    }
  }
  for (int32_t id : {t.eos_, eot}) {
    if (id >= 0) t.end_of_generation_[id] = true;
  }
  std::stable_sort(t.special_.begin(), t.special_.end(), [&t](int32_t a, int32_t b) {
    return t.tokens_[a].size() > t.tokens_[b].size();
  });
  return t;
}

int32_t Tokenizer::Find(std::string_view piece) const {
  auto it = index_.find(std::string(piece));
  return it == index_.end() ? -1 : it->second;
}

bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  return id >= 0 && id < n_vocab() && end_of_generation_[id];
}

void Tokenizer::AppendByteTokens(std::string_view bytes, std::vector<int32_t>* out) const {
  for (unsigned char c : bytes) {
    const int32_t id = byte_tokens_[c];
    out->push_back(id >= 0 ? id : unk_);
  }
}

// Each special token in turn, longest first, is cut out of every text fragment left by the
// ones before: the order llama.cpp uses, which decides between overlapping special tokens.
std::vector<Tokenizer::Fragment> Tokenizer::SplitSpecial(
    std::string_view text, bool parse_special, const std::vector<TextSpan>& literal) const {
  const auto overlaps_literal = [&literal](size_t at, size_t n) {
    return std::any_of(literal.begin(), literal.end(), [&](const TextSpan& s) {
      return at < s.offset + s.length && s.offset < at + n;
    });
  };
  std::vector<Fragment> fragments = {{-1, 0, text.size()}};
  std::vector<Fragment> next;
  for (int32_t id : special_) {
    // Control and unknown tokens need parse_special, and are not recognised inside literal
    // spans; user-defined tokens are part of the vocabulary's ordinary text and always are.
    const TokenType type = types_[id];
    const bool gated = type == TokenType::kControl || type == TokenType::kUnknown;
    if (!parse_special && gated) continue;
    const std::string& special = tokens_[id];
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t begin = f.offset;
      const size_t end = f.offset + f.length;
      for (size_t from = begin; from < end;) {
        const size_t at = text.substr(0, end).find(special, from);
        if (at == std::string_view::npos) break;
        if (gated && overlaps_literal(at, special.size())) {
          from = at + 1;
          continue;
        }
        if (at > begin) next.push_back({-1, begin, at - begin});
        next.push_back({id, at, special.size()});
        begin = from = at + special.size();
      }
      if (begin < end) next.push_back({-1, begin, end - begin});
    }
    fragments.swap(next);
  }
  return fragments;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  return Encode(text, add_bos, parse_special, {});
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_bos, bool parse_special,
                                       const std::vector<TextSpan>& literal) const {
  std::vector<int32_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  if (text.empty()) return out;
  // SentencePiece adds a space before the text, and again after every special token.
  bool after_special = true;
  for (const Fragment& f : SplitSpecial(text, parse_special, literal)) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    const std::string_view piece = text.substr(f.offset, f.length);
    if (model_ == Model::kByteLevelBpe) {
      EncodeByteLevel(piece, &out);
    } else if (add_space_prefix_ && after_special) {
      EncodeSentencePiece(" " + std::string(piece), &out);
    } else {
      EncodeSentencePiece(piece, &out);
    }
    after_special = false;
  }
  return out;
}

StatusOr<std::vector<int32_t>> Tokenizer::EncodeUtf8(std::string_view text, bool add_bos,
                                                     bool parse_special) const {
  AGENTRY_RETURN_IF_ERROR(unicode::CheckUtf8(text));
  return Encode(text, add_bos, parse_special);
}

void Tokenizer::EncodeSentencePiece(std::string_view text, std::vector<int32_t>* out) const {
  std::string escaped;
  escaped.reserve(text.size() * 3);
  for (char c : text) {
    if (c == ' ') {
      escaped.append(kSpaceMarker);
    } else {
      escaped.push_back(c);
    }
  }
  // Adjacent pieces are in one buffer, so a pair's merged text is contiguous.
  const auto score = [this](std::string_view l, std::string_view r) -> std::optional<float> {
    const int32_t id = Find(std::string_view(l.data(), l.size() + r.size()));
    if (id < 0) return std::nullopt;
    return scores_[id];
  };
  for (std::string_view piece : MergePairs(escaped, score)) {
    const int32_t id = Find(piece);
    if (id >= 0) {
      out->push_back(id);
    } else {
      AppendByteTokens(piece, out);  // not in the vocabulary: one token per byte
    }
  }
}

void Tokenizer::EncodeByteLevel(std::string_view text, std::vector<int32_t>* out) const {
  const std::vector<uint32_t> cps = unicode::DecodeUtf8Lossy(text);
  const ByteMap& bytes = GetByteMap();
  std::string utf8;
  std::string word;
  size_t start = 0;
  for (size_t length : SplitWords(pre_, cps)) {
    // Back to UTF-8 (bytes that were not valid UTF-8 are U+FFFD now), then each byte to
    // its printable code point.
    utf8.clear();
    for (size_t i = start; i < start + length; ++i) unicode::AppendUtf8(cps[i], &utf8);
    start += length;
    word.clear();
    for (unsigned char c : utf8) word += bytes.to_utf8[c];
    MergeByteLevelWord(word, out);
  }
}

int Tokenizer::MergeRank(std::string_view left, std::string_view right) const {
  thread_local std::string key;
  key.assign(left);
  key.push_back(' ');
  key.append(right);
  auto it = merge_ranks_.find(key);
  return it == merge_ranks_.end() ? -1 : it->second;
}

void Tokenizer::MergeByteLevelWord(const std::string& word, std::vector<int32_t>* out) const {
  if (ignore_merges_) {
    if (const int32_t id = Find(word); id >= 0) {
      out->push_back(id);
      return;
    }
  }
  const auto by_rank = [this](std::string_view l, std::string_view r) -> std::optional<float> {
    const int rank = MergeRank(l, r);
    if (rank < 0) return std::nullopt;
    return -static_cast<float>(rank);  // exact: FromGguf allows fewer than 2^24 merges
  };
  for (std::string_view piece : MergePairs(word, by_rank)) {
    if (const int32_t id = Find(piece); id >= 0) {
      out->push_back(id);
      continue;
    }
    // Not a token (a vocabulary without every byte): llama.cpp then tries each byte of the
    // piece as a token of its own and drops the ones that are not.
    for (char c : piece) {
      if (const int32_t id = Find(std::string_view(&c, 1)); id >= 0) out->push_back(id);
    }
  }
}

std::string Tokenizer::Piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return "";
  switch (types_[id]) {
    case TokenType::kControl:
    case TokenType::kUnknown:
    case TokenType::kUnused:
      return "";
    case TokenType::kByte:
      return byte_values_[id] >= 0 ? std::string(1, static_cast<char>(byte_values_[id])) : "";
    case TokenType::kUserDefined:
      return tokens_[id];
    default:
      break;
  }
  std::string out;
  const std::string& text = tokens_[id];
  if (model_ == Model::kByteLevelBpe) {
    const ByteMap& bytes = GetByteMap();
    for (size_t i = 0; i < text.size();) {
      const size_t begin = i;
      const uint32_t cp = unicode::DecodeUtf8Lossy(text, &i);
      auto it = bytes.to_byte.find(cp);
      if (it != bytes.to_byte.end()) {
        out.push_back(static_cast<char>(it->second));
      } else {
        out.append(text, begin, i - begin);  // not a mapped byte: keep it as written
      }
    }
    return out;
  }
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
      out.push_back(' ');
      i += kSpaceMarker.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += Piece(id);
  if (add_space_prefix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace agentry::engine
