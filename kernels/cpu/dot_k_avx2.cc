// kernels/cpu/dot_k_avx2.cc — the K-quants (Q4_K, Q5_K, Q6_K) against Q8_K activations on
// AVX2 + FMA + F16C: the Q8_K activation quantizer, the dot products, and the register-tiled
// prefill GEMM. Block arithmetic lives in simd_k_avx2.h; every tile output equals the dot of
// its row and token bit for bit (see there), which the tests check.
#include <immintrin.h>

#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/simd_k_avx2.h"

namespace agentry::kernels::avx2 {

namespace {

// Largest |x| of 256 floats. max_ps returns its second operand when either is NaN, so NaNs
// are skipped as the reference's `>` skips them.
inline float block_amax(const float* x) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 m[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                 _mm256_setzero_ps()};
  for (ptrdiff_t i = 0; i < 32; i += 4) {
#pragma GCC unroll 4
    for (ptrdiff_t k = 0; k < 4; ++k) {
      m[k] = _mm256_max_ps(_mm256_and_ps(abs_mask, _mm256_loadu_ps(x + 8 * (i + k))), m[k]);
    }
  }
  const __m256 m8 = _mm256_max_ps(_mm256_max_ps(m[0], m[1]), _mm256_max_ps(m[2], m[3]));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  return _mm_cvtss_f32(m4);
}

// The first of 256 floats whose magnitude is `amax` (the reference keeps the first).
inline float first_of_magnitude(const float* x, float amax) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 target = _mm256_set1_ps(amax);
  for (ptrdiff_t i = 0; i < 32; ++i) {
    const __m256 a = _mm256_and_ps(abs_mask, _mm256_loadu_ps(x + 8 * i));
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, target, _CMP_EQ_OQ));
    if (mask != 0) return x[8 * i + __builtin_ctz(static_cast<unsigned>(mask))];
  }
  return amax;  // not reached: amax is one of the magnitudes
}

// Sums of each 16 of the 64 int32 values in q[0..7] (8 lanes each): 4 int32.
inline __m128i sums16(const __m256i* q) {
  const __m256i s0 = _mm256_add_epi32(q[0], q[1]);
  const __m256i s1 = _mm256_add_epi32(q[2], q[3]);
  const __m256i s2 = _mm256_add_epi32(q[4], q[5]);
  const __m256i s3 = _mm256_add_epi32(q[6], q[7]);
  // Per 128-bit lane: the four sums of that lane's halves; then add the lanes.
  const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

}  // namespace

// Bit for bit the reference (which is llama.cpp's quantize_row_q8_K, the one its x86 build
// runs for activations): d = 1 / (-127 / max), where max is the first value of largest
// magnitude, and q = round-half-even(x * (-127 / max)). cvtps_epi32 rounds as nearbyint does
// in the default rounding mode, and x * iscale is the same single multiply; |q| <= 127, so
// the saturating packs never clip. Non-finite inputs, or an amax so small (< 127 / FLT_MAX)
// that the inverse scale overflows, give garbage in both, not the same garbage.
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    const float amax = block_amax(xb);
    if (amax == 0.0f) {
      y[b] = block_q8_K{};
      continue;
    }
    const float iscale = -127.0f / first_of_magnitude(xb, amax);
    const __m256 vscale = _mm256_set1_ps(iscale);
    for (ptrdiff_t g = 0; g < 4; ++g) {  // 64 values at a time
      __m256i q[8];
#pragma GCC unroll 8
      for (ptrdiff_t i = 0; i < 8; ++i) {
        q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xb + 64 * g + 8 * i), vscale));
      }
      // int32 -> int16 -> int8; the packs interleave 128-bit lanes, so restore the order.
      const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
#pragma GCC unroll 2
      for (ptrdiff_t h = 0; h < 2; ++h) {
        const __m256i q01 = _mm256_packs_epi32(q[4 * h], q[4 * h + 1]);
        const __m256i q23 = _mm256_packs_epi32(q[4 * h + 2], q[4 * h + 3]);
        const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q01, q23), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + 64 * g + 32 * h), q8);
      }
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y[b].bsums + 4 * g),
                       _mm_packs_epi32(sums16(q), _mm_setzero_si128()));
    }
    y[b].d = 1.0f / iscale;
  }
}

float vec_dot_q4_K_q8_K(const block_q4_K* w, const block_q8_K* x, int64_t n) {
  return simd_k::vec_dot<simd_k::Q4K, &simd_k::madd_avx2>(w, x, n);
}

float vec_dot_q5_K_q8_K(const block_q5_K* w, const block_q8_K* x, int64_t n) {
  return simd_k::vec_dot<simd_k::Q5K, &simd_k::madd_avx2>(w, x, n);
}

float vec_dot_q6_K_q8_K(const block_q6_K* w, const block_q8_K* x, int64_t n) {
  return simd_k::vec_dot<simd_k::Q6K, &simd_k::madd_avx2>(w, x, n);
}

constexpr int kTileTokens = 4;

void gemm_q4_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd_k::gemm<simd_k::Q4K, &simd_k::madd_avx2, kTileTokens>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q5_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd_k::gemm<simd_k::Q5K, &simd_k::madd_avx2, kTileTokens>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q6_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd_k::gemm<simd_k::Q6K, &simd_k::madd_avx2, kTileTokens>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avx2
