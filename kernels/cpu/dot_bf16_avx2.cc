// kernels/cpu/dot_bf16_avx2.cc — AVX2 + FMA versions of the BF16 kernels in bf16.h: the
// activation conversion, the dot product and the register-tiled prefill block.
// Compiled with -mavx2 -mfma -mf16c; only called when the CPU has all three (kernels.cc).
// A BF16 value is the top half of an F32, so widening is a zero-extend and a shift by 16.
#include <immintrin.h>

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/simd_avx2.h"

namespace agentry::kernels::avx2 {
namespace {

using simd::hsum;

inline __m256 load8_bf16(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

}  // namespace

void convert_row_fp32_to_bf16(const float* x, uint16_t* y, int64_t n) {
  // fp32_to_bf16 eight lanes at a time: add 0x7FFF plus the lowest kept bit (round to nearest
  // even), keep the top 16 bits; NaNs instead keep their top bits with the quiet bit forced.
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
  const __m256i inf = _mm256_set1_epi32(0x7F800000);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i bias = _mm256_set1_epi32(0x7FFF);
  const __m256i quiet = _mm256_set1_epi32(0x40);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i high = _mm256_srli_epi32(bits, 16);
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(bits, _mm256_add_epi32(bias, _mm256_and_si256(high, one))), 16);
    // Both sides are below 2^31 after the mask, so the signed compare is exact.
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, abs_mask), inf);
    const __m256i out = _mm256_blendv_epi8(rounded, _mm256_or_si256(high, quiet), nan);
    // Every lane holds a value below 2^16: the unsigned-saturating pack keeps it, and the
    // permute puts the two 128-bit halves' results back in order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(out, out), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

float vec_dot_bf16(const uint16_t* w, const uint16_t* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps();
  __m256 acc3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm256_fmadd_ps(load8_bf16(w + i), load8_bf16(x + i), acc0);
    acc1 = _mm256_fmadd_ps(load8_bf16(w + i + 8), load8_bf16(x + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(load8_bf16(w + i + 16), load8_bf16(x + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(load8_bf16(w + i + 24), load8_bf16(x + i + 24), acc3);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load8_bf16(w + i), load8_bf16(x + i), acc0);
  float sum = hsum(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
  for (; i < n; ++i) sum += bf16_to_fp32(w[i]) * bf16_to_fp32(x[i]);
  return sum;
}

namespace {

float dot_bf16(const uint8_t* w, const uint8_t* x, int64_t n) {
  return vec_dot_bf16(reinterpret_cast<const uint16_t*>(w), reinterpret_cast<const uint16_t*>(x),
                      n);
}

}  // namespace

// gemm_avx2.cc's F16 tile shape, BF16 widened: each weight load serves three tokens and each
// activation load four rows; rows and tokens outside whole tiles through the dot product.
void gemm_bf16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd::Gemm(&simd::tile_float<uint16_t, &load8_bf16, &bf16_to_fp32>, &dot_bf16, w, ws, x, xs, y,
             ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avx2
