// common/unicode/unicode.h — UTF-8 decoding and code point properties for tokenizers.
//
//   for (uint32_t cp : unicode::DecodeUtf8Lossy(text)) {
//     if (unicode::Flags(cp) & unicode::kLetter) ...
//   }
//
// Properties come from the Unicode Character Database (general category classes and
// White_Space), generated into unicode_data.cc by scripts/gen-unicode-data. The lossy decoder
// turns each byte that does not start a well-formed sequence into U+FFFD and moves on by one
// byte, which is what llama.cpp's tokenizers do, so that token ids agree on any input.
// Callers that must refuse bad input use CheckUtf8 first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace agentry::unicode {

inline constexpr uint32_t kReplacementCharacter = 0xFFFD;

// Bits of Flags(). Exactly one class bit is set for every code point up to U+10FFFF.
enum : uint16_t {
  kLetter = 1 << 0,       // \p{L}
  kNumber = 1 << 1,       // \p{N}
  kMark = 1 << 2,         // \p{M}
  kPunctuation = 1 << 3,  // \p{P}
  kSymbol = 1 << 4,       // \p{S}
  kSeparator = 1 << 5,    // \p{Z}
  kControl = 1 << 6,      // \p{C} except unassigned
  kUnassigned = 1 << 7,   // \p{Cn}, and values above U+10FFFF
  kWhitespace = 1 << 8,   // White_Space (regex \s)
};

uint16_t Flags(uint32_t cp);

// The length of the UTF-8 sequence that `lead` starts (1 to 4), from the lead byte alone; 0
// for a byte that cannot start one (a continuation byte, 0xF8 and above). The lead's value
// bits are `lead & (0x7F >> length)` for lengths 2 to 4.
inline size_t Utf8LengthFromLead(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

// The code point at text[*offset], advancing *offset past it. A byte that does not start a
// well-formed sequence (a stray continuation byte, a truncated sequence, a lead byte above
// 0xF7) gives U+FFFD and advances by one byte. Requires *offset < text.size().
uint32_t DecodeUtf8Lossy(std::string_view text, size_t* offset);
std::vector<uint32_t> DecodeUtf8Lossy(std::string_view text);

void AppendUtf8(uint32_t cp, std::string* out);

// OK for well-formed UTF-8 (no overlong forms, surrogates or values above U+10FFFF);
// otherwise InvalidArgument naming the byte offset of the first bad sequence.
Status CheckUtf8(std::string_view text);

// ASCII-only lower case: enough for the contraction rules of BPE pre-tokenizers ('S, 'LL).
inline uint32_t AsciiLower(uint32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp; }

}  // namespace agentry::unicode
