#include "common/unicode/unicode.h"

#include <algorithm>

#include "common/json_escape.h"
#include "common/unicode/unicode_data.h"

namespace agentry::unicode {

uint16_t Flags(uint32_t cp) {
  using internal::kCodepointRunCount;
  using internal::kCodepointRuns;
  if (cp > 0x10FFFF) return kUnassigned;
  // The last run whose start is <= cp.
  const internal::CodepointRun* end = kCodepointRuns + kCodepointRunCount;
  const internal::CodepointRun* run = std::upper_bound(
      kCodepointRuns, end, cp,
      [](uint32_t value, const internal::CodepointRun& r) { return value < r.start; });
  return (run - 1)->flags;
}

uint32_t DecodeUtf8Lossy(std::string_view text, size_t* offset) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[*offset + i]); };
  const size_t left = text.size() - *offset;
  const uint8_t lead = byte(0);
  if (lead < 0x80) {
    *offset += 1;
    return lead;
  }
  const size_t len = Utf8LengthFromLead(lead);
  uint32_t cp = lead & (0x7F >> len);
  // Only the continuation bytes are checked, not overlong forms or surrogates: that is the
  // decoder llama.cpp tokenizes with, and token ids must agree with it.
  bool ok = len != 0 && len <= left;
  for (size_t i = 1; ok && i < len; ++i) {
    ok = (byte(i) & 0xC0) == 0x80;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  if (!ok) {
    *offset += 1;
    return kReplacementCharacter;
  }
  *offset += len;
  return cp;
}

std::vector<uint32_t> DecodeUtf8Lossy(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  for (size_t offset = 0; offset < text.size();) out.push_back(DecodeUtf8Lossy(text, &offset));
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | ((cp >> 18) & 0x07)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

Status CheckUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t len = Utf8SequenceLength(text.substr(i));
    if (len == 0) {
      return InvalidArgumentError("invalid UTF-8 at byte " + std::to_string(i));
    }
    i += len;
  }
  return OkStatus();
}

}  // namespace agentry::unicode
