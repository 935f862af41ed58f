// nodeagent/constrain/matcher.cc — see matcher.h.
#include "nodeagent/constrain/matcher.h"

#include <algorithm>

namespace agentry::constrain {

using internal::Frame;
using internal::Node;
using internal::NodeKind;
using internal::StepResult;

namespace internal {
namespace {

// JSON string frames: `a` counts the code points started so far; `b` packs a phase (low 8
// bits), a small count (bits 8..11) and a value (bits 12..31) whose meaning depends on it.
enum StringPhase : uint32_t {
  kOpen = 0,           // before the opening quote
  kBody = 1,           // between characters
  kEscape = 2,         // after a backslash
  kHex = 3,            // in \uXXXX: count = digits read, value = their value
  kNeedBackslash = 4,  // after a high-surrogate escape, which must be followed by a low one
  kNeedU = 5,          // after that backslash
  kLowHex = 6,         // in the low surrogate's hex digits: count = digits read
  kUtf8 = 7,           // in a multi-byte character: count = continuation bytes left,
                       // value = which range the next one must fall in (kContinuation*)
};

// The range of the next UTF-8 continuation byte; the first one after E0, ED, F0 and F4 is
// narrower, which is what rules out overlong forms, surrogates and code points past U+10FFFF.
enum Continuation : uint32_t {
  kContinuationAny = 0,  // 80..BF
  kContinuationE0 = 1,   // A0..BF
  kContinuationED = 2,   // 80..9F
  kContinuationF0 = 3,   // 90..BF
  kContinuationF4 = 4,   // 80..8F
};

constexpr uint32_t Pack(uint32_t phase, uint32_t count = 0, uint32_t value = 0) {
  return phase | (count << 8) | (value << 12);
}
constexpr uint32_t PhaseOf(uint32_t b) { return b & 0xFF; }
constexpr uint32_t CountOf(uint32_t b) { return (b >> 8) & 0xF; }
constexpr uint32_t ValueOf(uint32_t b) { return b >> 12; }

int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }

StepResult StepString(Frame* f, unsigned char c) {
  const uint32_t phase = PhaseOf(f->b);
  switch (phase) {
    case kOpen:
      if (c != '"') return StepResult::kReject;
      f->b = Pack(kBody);
      return StepResult::kStay;
    case kBody: {
      if (c == '"') return f->a >= f->node->min ? StepResult::kPop : StepResult::kReject;
      if (f->a >= f->node->max) return StepResult::kReject;  // no room for a character
      if (c < 0x20) return StepResult::kReject;              // control characters must be escaped
      uint32_t next;
      if (c == '\\') {
        next = Pack(kEscape);
      } else if (c < 0x80) {
        next = Pack(kBody);
      } else if (c >= 0xC2 && c <= 0xDF) {
        next = Pack(kUtf8, 1, kContinuationAny);
      } else if (c == 0xE0) {
        next = Pack(kUtf8, 2, kContinuationE0);
      } else if (c == 0xED) {
        next = Pack(kUtf8, 2, kContinuationED);
      } else if (c >= 0xE1 && c <= 0xEF) {
        next = Pack(kUtf8, 2, kContinuationAny);
      } else if (c == 0xF0) {
        next = Pack(kUtf8, 3, kContinuationF0);
      } else if (c >= 0xF1 && c <= 0xF3) {
        next = Pack(kUtf8, 3, kContinuationAny);
      } else if (c == 0xF4) {
        next = Pack(kUtf8, 3, kContinuationF4);
      } else {
        return StepResult::kReject;  // continuation byte, C0/C1 or F5..FF
      }
      ++f->a;
      f->b = next;
      return StepResult::kStay;
    }
    case kUtf8: {
      static constexpr unsigned char kLow[] = {0x80, 0xA0, 0x80, 0x90, 0x80};
      static constexpr unsigned char kHigh[] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
      const uint32_t range = ValueOf(f->b);
      if (c < kLow[range] || c > kHigh[range]) return StepResult::kReject;
      const uint32_t left = CountOf(f->b) - 1;
      f->b = left == 0 ? Pack(kBody) : Pack(kUtf8, left, kContinuationAny);
      return StepResult::kStay;
    }
    case kEscape:
      switch (c) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          f->b = Pack(kBody);
          return StepResult::kStay;
        case 'u':
          f->b = Pack(kHex, 0, 0);
          return StepResult::kStay;
        default:
          return StepResult::kReject;
      }
    case kHex: {
      const int h = HexValue(c);
      if (h < 0) return StepResult::kReject;
      const uint32_t count = CountOf(f->b);
      const uint32_t value = (ValueOf(f->b) << 4) | static_cast<uint32_t>(h);
      // A low surrogate (DC00..DFFF) may not come first; its second digit shows it.
      if (count == 1 && value >= 0xDC && value <= 0xDF) return StepResult::kReject;
      if (count < 3) {
        f->b = Pack(kHex, count + 1, value);
      } else {
        f->b = value >= 0xD800 && value <= 0xDBFF ? Pack(kNeedBackslash) : Pack(kBody);
      }
      return StepResult::kStay;
    }
    case kNeedBackslash:
      if (c != '\\') return StepResult::kReject;
      f->b = Pack(kNeedU);
      return StepResult::kStay;
    case kNeedU:
      if (c != 'u') return StepResult::kReject;
      f->b = Pack(kLowHex, 0);
      return StepResult::kStay;
    case kLowHex: {
      const int h = HexValue(c);
      const uint32_t count = CountOf(f->b);
      // DC00..DFFF: the first digit is D, the second C..F.
      if (h < 0 || (count == 0 && h != 0xD) || (count == 1 && h < 0xC)) {
        return StepResult::kReject;
      }
      f->b = count < 3 ? Pack(kLowHex, count + 1) : Pack(kBody);
      return StepResult::kStay;
    }
    default:
      return StepResult::kReject;
  }
}

// JSON integer frames: `b` is the phase, `a` the digits so far.
enum IntegerPhase : uint32_t { kIntStart = 0, kIntMinus = 1, kIntDigits = 2 };

StepResult StepInteger(Frame* f, unsigned char c) {
  switch (f->b) {
    case kIntStart:
    case kIntMinus:
      if (c == '-' && f->b == kIntStart) {
        f->b = kIntMinus;
        return StepResult::kStay;
      }
      if (c == '0') return StepResult::kPop;  // no digit may follow a leading zero
      if (c < '1' || c > '9') return StepResult::kReject;
      f->b = kIntDigits;
      f->a = 1;
      return StepResult::kStayOrPop;
    case kIntDigits:
      if (!IsDigit(c) || f->a >= kMaxIntegerDigits) return StepResult::kReject;
      ++f->a;
      return f->a < kMaxIntegerDigits ? StepResult::kStayOrPop : StepResult::kPop;
    default:
      return StepResult::kReject;
  }
}

// JSON number frames: `a` is the digit count of the current part, or the exponent's value;
// `b` packs the phase (low 8 bits), the exponent's digit count (bits 8..11), whether the
// exponent is negative (bit 12) and the integer part's digit count (bits 13..).
enum NumberPhase : uint32_t {
  kNumStart = 0,
  kNumMinus = 1,
  kNumZero = 2,      // integer part "0"
  kNumInt = 3,       // integer part [1-9][0-9]*
  kNumDot = 4,       // after '.', a digit must follow
  kNumFraction = 5,  // fraction digits
  kNumE = 6,         // after 'e'/'E'
  kNumExpSign = 7,   // after the exponent's sign, a digit must follow
  kNumExp = 8,       // exponent digits
};

constexpr uint32_t PackNumber(uint32_t phase, uint32_t int_digits, bool negative_exp = false,
                              uint32_t exp_digits = 0) {
  return phase | (exp_digits << 8) | (uint32_t{negative_exp} << 12) | (int_digits << 13);
}
constexpr uint32_t IntDigitsOf(uint32_t b) { return b >> 13; }
constexpr bool NegativeExpOf(uint32_t b) { return ((b >> 12) & 1) != 0; }

// Whether exponent digits `value` (so far `count` of them) may be followed by `next`.
bool ExponentFits(uint32_t b, uint32_t count, uint32_t value) {
  if (count > kMaxExponentDigits) return false;
  return NegativeExpOf(b) || IntDigitsOf(b) + value <= kMaxDecimalExponent;
}

StepResult ExponentDigit(Frame* f, unsigned char c, uint32_t count, uint32_t value) {
  if (!IsDigit(c)) return StepResult::kReject;
  const uint32_t next = value * 10 + (c - '0');
  if (!ExponentFits(f->b, count + 1, next)) return StepResult::kReject;
  f->a = next;
  f->b = PackNumber(kNumExp, IntDigitsOf(f->b), NegativeExpOf(f->b), count + 1);
  return ExponentFits(f->b, count + 2, next * 10) ? StepResult::kStayOrPop : StepResult::kPop;
}

StepResult StepNumber(Frame* f, unsigned char c) {
  const uint32_t phase = PhaseOf(f->b);
  switch (phase) {
    case kNumStart:
    case kNumMinus:
      if (c == '-' && phase == kNumStart) {
        f->b = kNumMinus;
        return StepResult::kStay;
      }
      if (c == '0') {
        f->b = kNumZero;
        f->a = 1;
        return StepResult::kStayOrPop;  // "." or an exponent may follow
      }
      if (c < '1' || c > '9') return StepResult::kReject;
      f->b = kNumInt;
      f->a = 1;
      return StepResult::kStayOrPop;
    case kNumZero:
    case kNumInt:
    case kNumFraction: {
      const uint32_t int_digits = phase == kNumFraction ? IntDigitsOf(f->b) : f->a;
      if (c == 'e' || c == 'E') {
        f->b = PackNumber(kNumE, int_digits);
        f->a = 0;
        return StepResult::kStay;
      }
      if (c == '.' && phase != kNumFraction) {
        f->b = PackNumber(kNumDot, int_digits);
        f->a = 0;
        return StepResult::kStay;
      }
      if (IsDigit(c) && phase != kNumZero) {
        const uint32_t limit = phase == kNumInt ? kMaxIntegerDigits : kMaxFractionDigits;
        if (f->a >= limit) return StepResult::kReject;
        ++f->a;
        return StepResult::kStayOrPop;  // '.' or an exponent may still follow
      }
      return StepResult::kReject;
    }
    case kNumDot:
      if (!IsDigit(c)) return StepResult::kReject;
      f->b = PackNumber(kNumFraction, IntDigitsOf(f->b));
      f->a = 1;
      return StepResult::kStayOrPop;
    case kNumE:
      if (c == '+' || c == '-') {
        f->b = PackNumber(kNumExpSign, IntDigitsOf(f->b), c == '-');
        return StepResult::kStay;
      }
      return ExponentDigit(f, c, 0, 0);
    case kNumExpSign:
      return ExponentDigit(f, c, 0, 0);
    case kNumExp:
      return ExponentDigit(f, c, CountOf(f->b), f->a);
    default:
      return StepResult::kReject;
  }
}

}  // namespace

bool InStringBody(const Frame& frame, uint32_t* room) {
  if (frame.node->kind != NodeKind::kString || PhaseOf(frame.b) != kBody) return false;
  *room = frame.node->max - frame.a;  // a <= max always: a character starts only below max
  return true;
}

StepResult StepTerminal(Frame* frame, unsigned char byte) {
  switch (frame->node->kind) {
    case NodeKind::kLiteral: {
      const std::string& bytes = frame->node->bytes;
      if (static_cast<unsigned char>(bytes[frame->a]) != byte) return StepResult::kReject;
      ++frame->a;
      return frame->a == bytes.size() ? StepResult::kPop : StepResult::kStay;
    }
    case NodeKind::kString:
      return StepString(frame, byte);
    case NodeKind::kInteger:
      return StepInteger(frame, byte);
    case NodeKind::kNumber:
      return StepNumber(frame, byte);
    default:
      return StepResult::kReject;  // not a terminal; Expand never leaves one on top
  }
}

}  // namespace internal

namespace {

// Saved stacks while Expand forks; a stack discipline shared by the recursive calls.
thread_local std::vector<Frame> t_saved;

bool SameFrame(const Frame& x, const Frame& y) {
  return x.node == y.node && x.a == y.a && x.b == y.b;
}

}  // namespace

Matcher::Matcher(const Grammar& grammar) : root_(grammar.node()) {
  frames_.push_back(Frame{root_.get(), 0, 0});
  Expand(0);
  Dedup();
}

void Matcher::Expand(size_t begin) {
  for (;;) {
    if (frames_.size() == begin) {  // nothing left to match: a whole match
      ends_.push_back(static_cast<uint32_t>(begin));
      return;
    }
    const Frame top = frames_.back();
    const Node* node = top.node;
    switch (node->kind) {
      case NodeKind::kEmpty:
        frames_.pop_back();
        break;
      case NodeKind::kLiteral:
      case NodeKind::kString:
      case NodeKind::kInteger:
      case NodeKind::kNumber:
        ends_.push_back(static_cast<uint32_t>(frames_.size()));
        return;
      case NodeKind::kSequence: {
        const Node* child = node->children[top.a].get();
        if (top.a + 1 == node->children.size()) {
          frames_.back() = Frame{child, 0, 0};  // the last part: nothing to come back to
        } else {
          frames_.back().a = top.a + 1;
          frames_.push_back(Frame{child, 0, 0});
        }
        break;
      }
      case NodeKind::kChoice:
      case NodeKind::kRepeat: {
        const bool is_choice = node->kind == NodeKind::kChoice;
        const uint32_t done = top.a;
        if (!is_choice && done >= node->max) {
          frames_.pop_back();
          break;
        }
        // Variants of this stack: one per alternative; for a repetition, "another item"
        // and, once there are enough, "stop". All but the last are expanded recursively on
        // copies; the last continues this loop, so long chains of choices (an object's
        // optional properties) do not deepen the recursion.
        const size_t variants = is_choice ? node->children.size() : (done >= node->min ? 2 : 1);
        const size_t length = frames_.size() - begin;
        const size_t saved = t_saved.size();
        t_saved.insert(t_saved.end(), frames_.begin() + static_cast<std::ptrdiff_t>(begin),
                       frames_.end());
        frames_.resize(begin);
        for (size_t v = 0; v < variants; ++v) {
          const size_t stack = frames_.size();
          frames_.insert(frames_.end(), t_saved.begin() + static_cast<std::ptrdiff_t>(saved),
                         t_saved.begin() + static_cast<std::ptrdiff_t>(saved + length));
          if (is_choice) {
            frames_.back() = Frame{node->children[v].get(), 0, 0};
          } else if (v + 1 < variants) {
            frames_.pop_back();  // stop
          } else {
            // Another item (after a separator unless it is the first). An unbounded count
            // saturates once it passes min, so equal states compare equal.
            uint32_t next = done + 1;
            if (node->max == kUnbounded) next = std::min(next, std::max<uint32_t>(node->min, 1));
            frames_.back().a = next;
            frames_.push_back(Frame{node->children[0].get(), 0, 0});
            if (done > 0) frames_.push_back(Frame{node->children[1].get(), 0, 0});
          }
          if (v + 1 < variants) {
            Expand(stack);
          } else {
            begin = stack;
          }
        }
        t_saved.resize(saved);
        break;
      }
    }
  }
}

void Matcher::Dedup() {
  const size_t n = ends_.size();
  if (n < 2) return;
  thread_local std::vector<uint64_t> hashes;
  hashes.clear();
  size_t write = 0;  // frames kept so far
  size_t kept = 0;   // stacks kept so far
  uint32_t b = 0;    // where stack i began before any was moved
  for (size_t i = 0; i < n; ++i) {
    const uint32_t e = ends_[i];  // kept <= i, so ends_[i] is still stack i's own end
    uint64_t h = 1469598103934665603ULL ^ (e - b);
    for (uint32_t k = b; k < e; ++k) {
      const Frame& f = frames_[k];
      h = (h ^ reinterpret_cast<uintptr_t>(f.node)) * 1099511628211ULL;
      h = (h ^ ((uint64_t{f.a} << 32) | f.b)) * 1099511628211ULL;
    }
    bool duplicate = false;
    for (size_t j = 0; j < kept && !duplicate; ++j) {
      if (hashes[j] != h) continue;
      const uint32_t jb = j == 0 ? 0 : ends_[j - 1];
      const uint32_t je = ends_[j];
      if (je - jb != e - b) continue;
      duplicate =
          std::equal(frames_.begin() + jb, frames_.begin() + je, frames_.begin() + b, SameFrame);
    }
    if (!duplicate) {
      if (write != b) std::copy(frames_.begin() + b, frames_.begin() + e, frames_.begin() + write);
      write += e - b;
      ends_[kept++] = static_cast<uint32_t>(write);
      hashes.push_back(h);
    }
    b = e;
  }
  ends_.resize(kept);
  frames_.resize(write);
}

bool Matcher::AdvanceFrom(const Matcher& src, const Frame* tops, unsigned char byte, Matcher* out) {
  out->frames_.clear();
  out->ends_.clear();
  for (size_t i = 0; i < src.ends_.size(); ++i) {
    const uint32_t b = src.begin(i);
    const uint32_t e = src.ends_[i];
    Frame top;
    if (tops != nullptr) {
      top = tops[i];
      if (top.node == nullptr) continue;
    } else {
      if (b == e) continue;  // a finished match takes no more bytes
      top = src.frames_[e - 1];
    }
    const StepResult r = internal::StepTerminal(&top, byte);
    if (r == StepResult::kReject) continue;
    const auto below_begin = src.frames_.begin() + b;
    const auto below_end = src.frames_.begin() + (e - 1);
    size_t stack = out->frames_.size();
    out->frames_.insert(out->frames_.end(), below_begin, below_end);
    if (r == StepResult::kStay || r == StepResult::kStayOrPop) {
      out->frames_.push_back(top);
      out->ends_.push_back(static_cast<uint32_t>(out->frames_.size()));
      if (r == StepResult::kStay) continue;
      // Also the reading where the terminal ends here.
      stack = out->frames_.size();
      out->frames_.insert(out->frames_.end(), below_begin, below_end);
    }
    out->Expand(stack);
  }
  if (out->ends_.empty()) return false;
  out->Dedup();
  return true;
}

bool Matcher::Advance(unsigned char byte) {
  thread_local Matcher next;
  if (!AdvanceFrom(*this, nullptr, byte, &next)) return false;
  frames_.swap(next.frames_);
  ends_.swap(next.ends_);
  return true;
}

bool Matcher::AdvanceAll(std::string_view bytes) {
  Matcher copy = *this;
  for (char c : bytes) {
    if (!copy.Advance(static_cast<unsigned char>(c))) return false;
  }
  frames_.swap(copy.frames_);
  ends_.swap(copy.ends_);
  return true;
}

bool Matcher::IsComplete() const {
  for (size_t i = 0; i < ends_.size(); ++i) {
    if (begin(i) == ends_[i]) return true;
  }
  return false;
}

bool Matcher::CanContinue() const {
  for (size_t i = 0; i < ends_.size(); ++i) {
    if (begin(i) != ends_[i]) return true;
  }
  return false;
}

}  // namespace agentry::constrain
