// common/unicode/unicode_data.h — the generated code point table (unicode_data.cc); only
// unicode.cc reads it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace agentry::unicode::internal {

// Code points from `start` up to the next run's start share `flags` (unicode.h's bits).
struct CodepointRun {
  uint32_t start;
  uint16_t flags;
};

extern const CodepointRun kCodepointRuns[];
extern const size_t kCodepointRunCount;

}  // namespace agentry::unicode::internal
