// kernels/cpu/prefetch.h — software prefetch for rows read further apart than their length.
//
// Attention's cached keys and values hold every KV head of a position in one row, and a
// work item reads one head's slice of each: a stream with gaps, 1 KiB apart on the node
// daemon's bench model, which the hardware prefetchers do not follow, so decode attention
// over a long history waited on memory at a fraction of its bandwidth. The kernels that read
// such rows fetch the row kStridedPrefetchRows ahead; contiguous rows (weights) need none
// and get none. SSE's prefetch only: any table may include this.
#pragma once

#include <xmmintrin.h>

#include <algorithm>
#include <cstdint>

namespace agentry::kernels {
// Internal linkage, as simd_avx2.h's helpers and for the same reason: files built for
// different instruction sets include this, and an out-of-line copy built for a wider set must
// never be the one the linker keeps for a narrower set's callers.
namespace {

inline constexpr int64_t kStridedPrefetchRows = 16;

// Every cache line of [p, p + bytes) into L1.
[[gnu::always_inline]] inline void prefetch_span(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
  _mm_prefetch(c + bytes - 1, _MM_HINT_T0);  // a span that starts mid-line ends in one more
}

// `bytes` of each of the `count` rows kStridedPrefetchRows after `row`, rows `stride` bytes
// apart from `base`, those below `rows`.
[[gnu::always_inline]] inline void prefetch_rows_ahead(const void* base, int64_t stride,
                                                       int64_t row, int64_t count, int64_t rows,
                                                       int64_t bytes) {
  const char* b = static_cast<const char*>(base);
  const int64_t end = std::min(rows, row + kStridedPrefetchRows + count);
  for (int64_t i = row + kStridedPrefetchRows; i < end; ++i) prefetch_span(b + i * stride, bytes);
}

}  // namespace
}  // namespace agentry::kernels
