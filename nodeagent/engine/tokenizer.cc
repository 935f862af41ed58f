#include "nodeagent/engine/tokenizer.h"

#include <cstdio>
#include <queue>

namespace agentry::engine {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// Bytes in the UTF-8 sequence starting with `c`, judged from its first byte only (a stray
// continuation byte counts as one), as SentencePiece splits text into characters.
size_t Utf8CharLength(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

struct Symbol {
  int prev;
  int next;
  const char* text;
  size_t n;  // 0 once merged into its left neighbour
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;
};

// Highest score first; on a tie, the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

StatusOr<Tokenizer> Tokenizer::FromGguf(const GgufFile& f) {
  StatusOr<std::string_view> model = f.GetString("tokenizer.ggml.model");
  if (!model.ok()) return model.status().WithPrefix(f.name());
  if (*model != "llama") {
    return UnimplementedError(f.name() + ": tokenizer.ggml.model \"" + std::string(*model) +
                              "\" is not supported yet (supported: llama)");
  }
  Tokenizer t;
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
  AGENTRY_RETURN_IF_ERROR(read_id("tokenizer.ggml.bos_token_id", &t.bos_));
  AGENTRY_RETURN_IF_ERROR(read_id("tokenizer.ggml.eos_token_id", &t.eos_));
  AGENTRY_RETURN_IF_ERROR(read_id("tokenizer.ggml.unknown_token_id", &t.unk_));
  if (StatusOr<bool> b = f.GetBool("tokenizer.ggml.add_bos_token"); b.ok()) t.add_bos_ = *b;
  if (StatusOr<bool> s = f.GetBool("tokenizer.ggml.add_space_prefix"); s.ok()) {
    t.add_space_prefix_ = *s;
  }
  t.byte_values_.assign(n, -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    t.byte_tokens_[b] = t.Find(name);
    if (t.byte_tokens_[b] >= 0) t.byte_values_[t.byte_tokens_[b]] = static_cast<int16_t>(b);
  }
  return t;
}

int32_t Tokenizer::Find(std::string_view piece) const {
  auto it = index_.find(std::string(piece));
  return it == index_.end() ? -1 : it->second;
}

void Tokenizer::AppendByteTokens(std::string_view bytes, std::vector<int32_t>* out) const {
  for (unsigned char c : bytes) {
    const int32_t id = byte_tokens_[c];
    out->push_back(id >= 0 ? id : unk_);
  }
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos) out.push_back(bos_);
  if (text.empty()) return out;

  // Spaces become U+2581, with one added in front.
  std::string escaped;
  escaped.reserve(text.size() * 3 + 3);
  if (add_space_prefix_) escaped.append(kSpaceMarker);
  for (char c : text) {
    if (c == ' ') {
      escaped.append(kSpaceMarker);
    } else {
      escaped.push_back(c);
    }
  }

  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < escaped.size();) {
    const size_t len = std::min(Utf8CharLength(static_cast<unsigned char>(escaped[offset])),
                                escaped.size() - offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, index + 1, escaped.data() + offset, len});
    offset += len;
  }
  symbols.back().next = -1;

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string_view piece(symbols[left].text, symbols[left].n + symbols[right].n);
    const int32_t id = Find(piece);
    if (id < 0) return;
    queue.push({left, right, scores_[id], piece.size()});
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add(static_cast<int>(i) - 1, static_cast<int>(i));

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    // Skip pairs made stale by an earlier merge.
    if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int i = 0; i >= 0 && !symbols.empty(); i = symbols[i].next) {
    const std::string_view piece(symbols[i].text, symbols[i].n);
    const int32_t id = Find(piece);
    if (id >= 0) {
      out.push_back(id);
    } else {
      AppendByteTokens(piece, &out);  // not in the vocabulary: one token per byte
    }
  }
  return out;
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
    default:
      break;
  }
  std::string out;
  const std::string& text = tokens_[id];
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
