// kernels/cpu/simd_avx2.h — small AVX2 helpers shared by the AVX2 and AVX-VNNI kernel files.
// Include only from files compiled with -mavx2 -mfma -mf16c.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/quants.h"

namespace agentry::kernels::simd {

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

}  // namespace agentry::kernels::simd
