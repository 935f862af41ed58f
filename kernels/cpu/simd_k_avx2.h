// kernels/cpu/simd_k_avx2.h — the K-quants (Q4_K, Q5_K, Q6_K) against Q8_K activations on
// 256-bit vectors: the dot product (vec_dot) and the prefill GEMM (gemm), as templates over
// the format (Q4K, Q5K, Q6K below) and one ISA step (MaddFn). Include only from files
// compiled with -mavx2 -mfma -mf16c (dot_k_avx2.cc; dot_k_avxvnni.cc adds -mavxvnni).
//
// Each 256-weight block against one Q8_K block is two steps:
//   1. an exact integer sum in 8 int32 lanes: for each of the 8 weight vectors of 32,
//      maddubs (unsigned weights x signed activations, int16 pairs), then times the
//      sub-block scales (madd, int32);
//   2. those lanes to float, times the block's float scales, into an 8-lane float sum
//      (Q4_K and Q5_K also add their min term to a scalar sum; see lanes_accumulate).
// Step 1 is exact, so each lane holds the same integer in whatever order its products were
// added; step 2 is the same code everywhere. Hence the GEMM's tile, which unpacks a weight
// vector once for several tokens, gives for every (row, token) exactly the bits of vec_dot,
// no split of rows or tokens between threads can change a result, and the AVX2 and
// AVX-VNNI MaddFns (madd + add, or one vpdpwssd) give identical results. dot_k_avx512.cc
// repeats this arithmetic two vectors to a 512-bit register, with the same results.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_avx2.h"

namespace agentry::kernels::simd_k {
// Internal linkage: this header is compiled into files built for different instruction sets
// (e.g. -mavx2 and -mavx2 -mavxvnni), and an out-of-line copy (Debug builds emit them) built
// for the wider set must never be the one the linker keeps for the narrower set's callers.
namespace {

// acc + the int16 pair sums of p * s, as 8 int32 lanes.
using MaddFn = __m256i (*)(__m256i acc, __m256i p, __m256i s);

inline __m256i madd_avx2(__m256i acc, __m256i p, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
}

// The 8 scales and 8 mins of a Q4_K/Q5_K block (6 bits each, packed in 12 bytes as
// q4k_scale_min in quants.h reads them), widened to int16.
inline void q4k_scales_mins(const uint8_t* packed, __m128i* scales, __m128i* mins) {
  uint32_t a = 0;  // bytes 0-3: scales 0-3 in the low 6 bits, top 2 bits of scales 4-7
  uint32_t b = 0;  // bytes 4-7: mins 0-3 likewise, top 2 bits of mins 4-7
  uint32_t c = 0;  // bytes 8-11: low nibble the low 4 bits of scale j + 4, high of min j + 4
  std::memcpy(&a, packed, 4);
  std::memcpy(&b, packed + 4, 4);
  std::memcpy(&c, packed + 8, 4);
  const uint32_t low6 = 0x3F3F3F3F;
  const uint32_t low4 = 0x0F0F0F0F;
  const uint32_t low2 = 0x03030303;
  const uint32_t s_lo = a & low6;
  const uint32_t s_hi = (c & low4) | (((a >> 6) & low2) << 4);
  const uint32_t m_lo = b & low6;
  const uint32_t m_hi = ((c >> 4) & low4) | (((b >> 6) & low2) << 4);
  *scales = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(s_hi), static_cast<int>(s_lo)));
  *mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(m_hi), static_cast<int>(m_lo)));
}

// 8 int16 scales in both 128-bit lanes -> every int16 lane set to scale j.
inline __m256i broadcast_scale(__m256i scales_x2, int j) {
  const auto lo = static_cast<int16_t>(0x0100 + 0x0202 * j);  // bytes 2j, 2j+1
  return _mm256_shuffle_epi8(scales_x2, _mm256_set1_epi16(lo));
}

// Q4_K and Q5_K: the 8 madd scale vectors of a block, one per 32 weights (sub-block).
inline void q4k_scale_vectors(__m128i scales, __m256i out[8]) {
  const __m256i s2 = _mm256_broadcastsi128_si256(scales);
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) out[j] = broadcast_scale(s2, j);
}

// Q6_K: 8 vectors, one per 32 weights; its low 128-bit lane carries the scale of the first
// 16 weights, the high lane that of the next 16 (maddubs keeps byte order within a lane).
inline void q6k_scale_vectors(const int8_t* scales, __m256i out[8]) {
  const __m128i s8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales));
#pragma GCC unroll 2
  for (int half = 0; half < 2; ++half) {
    const __m128i s16 = _mm_cvtepi8_epi16(half == 0 ? s8 : _mm_srli_si128(s8, 8));
    const __m256i s2 = _mm256_broadcastsi128_si256(s16);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) {
      // Low lane: int16 2k; high lane: int16 2k + 1.
      const __m256i ctrl =
          _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * (2 * k + 1))),
                           _mm_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * (2 * k))));
      out[half * 4 + k] = _mm256_shuffle_epi8(s2, ctrl);
    }
  }
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Shift each 16-bit lane left (s > 0) or right (s < 0). Used where the bits wanted in a
// byte come from the same byte (|s| <= 4 and the masks below).
template <int s>
inline __m256i shift16(__m256i v) {
  if constexpr (s > 0) return _mm256_slli_epi16(v, s);
  if constexpr (s < 0) return _mm256_srli_epi16(v, -s);
  return v;
}

// Sums of each 32 activations (Q4_K/Q5_K sub-blocks) from the 16 sums of 16, as int16.
inline __m128i q8k_sums32(const block_q8_K& x) {
  return _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums)),
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.bsums + 8)));
}

// Step 2, rounded as llama.cpp's AVX2 vec_dot for Q5_K and Q6_K rounds (its Q4_K weights go
// through a repacked GEMM instead): per block, 8 float lanes += (d_x * d_w) * isum in one FMA;
// for Q4_K and Q5_K a scalar min sum += (-d_x * dmin_w) * (the block's exact min term) in
// one scalar FMA; at the end the lanes are summed in hsum's order and the min sum added.

inline __m256 lanes_accumulate(__m256 lanes, __m256i isum, float dx, float dw) {
  return _mm256_fmadd_ps(_mm256_set1_ps(dx * dw), _mm256_cvtepi32_ps(isum), lanes);
}

// sum_j min_j * (sum of activations of sub-block j), exact: at most 8 * 63 * 32 * 127 < 2^24,
// so the conversion to float is exact too.
inline int32_t min_term(__m128i mins, const block_q8_K& x) {
  __m128i m = _mm_madd_epi16(mins, q8k_sums32(x));
  m = _mm_add_epi32(m, _mm_unpackhi_epi64(m, m));
  m = _mm_add_epi32(m, _mm_shuffle_epi32(m, 1));
  return _mm_cvtsi128_si32(m);
}

inline float mins_accumulate(float acc, int32_t term, float dx, float dmin) {
  const __m128 t = _mm_set_ss(static_cast<float>(term));
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(-dx * dmin), t, _mm_set_ss(acc)));
}

// A format's view of its blocks, shared by the dot and the tile:
//   Row                  what one weight block contributes to step 2, decoded once per row
//   prepare(w, &row)     decodes it (scales as madd vectors: vector k's lanes hold the scale
//                        of the sub-block each activation pair of vector k belongs to)
//   weights<k>(w)        weights 32k..32k+31 as unsigned bytes (k = 0..7)
//   finish(isum, w, x)   step 1's last exact correction (Q6_K: its -32 offset)
//   kHasMins             whether step 2 has a min term (Row::mins, Row::dmin)
struct Q4K {
  using Block = block_q4_K;
  struct Row {
    __m256i sc[8];
    __m128i mins;
    float d;
    float dmin;
  };
  static void prepare(const Block& w, Row* row) {
    __m128i scales;
    q4k_scales_mins(w.scales, &scales, &row->mins);
    q4k_scale_vectors(scales, row->sc);
    row->d = _cvtsh_ss(w.d);
    row->dmin = _cvtsh_ss(w.dmin);
  }
  // Chunk k/2 holds 64 weights: 32 low nibbles (vector k even), then 32 high nibbles.
  template <int k>
  static __m256i weights(const Block& w) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i bits = load256(w.qs + ptrdiff_t{32} * (k / 2));
    return _mm256_and_si256(k % 2 == 0 ? bits : _mm256_srli_epi16(bits, 4), m4);
  }
  static __m256i finish(__m256i isum, const Block& /*w*/, const block_q8_K& /*x*/) { return isum; }
  static constexpr bool kHasMins = true;
};

struct Q5K {
  using Block = block_q5_K;
  using Row = Q4K::Row;
  static void prepare(const Block& w, Row* row) {
    __m128i scales;
    q4k_scales_mins(w.scales, &scales, &row->mins);
    q4k_scale_vectors(scales, row->sc);
    row->d = _cvtsh_ss(w.d);
    row->dmin = _cvtsh_ss(w.dmin);
  }
  // The nibble as in Q4_K plus the fifth bit, bit k of qh[l], moved to bit 4.
  template <int k>
  static __m256i weights(const Block& w) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    const __m256i bits = load256(w.qs + ptrdiff_t{32} * (k / 2));
    const __m256i low = _mm256_and_si256(k % 2 == 0 ? bits : _mm256_srli_epi16(bits, 4), m4);
    return _mm256_or_si256(low, _mm256_and_si256(shift16<4 - k>(load256(w.qh)), bit4));
  }
  static __m256i finish(__m256i isum, const Block& /*w*/, const block_q8_K& /*x*/) { return isum; }
  static constexpr bool kHasMins = true;
};

struct Q6K {
  using Block = block_q6_K;
  struct Row {
    __m256i sc[8];
    float d;
  };
  static void prepare(const Block& w, Row* row) {
    q6k_scale_vectors(w.scales, row->sc);
    row->d = _cvtsh_ss(w.d);
  }
  // Half k/4 (128 weights) takes 64 ql bytes and 32 qh bytes: vector k%4 is the low (0, 1)
  // or high (2, 3) nibbles of ql's first (0, 2) or second (1, 3) 32 bytes, its bits 4-5 at
  // bits 2(k%4), 2(k%4)+1 of qh. Unsigned 0..63; the -32 comes off in finish.
  template <int k>
  static __m256i weights(const Block& w) {
    constexpr int h = k / 4;
    constexpr int j = k % 4;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i bits45 = _mm256_set1_epi8(0x30);
    const __m256i ql = load256(w.ql + ptrdiff_t{64} * h + ptrdiff_t{32} * (j % 2));
    const __m256i low = _mm256_and_si256(j < 2 ? ql : _mm256_srli_epi16(ql, 4), m4);
    return _mm256_or_si256(
        low, _mm256_and_si256(shift16<4 - 2 * j>(load256(w.qh + ptrdiff_t{32} * h)), bits45));
  }
  // 32 * sum over the 16 sub-blocks of scale_g * bsum_g, taken off in 8 int32 lanes.
  static __m256i finish(__m256i isum, const Block& w, const block_q8_K& x) {
    const __m256i s16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w.scales)));
    return _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_madd_epi16(load256(x.bsums), s16), 5));
  }
  static constexpr bool kHasMins = false;
};

// Step 1 for one (row, token): maddubs of unsigned weights (at most 63) and signed
// activations keeps each pair within int16 (2 * 63 * 128 < 32768).
template <typename F, MaddFn madd>
inline __m256i block_isum(const typename F::Block& w, const typename F::Row& row,
                          const block_q8_K& x) {
  __m256i sum = _mm256_setzero_si256();
  sum = madd(sum, _mm256_maddubs_epi16(F::template weights<0>(w), load256(x.qs)), row.sc[0]);
  sum = madd(sum, _mm256_maddubs_epi16(F::template weights<1>(w), load256(x.qs + 32)), row.sc[1]);
  sum = madd(sum, _mm256_maddubs_epi16(F::template weights<2>(w), load256(x.qs + 64)), row.sc[2]);
  sum = madd(sum, _mm256_maddubs_epi16(F::template weights<3>(w), load256(x.qs + 96)), row.sc[3]);
  sum = madd(sum, _mm256_maddubs_epi16(F::template weights<4>(w), load256(x.qs + 128)), row.sc[4]);
  sum = madd(sum, _mm256_maddubs_epi16(F::template weights<5>(w), load256(x.qs + 160)), row.sc[5]);
  sum = madd(sum, _mm256_maddubs_epi16(F::template weights<6>(w), load256(x.qs + 192)), row.sc[6]);
  sum = madd(sum, _mm256_maddubs_epi16(F::template weights<7>(w), load256(x.qs + 224)), row.sc[7]);
  return F::finish(sum, w, x);
}

// A weight row against an activation row: the sum over blocks of step 2 of step 1.
template <typename F, MaddFn madd>
inline float vec_dot(const typename F::Block* w, const block_q8_K* x, int64_t n) {
  __m256 lanes = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    typename F::Row row;
    F::prepare(w[b], &row);
    lanes = lanes_accumulate(lanes, block_isum<F, madd>(w[b], row, x[b]), x[b].d, row.d);
    if constexpr (F::kHasMins) {
      mins = mins_accumulate(mins, min_term(row.mins, x[b]), x[b].d, row.dmin);
    }
  }
  return F::kHasMins ? simd::hsum(lanes) + mins : simd::hsum(lanes);
}

// Block b of a tile's RN tokens, as every weight row of the tile needs it: computed once per
// token group by gemm, not once per row.
template <int RN>
struct TokenBlocks {
  float dx[RN];
  float neg_dx[RN];
  __m128i sums32[RN];  // Q4_K/Q5_K min terms
};

// RN tokens' blocks, once per group of RN tokens and each thread's gemm call; kept per
// thread so a GEMM allocates nothing after its first call.
template <int RN>
inline const TokenBlocks<RN>* token_blocks(const block_q8_K* const* xr, int64_t nb) {
  thread_local std::vector<TokenBlocks<RN>> panel;
  if (panel.size() < static_cast<size_t>(nb)) panel.resize(nb);
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      panel[b].dx[t] = xr[t][b].d;
      panel[b].neg_dx[t] = -xr[t][b].d;
      panel[b].sums32[t] = q8k_sums32(xr[t][b]);
    }
  }
  return panel.data();
}

// The tile's step 1 for weight vector k of one block: unpacked once, it serves RN tokens.
template <typename F, MaddFn madd, int RN, int k>
inline void tile_vector(const typename F::Block& w, const typename F::Row& row,
                        const block_q8_K* const* xt, __m256i* isum) {
  const __m256i v = F::template weights<k>(w);
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) {
    isum[t] =
        madd(isum[t], _mm256_maddubs_epi16(v, load256(xt[t]->qs + ptrdiff_t{32} * k)), row.sc[k]);
  }
}

// One weight row against RN tokens: y[t * ldy] = vec_dot(row, token t), bit for bit. Within
// a block the row's 8 weight vectors are unpacked once each; the RN integer sums and float
// sums stay in registers (2 * RN + 3 of the 16). A second row in the tile would only add
// registers: a row's unpacked weights are not reused across rows. Step 2 does the
// operations of vec_dot's lanes_accumulate and mins_accumulate lane by lane, RN (or four)
// tokens an instruction, with the tokens' parts from `tb`.
template <typename F, MaddFn madd, int RN>
inline void tile(const typename F::Block* w, const block_q8_K* const* xr, const TokenBlocks<RN>* tb,
                 float* y, int64_t ldy, int64_t nb) {
  static_assert(RN == 4, "the scales of RN tokens fill one 128-bit vector");
  __m256 lanes[RN];
  __m128 mins = _mm_setzero_ps();
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) lanes[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    typename F::Row row;
    F::prepare(w[b], &row);
    const block_q8_K* xt[RN];
    __m256i isum[RN];
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      xt[t] = xr[t] + b;
      isum[t] = _mm256_setzero_si256();
    }
    tile_vector<F, madd, RN, 0>(w[b], row, xt, isum);
    tile_vector<F, madd, RN, 1>(w[b], row, xt, isum);
    tile_vector<F, madd, RN, 2>(w[b], row, xt, isum);
    tile_vector<F, madd, RN, 3>(w[b], row, xt, isum);
    tile_vector<F, madd, RN, 4>(w[b], row, xt, isum);
    tile_vector<F, madd, RN, 5>(w[b], row, xt, isum);
    tile_vector<F, madd, RN, 6>(w[b], row, xt, isum);
    tile_vector<F, madd, RN, 7>(w[b], row, xt, isum);
    float scale[RN];  // d_x * d_w per token, as lanes_accumulate multiplies them
    _mm_storeu_ps(scale, _mm_mul_ps(_mm_loadu_ps(tb[b].dx), _mm_set1_ps(row.d)));
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      lanes[t] = _mm256_fmadd_ps(_mm256_set1_ps(scale[t]),
                                 _mm256_cvtepi32_ps(F::finish(isum[t], w[b], *xt[t])), lanes[t]);
    }
    if constexpr (F::kHasMins) {
      const __m128i p0 = _mm_madd_epi16(row.mins, tb[b].sums32[0]);
      const __m128i p1 = _mm_madd_epi16(row.mins, tb[b].sums32[1]);
      const __m128i p2 = _mm_madd_epi16(row.mins, tb[b].sums32[2]);
      const __m128i p3 = _mm_madd_epi16(row.mins, tb[b].sums32[3]);
      const __m128i terms = _mm_hadd_epi32(_mm_hadd_epi32(p0, p1), _mm_hadd_epi32(p2, p3));
      const __m128 neg_dx_dmin = _mm_mul_ps(_mm_loadu_ps(tb[b].neg_dx), _mm_set1_ps(row.dmin));
      mins = _mm_fmadd_ps(neg_dx_dmin, _mm_cvtepi32_ps(terms), mins);
    }
  }
  float min_sums[RN];
  _mm_storeu_ps(min_sums, mins);
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) {
    y[t * ldy] = F::kHasMins ? simd::hsum(lanes[t]) + min_sums[t] : simd::hsum(lanes[t]);
  }
}

// Blocks of dot products (the gemm_* contract in kernels.h): tiles of RN tokens, one row at a
// time, tokens outside whole tiles through vec_dot. Both give the same bits, so neither the
// tile shape nor the caller's split changes a result. Tokens outermost: a tile's RN
// activation rows stay in L1 while the weight rows stream past.
template <typename F, MaddFn madd, int RN>
inline void gemm(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                 int64_t n, int64_t rows, int64_t tokens) {
  using Block = typename F::Block;
  const int64_t nb = n / kQK_K;
  const int64_t full_tokens = tokens / RN * RN;
  for (int64_t t = 0; t < full_tokens; t += RN) {
    const block_q8_K* xr[RN];
#pragma GCC unroll 8
    for (int i = 0; i < RN; ++i) xr[i] = reinterpret_cast<const block_q8_K*>(x + (t + i) * xs);
    const TokenBlocks<RN>* tb = token_blocks<RN>(xr, nb);
    for (int64_t r = 0; r < rows; ++r) {
      tile<F, madd, RN>(reinterpret_cast<const Block*>(w + r * ws), xr, tb, y + t * ldy + r, ldy,
                        nb);
    }
  }
  for (int64_t t = full_tokens; t < tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      y[t * ldy + r] = vec_dot<F, madd>(reinterpret_cast<const Block*>(w + r * ws),
                                        reinterpret_cast<const block_q8_K*>(x + t * xs), n);
    }
  }
}

}  // namespace
}  // namespace agentry::kernels::simd_k
