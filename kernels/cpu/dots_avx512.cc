// kernels/cpu/dots_avx512.cc — kernels.h's dots_q8_0 (the node daemon's batched decode) on
// 512-bit vectors with AVX512-VNNI.
//
// Every output follows dots_q8_0_ref's order (quants.h): each block's integer dot product,
// exact, then one FMA per block into a float that starts at zero. Nothing in that order
// depends on which rows or tokens share a call, so each vector lane can be one row.
//
// Lanes are rows: a tile turns 16 rows' block b into 8 vectors, vector g holding every
// row's bytes 4g..4g+3 (an 8 x 8 transpose of dwords in each 256-bit half, shared by all the
// tile's tokens), and each token meets them with its own bytes 4g..4g+3 broadcast from
// memory. Eight vpdpbusd then leave the 16 rows' integer dots for that token in one register,
// with no horizontal sums, and one convert, multiply and FMA scale all 16. vpdpbusd takes
// unsigned bytes first, so the weights enter as w xor 0x80 = w + 128 and each dot starts from
// -128 * sum(x), computed once per token and block.
// <immintrin.h> through immintrin_avx512.h, first: GCC 12 workaround (see there).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/immintrin_avx512.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels::avx512 {
namespace {

constexpr int kTileRows = 16;
constexpr int kTileTokens = 8;
constexpr int kPrefetchLines = (kTileRows * sizeof(block_q8_0) + 63) / 64;

// What each token's blocks contribute apart from its bytes: the scale as a float, and the
// start of every integer dot (-128 times the sum of the block's bytes).
struct TokenBlocks {
  std::vector<float> scale;   // [token][block]
  std::vector<int32_t> bias;  // [token][block]
};

void PrepareTokens(const uint8_t* x, size_t xs, int64_t nb, int64_t tokens, TokenBlocks* out) {
  out->scale.resize(static_cast<size_t>(tokens * nb));
  out->bias.resize(static_cast<size_t>(tokens * nb));
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t t = 0; t < tokens; ++t) {
    const auto* xb = reinterpret_cast<const block_q8_0*>(x + t * xs);
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[b].qs));
      const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
      __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
      out->bias[t * nb + b] = -128 * _mm_cvtsi128_si32(h);
      out->scale[t * nb + b] = fp16_to_fp32(xb[b].d);
    }
  }
}

inline __m512i Load2(const uint8_t* lo, const uint8_t* hi) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi));
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

inline __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm512_set1_epi32(v);
}

// rows[16] point at the tile's rows (a short tile repeats its last row; only `valid` lanes
// are stored). x points at the first of T tokens, xs apart; tb holds their scales and biases
// from token `first` on.
template <int T>
void Tile(const uint8_t* const* rows, const uint8_t* next, int valid, const uint8_t* x, size_t xs,
          const TokenBlocks& tb, int64_t first, int64_t nb, float* y, int64_t ldy) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[T];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const size_t at = static_cast<size_t>(b) * sizeof(block_q8_0);
    const size_t qs = at + offsetof(block_q8_0, qs);
    // Sixteen rows read a block at a time are sixteen streams, more than the hardware
    // prefetchers follow; the next tile's rows, which follow these in memory, are fetched
    // instead as one stream, a block's worth (16 x 34 bytes) a step.
#pragma GCC unroll 9
    for (int i = 0; i < kPrefetchLines; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(next) + (b * kPrefetchLines + i) * 64,
                   _MM_HINT_T0);
    }
    // A[i]: rows i and i + 4 (i < 4), rows i + 4 and i + 8 (i >= 4), one per 256-bit half, so
    // that the transpose below leaves lane j holding row j.
    __m512i a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      const int lo = i < 4 ? i : i + 4;
      a[i] = Load2(rows[lo] + qs, rows[lo + 4] + qs);
    }
    // Dwords (i, i+1) interleaved, then pairs of them, then 128-bit quarters.
    __m512i s1[8];
#pragma GCC unroll 4
    for (int i = 0; i < 8; i += 2) {
      s1[i] = _mm512_unpacklo_epi32(a[i], a[i + 1]);
      s1[i + 1] = _mm512_unpackhi_epi32(a[i], a[i + 1]);
    }
    __m512i s2[8];
#pragma GCC unroll 2
    for (int h = 0; h < 8; h += 4) {
      s2[h + 0] = _mm512_unpacklo_epi64(s1[h + 0], s1[h + 2]);  // dwords 0 and 4
      s2[h + 1] = _mm512_unpackhi_epi64(s1[h + 0], s1[h + 2]);  // 1 and 5
      s2[h + 2] = _mm512_unpacklo_epi64(s1[h + 1], s1[h + 3]);  // 2 and 6
      s2[h + 3] = _mm512_unpackhi_epi64(s1[h + 1], s1[h + 3]);  // 3 and 7
    }
    __m512i v[8];  // v[g]: lane j = row j's bytes 4g..4g+3, plus 128
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      v[g] =
          _mm512_xor_si512(_mm512_shuffle_i32x4(s2[g], s2[g + 4], _MM_SHUFFLE(2, 0, 2, 0)), flip);
      v[g + 4] =
          _mm512_xor_si512(_mm512_shuffle_i32x4(s2[g], s2[g + 4], _MM_SHUFFLE(3, 1, 3, 1)), flip);
    }
    // The rows' fp16 scales, one plain load each, converted together: a 16-lane vpgatherdd
    // in their place made the tiles up to a tenth slower on Zen 5 (docs/PERFORMANCE.md).
    alignas(32) uint16_t scales[kTileRows];
#pragma GCC unroll 16
    for (int j = 0; j < kTileRows; ++j) std::memcpy(&scales[j], rows[j] + at, sizeof(uint16_t));
    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales)));
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) {
      const auto* xq = reinterpret_cast<const int8_t*>(x + t * xs + qs);
      const int64_t k = (first + t) * nb + b;
      __m512i dot = _mm512_set1_epi32(tb.bias[k]);
#pragma GCC unroll 8
      for (int64_t g = 0; g < 8; ++g) dot = _mm512_dpbusd_epi32(dot, v[g], Broadcast4(xq + 4 * g));
      const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(tb.scale[k]));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
    }
  }
  const __mmask16 keep = static_cast<__mmask16>((1u << valid) - 1);
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * ldy, keep, acc[t]);
}

using TileFn = void (*)(const uint8_t* const*, const uint8_t*, int, const uint8_t*, size_t,
                        const TokenBlocks&, int64_t, int64_t, float*, int64_t);
constexpr TileFn kTiles[kTileTokens + 1] = {nullptr,  &Tile<1>, &Tile<2>, &Tile<3>, &Tile<4>,
                                            &Tile<5>, &Tile<6>, &Tile<7>, &Tile<8>};

}  // namespace

void dots_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  const int64_t nb = n / kQK8_0;
  thread_local TokenBlocks tb;
  PrepareTokens(x, xs, nb, tokens, &tb);
  for (int64_t r = 0; r < rows; r += kTileRows) {
    const int valid = static_cast<int>(std::min<int64_t>(kTileRows, rows - r));
    const uint8_t* row_ptrs[kTileRows];
    for (int j = 0; j < kTileRows; ++j) row_ptrs[j] = w + (r + std::min(j, valid - 1)) * ws;
    for (int64_t t = 0; t < tokens; t += kTileTokens) {
      const int64_t nt = std::min<int64_t>(kTileTokens, tokens - t);
      kTiles[nt](row_ptrs, w + (r + kTileRows) * ws, valid, x + t * xs, xs, tb, t, nb,
                 y + t * ldy + r, ldy);
    }
  }
}

}  // namespace agentry::kernels::avx512
