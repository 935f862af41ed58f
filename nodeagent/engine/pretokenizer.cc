#include "nodeagent/engine/pretokenizer.h"

#include <string>

#include "common/unicode/unicode.h"

namespace agentry::engine {
namespace {

using unicode::Flags;

// A scanner over cps[begin, end): positions outside the range read as "no code point",
// which is how the regexes' lookaheads see the end of the text.
class Scanner {
 public:
  Scanner(const std::vector<uint32_t>& cps, size_t begin, size_t end, std::vector<size_t>* out)
      : cps_(cps), end_(end), word_start_(begin), out_(out) {}

  bool in_range(size_t pos) const { return pos < end_; }
  uint32_t cp(size_t pos) const { return in_range(pos) ? cps_[pos] : kNone; }
  uint16_t flags(size_t pos) const { return in_range(pos) ? Flags(cps_[pos]) : 0; }
  bool letter(size_t pos) const { return (flags(pos) & unicode::kLetter) != 0; }
  bool number(size_t pos) const { return (flags(pos) & unicode::kNumber) != 0; }
  bool space(size_t pos) const { return (flags(pos) & unicode::kWhitespace) != 0; }
  // [^\s\p{L}\p{N}]: any code point that is none of those (and is there at all).
  bool other(size_t pos) const {
    return in_range(pos) &&
           (flags(pos) & (unicode::kWhitespace | unicode::kLetter | unicode::kNumber)) == 0;
  }
  bool newline(size_t pos) const { return cp(pos) == '\r' || cp(pos) == '\n'; }

  // Ends the current word at `pos` (an empty word is dropped); returns `pos`.
  size_t Cut(size_t pos) {
    if (pos > word_start_) out_->push_back(pos - word_start_);
    word_start_ = pos;
    return pos;
  }

  // 's 't 're 've 'm 'll 'd at `pos`: the position after it, or `pos` when there is none.
  size_t Contraction(size_t pos, bool ignore_case) const {
    if (cp(pos) != '\'') return pos;
    const auto lower = [&](size_t p) { return ignore_case ? unicode::AsciiLower(cp(p)) : cp(p); };
    const uint32_t a = lower(pos + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
    const uint32_t b = lower(pos + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return pos + 3;
    return pos;
  }

  // \s+(?!\S)|\s+ at `pos`, after the other alternatives failed: a run of whitespace that
  // is followed by a non-space gives its last space to the next word.
  size_t Whitespace(size_t pos) const {
    size_t n = 0;
    while (space(pos + n)) ++n;
    if (n > 1 && in_range(pos + n)) return pos + n - 1;
    return pos + (n > 0 ? n : 1);  // n == 0: no alternative matched, one code point alone
  }

  static constexpr uint32_t kNone = 0xFFFFFFFF;

 private:
  const std::vector<uint32_t>& cps_;
  size_t end_;
  size_t word_start_;
  std::vector<size_t>* out_;
};

// llama3 (max_digits 3) and qwen2 (max_digits 1).
void SplitLlama3Style(const std::vector<uint32_t>& cps, size_t begin, size_t end, size_t max_digits,
                      std::vector<size_t>* out) {
  Scanner s(cps, begin, end, out);
  for (size_t pos = begin; pos < end;) {
    if (size_t next = s.Contraction(pos, /*ignore_case=*/true); next != pos) {
      pos = s.Cut(next);
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!s.newline(pos) && !s.number(pos) && (s.letter(pos) || s.letter(pos + 1))) {
      ++pos;
      while (s.letter(pos)) ++pos;
      s.Cut(pos);
      continue;
    }
    // \p{N}{1,max_digits}
    if (s.number(pos)) {
      size_t n = 0;
      while (s.number(pos) && n < max_digits) {
        ++pos;
        ++n;
      }
      s.Cut(pos);
      continue;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    const size_t first = s.cp(pos) == ' ' ? pos + 1 : pos;
    if (s.other(first)) {
      pos = first;
      while (s.other(pos)) ++pos;
      while (s.newline(pos)) ++pos;
      s.Cut(pos);
      continue;
    }
    // \s*[\r\n]+ : the whitespace run up to its last newline.
    size_t run = 0;
    size_t after_last_newline = 0;
    for (; s.space(pos + run); ++run) {
      if (s.newline(pos + run)) after_last_newline = pos + run + 1;
    }
    if (after_last_newline > 0) {
      pos = s.Cut(after_last_newline);
      continue;
    }
    pos = s.Cut(s.Whitespace(pos));
  }
  s.Cut(end);
}

void SplitGpt2(const std::vector<uint32_t>& cps, size_t begin, size_t end,
               std::vector<size_t>* out) {
  Scanner s(cps, begin, end, out);
  for (size_t pos = begin; pos < end;) {
    if (size_t next = s.Contraction(pos, /*ignore_case=*/false); next != pos) {
      pos = s.Cut(next);
      continue;
    }
    //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
    const size_t first = s.cp(pos) == ' ' ? pos + 1 : pos;
    if (s.letter(first)) {
      pos = first;
      while (s.letter(pos)) ++pos;
    } else if (s.number(first)) {
      pos = first;
      while (s.number(pos)) ++pos;
    } else if (s.other(first)) {
      pos = first;
      while (s.other(pos)) ++pos;
    } else {
      pos = s.Whitespace(pos);
    }
    s.Cut(pos);
  }
  s.Cut(end);
}

// \p{N} isolated first (each number code point is a word of its own), then gpt2 on the
// stretches between them.
void SplitSmolLM(const std::vector<uint32_t>& cps, std::vector<size_t>* out) {
  size_t start = 0;
  for (size_t pos = 0; pos <= cps.size(); ++pos) {
    const bool at_end = pos == cps.size();
    if (!at_end && (Flags(cps[pos]) & unicode::kNumber) == 0) continue;
    SplitGpt2(cps, start, pos, out);
    if (!at_end) out->push_back(1);
    start = pos + 1;
  }
}

}  // namespace

StatusOr<PreTokenizer> PreTokenizerFromName(std::string_view name) {
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe") return PreTokenizer::kLlama3;
  if (name == "qwen2" || name == "deepseek-r1-qwen") return PreTokenizer::kQwen2;
  if (name == "gpt-2") return PreTokenizer::kGpt2;
  if (name == "smollm" || name == "starcoder") return PreTokenizer::kSmolLM;
  return UnimplementedError("tokenizer.ggml.pre \"" + std::string(name) +
                            "\" is not supported (supported: llama-bpe/llama3, qwen2, smollm, "
                            "starcoder, gpt-2)");
}

const char* PreTokenizerName(PreTokenizer pre) {
  switch (pre) {
    case PreTokenizer::kLlama3:
      return "llama3";
    case PreTokenizer::kQwen2:
      return "qwen2";
    case PreTokenizer::kGpt2:
      return "gpt-2";
    case PreTokenizer::kSmolLM:
      return "smollm";
  }
  return "?";
}

std::vector<size_t> SplitWords(PreTokenizer pre, const std::vector<uint32_t>& cps) {
  std::vector<size_t> words;
  switch (pre) {
    case PreTokenizer::kLlama3:
      SplitLlama3Style(cps, 0, cps.size(), 3, &words);
      break;
    case PreTokenizer::kQwen2:
      SplitLlama3Style(cps, 0, cps.size(), 1, &words);
      break;
    case PreTokenizer::kGpt2:
      SplitGpt2(cps, 0, cps.size(), &words);
      break;
    case PreTokenizer::kSmolLM:
      SplitSmolLM(cps, &words);
      break;
  }
  return words;
}

}  // namespace agentry::engine
