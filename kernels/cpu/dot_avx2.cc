// kernels/cpu/dot_avx2.cc — AVX2 + FMA + F16C versions of the dot products in quants.h.
// Compiled with -mavx2 -mfma -mf16c; only called when the CPU has all three (kernels.cc).
#include <immintrin.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_avx2.h"

namespace agentry::kernels::avx2 {

using simd::dot_i8x32;
using simd::hsum;
using simd::unpack_nibbles;

float vec_dot_f32(const float* w, const float* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps();
  __m256 acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), acc0);
  }
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

float vec_dot_f16(const uint16_t* w, const uint16_t* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i + 8)));
    acc0 = _mm256_fmadd_ps(w0, x0, acc0);
    acc1 = _mm256_fmadd_ps(w1, x1, acc1);
  }
  float sum = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) sum += fp16_to_fp32(w[i]) * fp16_to_fp32(x[i]);
  return sum;
}

namespace {

inline __m256i block_dot_q8_0(const block_q8_0& w, const block_q8_0& x) {
  return dot_i8x32(simd::load_i8x32(w.qs), simd::load_i8x32(x.qs));
}

inline __m256i block_dot_q4_0(const block_q4_0& w, const block_q8_0& x) {
  return dot_i8x32(_mm256_sub_epi8(unpack_nibbles(w.qs), _mm256_set1_epi8(8)),
                   simd::load_i8x32(x.qs));
}

}  // namespace

float vec_dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* x, int64_t n) {
  return simd::dot_blocks_q8_0<block_q8_0, &block_dot_q8_0>(w, x, n);
}

float vec_dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* x, int64_t n) {
  return simd::dot_blocks_q8_0<block_q4_0, &block_dot_q4_0>(w, x, n);
}

namespace {
// block_dot_q8_0 with |w| given.
inline __m256i block_dot_q8_0_abs(__m256i w_abs, __m256i w, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(x, w)),
                           _mm256_set1_epi16(1));
}
}  // namespace

void dots_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd::dots_q8_0<&block_dot_q8_0_abs>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

// One block of activations to Q8_0 the way llama.cpp's SIMD path does it at run time: scale
// 127 / amax and round half to even. (The scalar reference rounds half away from zero, as
// llama.cpp's reference quantizer does for weights; the two differ by one step on exact ties
// only.) Writes the 32 int8s and returns the scale as a float (before its fp16 rounding) with
// the int32 sum of the 32 values (for Q8_1's s).
float quantize_block_q8(const float* xb, int8_t* qs, int32_t* sum) {
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_loadu_ps(xb + static_cast<ptrdiff_t>(8) * i);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[i]));
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float max_scalar = _mm_cvtss_f32(m);
  const __m256 id = _mm256_set1_ps(max_scalar != 0.0f ? 127.0f / max_scalar : 0.0f);
  __m256i q[4];
  for (int i = 0; i < 4; ++i) {
    q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], id), _MM_FROUND_TO_NEAREST_INT));
  }
  const __m256i q_sum =
      _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(q_sum), _mm256_extracti128_si256(q_sum, 1));
  s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
  *sum = _mm_cvtsi128_si32(s4);
  // int32 -> int16 -> int8; the packs interleave 128-bit lanes, so restore the order.
  const __m256i q01 = _mm256_packs_epi32(q[0], q[1]);
  const __m256i q23 = _mm256_packs_epi32(q[2], q[3]);
  __m256i q8 = _mm256_packs_epi16(q01, q23);
  q8 = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), q8);
  return max_scalar / 127.0f;
}

void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    int32_t sum = 0;
    y[b].d = fp32_to_fp16(quantize_block_q8(x + b * kQK8_0, y[b].qs, &sum));
  }
}

void axpy_f16(float* y, float a, const uint16_t* x, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, xv, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * _cvtsh_ss(x[i]);
}

void convert_row_fp32_to_fp16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace agentry::kernels::avx2
