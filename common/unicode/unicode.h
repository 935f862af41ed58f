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
