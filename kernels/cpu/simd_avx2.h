// kernels/cpu/simd_avx2.h — small AVX2 helpers shared by the AVX2 and AVX-VNNI kernel files.
// Include only from files compiled with -mavx2 -mfma -mf16c.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels::simd {
// Internal linkage: this header is compiled into files built for different instruction sets
// (e.g. -mavx2 and -mavx2 -mavxvnni), and an out-of-line copy (Debug builds emit them) built
// for the wider set must never be the one the linker keeps for the narrower set's callers.
namespace {

// Sum of the 8 lanes.
inline float hsum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The product of two fp16 block scales, converted by the F16C unit, in every lane.
inline __m256 scale_product(uint16_t a, uint16_t b) {
  return _mm256_set1_ps(_cvtsh_ss(a) * _cvtsh_ss(b));
}

// Sum of the products of 32 signed bytes, as 8 int32 lanes. maddubs multiplies unsigned by
// signed bytes, so the sign of `a` is moved onto `b` first; each pair of products fits int16
// (at most 2 * 128 * 127).
inline __m256i dot_i8x32(__m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// 16 bytes of Q4_0 nibbles -> 32 bytes 0..15: low nibbles first, then high nibbles.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

inline __m256i load_i8x32(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// 0xFF in byte j where bit j of a block's 32 fifth bits (Q5_0, Q5_1) is set, else 0.
inline __m256i bytes_from_bits_32(const uint8_t* qh) {
  uint32_t bits = 0;
  __builtin_memcpy(&bits, qh, sizeof(bits));
  // Byte j takes byte j / 8 of the bits, then tests bit j % 8 of it.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i select = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

// A Q5_0 block's weights as signed bytes q - 16: the nibble, with 0xF0 set where the fifth
// bit is clear.
inline __m256i load_q5_0(const block_q5_0& w) {
  const __m256i high =
      _mm256_andnot_si256(bytes_from_bits_32(w.qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
  return _mm256_or_si256(unpack_nibbles(w.qs), high);
}

// A Q5_1 block's weights as unsigned bytes 0..31: the nibble with 0x10 where the fifth bit
// is set.
inline __m256i load_q5_1(const block_q5_1& w) {
  return _mm256_or_si256(unpack_nibbles(w.qs),
                         _mm256_and_si256(bytes_from_bits_32(w.qh), _mm256_set1_epi8(0x10)));
}

// A weight row of `Block`s (Q8_0 or Q4_0) against Q8_0 activations: the sum over blocks of
// both fp16 scales times `block_dot`'s 8 int32 partial sums. Two independent accumulators
// hide the latency of the FMA chain. Every ISA supplies only its `block_dot`.
template <typename Block, __m256i (*block_dot)(const Block&, const block_q8_0&)>
inline float dot_blocks_q8_0(const Block* w, const block_q8_0* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQK8_0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i p0 = block_dot(w[b], x[b]);
    const __m256i p1 = block_dot(w[b + 1], x[b + 1]);
    acc0 = _mm256_fmadd_ps(scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(scale_product(w[b + 1].d, x[b + 1].d), _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; b < nb; ++b) {
    acc0 = _mm256_fmadd_ps(scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(block_dot(w[b], x[b])),
                           acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

// dot_blocks_q8_0 of R rows of Q8_0 weights and T tokens, every output by its float steps in
// its order, so bit for bit its result; each weight block's magnitudes are taken once for the
// T tokens. `block_dot(w_abs, w, x)` must give block_dot's integer lanes from |w| and w.
template <__m256i (*block_dot)(__m256i w_abs, __m256i w, __m256i x), int R, int T>
inline void dot_tile_q8_0(const block_q8_0* const* w, const block_q8_0* const* x, int64_t n,
                          float* y, int64_t ldy) {
  __m256 acc0[R][T];
  __m256 acc1[R][T];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc0[r][t] = acc1[r][t] = _mm256_setzero_ps();
  }
  const int64_t nb = n / kQK8_0;
  int64_t b = 0;
  const auto step = [&](int64_t blk, __m256(&acc)[R][T]) {
    __m256i wq[R];
    __m256i wa[R];
    float dw[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      wq[r] = load_i8x32(w[r][blk].qs);
      wa[r] = _mm256_sign_epi8(wq[r], wq[r]);
      dw[r] = _cvtsh_ss(w[r][blk].d);
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) {
      const __m256i xq = load_i8x32(x[t][blk].qs);
      const float dx = _cvtsh_ss(x[t][blk].d);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw[r] * dx),
                                    _mm256_cvtepi32_ps(block_dot(wa[r], wq[r], xq)), acc[r][t]);
      }
    }
  };
  for (; b + 2 <= nb; b += 2) {
    step(b, acc0);
    step(b + 1, acc1);
  }
  if (b < nb) step(b, acc0);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) y[t * ldy + r] = hsum(_mm256_add_ps(acc0[r][t], acc1[r][t]));
  }
}

// The whole block of rows x tokens in dot_tile_q8_0's tiles (2 rows x 3 tokens, and what is
// left in smaller ones): kernels.h's dots_q8_0.
template <__m256i (*block_dot)(__m256i, __m256i, __m256i)>
inline void dots_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y,
                      int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  constexpr int kR = 2;
  constexpr int kT = 3;
  for (int64_t r = 0; r < rows; r += kR) {
    const int64_t nr = rows - r < kR ? rows - r : kR;
    const block_q8_0* wr[kR];
    for (int64_t i = 0; i < nr; ++i) wr[i] = reinterpret_cast<const block_q8_0*>(w + (r + i) * ws);
    for (int64_t t = 0; t < tokens; t += kT) {
      const int64_t nt = tokens - t < kT ? tokens - t : kT;
      const block_q8_0* xt[kT];
      for (int64_t j = 0; j < nt; ++j)
        xt[j] = reinterpret_cast<const block_q8_0*>(x + (t + j) * xs);
      float* out = y + t * ldy + r;
      if (nr == kR) {
        if (nt == 3) dot_tile_q8_0<block_dot, 2, 3>(wr, xt, n, out, ldy);
        if (nt == 2) dot_tile_q8_0<block_dot, 2, 2>(wr, xt, n, out, ldy);
        if (nt == 1) dot_tile_q8_0<block_dot, 2, 1>(wr, xt, n, out, ldy);
      } else {
        if (nt == 3) dot_tile_q8_0<block_dot, 1, 3>(wr, xt, n, out, ldy);
        if (nt == 2) dot_tile_q8_0<block_dot, 1, 2>(wr, xt, n, out, ldy);
        if (nt == 1) dot_tile_q8_0<block_dot, 1, 1>(wr, xt, n, out, ldy);
      }
    }
  }
}

// e^x for 8 floats, within 1 ulp of glibc's expf (every 2000th float in [-104, 88.8]): e^x = 2^n
// e^r with n = round(x / ln 2) and r = x - n ln 2 (ln 2 in two parts, so r is exact); e^r by its
// Taylor series to r^7 (|r| <= ln 2 / 2: truncation under 1e-8 relative); 2^n applied as two exact
// power-of-two factors so results down into the subnormals round once, as the AVX-512 version's
// vscalefps does (the two agree bit for bit). Infinity above 88.72, zero below -104, NaN stays NaN.
inline __m256 exp(__m256 x) {
  const __m256 xc =
      _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(88.75f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // n in [-150, 129]: halves in [-75, 65], each a normal float 2^k = (k + 127) << 23.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  e = _mm256_blendv_ps(e, _mm256_setzero_ps(),
                       _mm256_cmp_ps(x, _mm256_set1_ps(-104.0f), _CMP_LT_OQ));
  return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// ---- Prefill tiles (gemm_avx2.cc, dot_bf16_avx2.cc) --------------------------------------
// kGemmRows x kGemmTokens tiles; rows and tokens outside whole tiles go through the dot.
inline constexpr int kTileRows = static_cast<int>(kGemmRows);
inline constexpr int kTileTokens = static_cast<int>(kGemmTokens);

using TileFn = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t, int64_t);
using DotFn = float (*)(const uint8_t*, const uint8_t*, int64_t);

// Whole tiles through `tile`, the remaining rows and tokens through `dot`.
inline void Gemm(TileFn tile, DotFn dot, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs,
                 float* y, int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  const int64_t full_rows = rows / kTileRows * kTileRows;
  const int64_t full_tokens = tokens / kTileTokens * kTileTokens;
  for (int64_t t = 0; t < full_tokens; t += kTileTokens) {
    for (int64_t r = 0; r < full_rows; r += kTileRows) {
      tile(w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy, n);
    }
  }
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t r0 = t < full_tokens ? full_rows : 0;
    for (int64_t r = r0; r < rows; ++r) y[t * ldy + r] = dot(w + r * ws, x + t * xs, n);
  }
}

// Weights and activations of type T that become 8 F32 lanes by `load8` (F32, F16, BF16):
// one kTileRows x kTileTokens tile with its 12 sums in registers; the tail past the last
// whole 8 in scalar code through `to_f32`.
template <typename T, __m256 (*load8)(const T*), float (*to_f32)(T)>
void tile_float(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                int64_t n) {
  __m256 c[kTileRows][kTileTokens];
#pragma GCC unroll 4
  for (auto& row : c) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  const T* xr[kTileTokens];
  const T* wr[kTileRows];
#pragma GCC unroll 4
  for (int t = 0; t < kTileTokens; ++t) xr[t] = reinterpret_cast<const T*>(x + t * xs);
#pragma GCC unroll 4
  for (int r = 0; r < kTileRows; ++r) wr[r] = reinterpret_cast<const T*>(w + r * ws);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 xv[kTileTokens];
#pragma GCC unroll 4
    for (int t = 0; t < kTileTokens; ++t) xv[t] = load8(xr[t] + k);
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 wv = load8(wr[r] + k);
#pragma GCC unroll 4
      for (int t = 0; t < kTileTokens; ++t) c[r][t] = _mm256_fmadd_ps(wv, xv[t], c[r][t]);
    }
  }
  for (int r = 0; r < kTileRows; ++r) {
    for (int t = 0; t < kTileTokens; ++t) {
      float sum = hsum(c[r][t]);
      for (int64_t j = k; j < n; ++j) sum += to_f32(wr[r][j]) * to_f32(xr[t][j]);
      y[t * ldy + r] = sum;
    }
  }
}

}  // namespace
}  // namespace agentry::kernels::simd
