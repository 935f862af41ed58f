// kernels/cpu/dot_k_avx512.cc — the K-quant dots and prefill GEMM (Q4_K, Q5_K, Q6_K against
// Q8_K) on 512-bit vectors with AVX512-VNNI. Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni; kernels.cc calls it only where the CPU has all four.
//
// The arithmetic is simd_k_avx2.h's, two 32-weight vectors to a register: one 512-bit
// maddubs and one vpdpwssd do what AVX2 does in two of each. At the end of a block the upper
// 8 int32 lanes are added to the lower 8; they hold the same weight positions of the odd
// vectors as the lower lanes do of the even ones, so the 8 sums are the AVX2 kernels'
// integers exactly, and step 2 (to float, one FMA a block, the min terms) is the same code.
// Hence the same bits as the AVX2 and AVX-VNNI kernels (the tests compare them exactly).
// Step 2's helpers come from simd_k_avx2.h (internal linkage there, so this file's AVX-512
// build of them is never the copy the AVX2 files link to).
// <immintrin.h> through immintrin_avx512.h, first: GCC 12 workaround (see there).
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/immintrin_avx512.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_k_avx2.h"

namespace agentry::kernels::avx512 {
namespace {

using simd::hsum;
using simd_k::lanes_accumulate;
using simd_k::load256;
using simd_k::min_term;
using simd_k::mins_accumulate;
using simd_k::q4k_scales_mins;
using simd_k::q8k_sums32;

// 32 bytes in both 256-bit halves.
inline __m512i broadcast256(const void* p) { return _mm512_broadcast_i64x4(load256(p)); }

// Shift counts for the 16-bit lanes of the low and the high 256-bit half.
inline __m512i halves16(int16_t lo, int16_t hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(lo)), _mm256_set1_epi16(hi),
                            1);
}

// The formats, as simd_k's, by pairs: pair p is weight vectors 2p (low half) and 2p + 1
// (high half), 64 weights, against activations 64p..64p+63; sc[p] its madd scales.
struct Q4K {
  using Block = block_q4_K;
  struct Row {
    __m512i sc[4];
    __m128i mins;
    float d;
    float dmin;
  };
  static constexpr bool kHasMins = true;
  // Shared with Q5_K, whose d, dmin and scale bytes are Q4_K's.
  static void prepare_scales(uint16_t d, uint16_t dmin, const uint8_t* packed, Row* row) {
    __m128i scales;
    q4k_scales_mins(packed, &scales, &row->mins);
    const __m512i s4 = _mm512_broadcast_i32x4(scales);
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {  // int16 scale 2p in the low half, 2p + 1 in the high
      const __m512i ctrl = halves16(static_cast<int16_t>(0x0100 + 0x0202 * (2 * p)),
                                    static_cast<int16_t>(0x0100 + 0x0202 * (2 * p + 1)));
      row->sc[p] = _mm512_shuffle_epi8(s4, ctrl);
    }
    row->d = _cvtsh_ss(d);
    row->dmin = _cvtsh_ss(dmin);
  }
  static void prepare(const Block& w, Row* row) { prepare_scales(w.d, w.dmin, w.scales, row); }
  // Byte l of chunk p: low nibble is weight l of vector 2p, high nibble weight l of 2p + 1.
  template <int p>
  static __m512i weights(const Block& w) {
    const __m512i bits = broadcast256(w.qs + ptrdiff_t{32} * p);
    return _mm512_and_si512(_mm512_srlv_epi16(bits, halves16(0, 4)), _mm512_set1_epi8(0x0F));
  }
  static __m256i finish(__m256i isum, const Block& /*w*/, const block_q8_K& /*x*/) { return isum; }
};

struct Q5K {
  using Block = block_q5_K;
  using Row = Q4K::Row;
  static constexpr bool kHasMins = true;
  static void prepare(const Block& w, Row* row) { Q4K::prepare_scales(w.d, w.dmin, w.scales, row); }
  // Plus the fifth bits: bit 2p of qh[l] for vector 2p, bit 2p + 1 for vector 2p + 1.
  template <int p>
  static __m512i weights(const Block& w) {
    const __m512i bits = broadcast256(w.qs + ptrdiff_t{32} * p);
    const __m512i low =
        _mm512_and_si512(_mm512_srlv_epi16(bits, halves16(0, 4)), _mm512_set1_epi8(0x0F));
    const __m512i qh = _mm512_srli_epi16(broadcast256(w.qh), 2 * p);  // to bits 0 and 1
    const __m512i high =
        _mm512_and_si512(_mm512_sllv_epi16(qh, halves16(4, 3)), _mm512_set1_epi8(0x10));
    return _mm512_or_si512(low, high);
  }
  static __m256i finish(__m256i isum, const Block& /*w*/, const block_q8_K& /*x*/) { return isum; }
};

struct Q6K {
  using Block = block_q6_K;
  struct Row {
    __m512i sc[4];
    float d;
  };
  static constexpr bool kHasMins = false;
  static void prepare(const Block& w, Row* row) {
    const __m512i s16 = _mm512_castsi256_si512(
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales))));
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {  // 128-bit lane L: the scale of sub-block 4p + L
      const __m512i idx = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(4 * p + 1)),
                                                  _mm_set1_epi16(static_cast<int16_t>(4 * p)))),
          _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(4 * p + 3)),
                           _mm_set1_epi16(static_cast<int16_t>(4 * p + 2))),
          1);
      row->sc[p] = _mm512_permutexvar_epi16(idx, s16);
    }
    row->d = _cvtsh_ss(w.d);
  }
  // Vectors 2p and 2p + 1 are 64 consecutive ql bytes of half p / 2, low nibbles (p even) or
  // high; their bits 4-5 are bits (0-1, 2-3) or (4-5, 6-7) of that half's qh.
  template <int p>
  static __m512i weights(const Block& w) {
    constexpr int h = p / 2;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i ql = _mm512_loadu_si512(w.ql + ptrdiff_t{64} * h);
    const __m512i low =
        p % 2 == 0 ? _mm512_and_si512(ql, m4) : _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4);
    __m512i qh = broadcast256(w.qh + ptrdiff_t{32} * h);
    if constexpr (p % 2 == 1) qh = _mm512_srli_epi16(qh, 4);
    const __m512i high =
        _mm512_and_si512(_mm512_sllv_epi16(qh, halves16(4, 2)), _mm512_set1_epi8(0x30));
    return _mm512_or_si512(low, high);
  }
  // As simd_k::Q6K::finish: the -32 offset of every weight.
  static __m256i finish(__m256i isum, const Block& w, const block_q8_K& x) {
    const __m256i s16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales)));
    return _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_madd_epi16(load256(x.bsums), s16), 5));
  }
};

// 16 int32 lanes -> the 8 of the AVX2 kernels.
inline __m256i fold(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

template <typename F, int p>
inline __m512i pair_isum(__m512i sum, const typename F::Block& w, const typename F::Row& row,
                         const block_q8_K& x) {
  const __m512i xq = _mm512_loadu_si512(x.qs + ptrdiff_t{64} * p);
  return _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(F::template weights<p>(w), xq), row.sc[p]);
}

template <typename F>
inline float vec_dot(const typename F::Block* w, const block_q8_K* x, int64_t n) {
  __m256 lanes = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    typename F::Row row;
    F::prepare(w[b], &row);
    __m512i sum = _mm512_setzero_si512();
    sum = pair_isum<F, 0>(sum, w[b], row, x[b]);
    sum = pair_isum<F, 1>(sum, w[b], row, x[b]);
    sum = pair_isum<F, 2>(sum, w[b], row, x[b]);
    sum = pair_isum<F, 3>(sum, w[b], row, x[b]);
    lanes = lanes_accumulate(lanes, F::finish(fold(sum), w[b], x[b]), x[b].d, row.d);
    if constexpr (F::kHasMins) {
      mins = mins_accumulate(mins, min_term(row.mins, x[b]), x[b].d, row.dmin);
    }
  }
  return F::kHasMins ? hsum(lanes) + mins : hsum(lanes);
}

// One weight row against 8 tokens (32 registers hold 8 integer sums, 8 float sums and the
// unpacked pair; 8 tokens measured 1.3x faster than 4 on Q4_K). Same bits as vec_dot.
constexpr int kTileTokens = 8;

// As simd_k::TokenBlocks and token_blocks: block b of the tile's tokens, once per token group.
struct TokenBlocks {
  float dx[kTileTokens];
  float neg_dx[kTileTokens];
  __m128i sums32[kTileTokens];
};

inline const TokenBlocks* token_blocks(const block_q8_K* const* xr, int64_t nb) {
  thread_local std::vector<TokenBlocks> panel;
  if (panel.size() < static_cast<size_t>(nb)) panel.resize(nb);
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int t = 0; t < kTileTokens; ++t) {
      panel[b].dx[t] = xr[t][b].d;
      panel[b].neg_dx[t] = -xr[t][b].d;
      panel[b].sums32[t] = q8k_sums32(xr[t][b]);
    }
  }
  return panel.data();
}

template <typename F, int p>
inline void tile_pair(const typename F::Block& w, const typename F::Row& row,
                      const block_q8_K* const* xt, __m512i* isum) {
  const __m512i v = F::template weights<p>(w);
#pragma GCC unroll 8
  for (int t = 0; t < kTileTokens; ++t) {
    const __m512i xq = _mm512_loadu_si512(xt[t]->qs + ptrdiff_t{64} * p);
    isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(v, xq), row.sc[p]);
  }
}

// As simd_k::tile, 8 tokens: step 2 lane by lane as vec_dot does it, 8 (or 4) tokens an
// instruction.
template <typename F>
inline void tile(const typename F::Block* w, const block_q8_K* const* xr, const TokenBlocks* tb,
                 float* y, int64_t ldy, int64_t nb) {
  constexpr int RN = kTileTokens;
  __m256 lanes[RN];
  __m128 mins[RN / 4];
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) lanes[t] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (__m128& m : mins) m = _mm_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    typename F::Row row;
    F::prepare(w[b], &row);
    const block_q8_K* xt[RN];
    __m512i isum[RN];
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      xt[t] = xr[t] + b;
      isum[t] = _mm512_setzero_si512();
    }
    tile_pair<F, 0>(w[b], row, xt, isum);
    tile_pair<F, 1>(w[b], row, xt, isum);
    tile_pair<F, 2>(w[b], row, xt, isum);
    tile_pair<F, 3>(w[b], row, xt, isum);
    float scale[RN];  // d_x * d_w per token, as lanes_accumulate multiplies them
    _mm256_storeu_ps(scale, _mm256_mul_ps(_mm256_loadu_ps(tb[b].dx), _mm256_set1_ps(row.d)));
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      const __m256i sum = F::finish(fold(isum[t]), w[b], *xt[t]);
      lanes[t] = _mm256_fmadd_ps(_mm256_set1_ps(scale[t]), _mm256_cvtepi32_ps(sum), lanes[t]);
    }
    if constexpr (F::kHasMins) {
#pragma GCC unroll 2
      for (int g = 0; g < RN / 4; ++g) {
        const __m128i* s = tb[b].sums32 + ptrdiff_t{4} * g;
        const __m128i p0 = _mm_madd_epi16(row.mins, s[0]);
        const __m128i p1 = _mm_madd_epi16(row.mins, s[1]);
        const __m128i p2 = _mm_madd_epi16(row.mins, s[2]);
        const __m128i p3 = _mm_madd_epi16(row.mins, s[3]);
        const __m128i terms = _mm_hadd_epi32(_mm_hadd_epi32(p0, p1), _mm_hadd_epi32(p2, p3));
        const __m128 neg_dx_dmin =
            _mm_mul_ps(_mm_loadu_ps(tb[b].neg_dx + ptrdiff_t{4} * g), _mm_set1_ps(row.dmin));
        mins[g] = _mm_fmadd_ps(neg_dx_dmin, _mm_cvtepi32_ps(terms), mins[g]);
      }
    }
  }
  float min_sums[RN];
#pragma GCC unroll 2
  for (int g = 0; g < RN / 4; ++g) _mm_storeu_ps(min_sums + ptrdiff_t{4} * g, mins[g]);
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) {
    y[t * ldy] = F::kHasMins ? hsum(lanes[t]) + min_sums[t] : hsum(lanes[t]);
  }
}

// As simd_k::gemm: tiles of kTileTokens tokens one row at a time, the other tokens through
// vec_dot; the same bits either way.
template <typename F>
inline void gemm(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                 int64_t n, int64_t rows, int64_t tokens) {
  using Block = typename F::Block;
  const int64_t nb = n / kQK_K;
  const int64_t full_tokens = tokens / kTileTokens * kTileTokens;
  for (int64_t t = 0; t < full_tokens; t += kTileTokens) {
    const block_q8_K* xr[kTileTokens];
#pragma GCC unroll 8
    for (int i = 0; i < kTileTokens; ++i) {
      xr[i] = reinterpret_cast<const block_q8_K*>(x + (t + i) * xs);
    }
    const TokenBlocks* tb = token_blocks(xr, nb);
    for (int64_t r = 0; r < rows; ++r) {
      tile<F>(reinterpret_cast<const Block*>(w + r * ws), xr, tb, y + t * ldy + r, ldy, nb);
    }
  }
  for (int64_t t = full_tokens; t < tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      y[t * ldy + r] = vec_dot<F>(reinterpret_cast<const Block*>(w + r * ws),
                                  reinterpret_cast<const block_q8_K*>(x + t * xs), n);
    }
  }
}

}  // namespace

float vec_dot_q4_K_q8_K(const block_q4_K* w, const block_q8_K* x, int64_t n) {
  return vec_dot<Q4K>(w, x, n);
}

float vec_dot_q5_K_q8_K(const block_q5_K* w, const block_q8_K* x, int64_t n) {
  return vec_dot<Q5K>(w, x, n);
}

float vec_dot_q6_K_q8_K(const block_q6_K* w, const block_q8_K* x, int64_t n) {
  return vec_dot<Q6K>(w, x, n);
}

void gemm_q4_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  gemm<Q4K>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q5_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  gemm<Q5K>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q6_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  gemm<Q6K>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avx512
