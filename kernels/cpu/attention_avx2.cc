// kernels/cpu/attention_avx2.cc — AVX2 + FMA + F16C version of axpy_q8_0 (attention.h).
// Compiled with -mavx2 -mfma -mf16c; only called when the CPU has all three (kernels.cc).
#include <immintrin.h>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/kernels_internal.h"

namespace agentry::kernels::avx2 {

void axpy_q8_0(float* y, float a, const block_q8_0* x, int64_t n) {
  // Per 8 values: widen the int8 to float, times the block scale (the dequantized value,
  // rounded as llama.cpp's dequantize_row_q8_0 rounds it), then one fused multiply-add into
  // y, as its ggml_vec_mad_f32 does.
  const __m256 va = _mm256_set1_ps(a);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const __m256 d = _mm256_set1_ps(_cvtsh_ss(x[b].d));
    float* yb = y + b * kQK8_0;
#pragma GCC unroll 4
    for (int j = 0; j < kQK8_0; j += 8) {
      const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(x[b].qs + j));
      const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d);
      _mm256_storeu_ps(yb + j, _mm256_fmadd_ps(v, va, _mm256_loadu_ps(yb + j)));
    }
  }
}

}  // namespace agentry::kernels::avx2
