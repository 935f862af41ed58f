// kernels/cpu/dot_avxvnni.cc — the Q8_0 and Q4_0 dot products with AVX-VNNI's vpdpbusd,
// which multiplies unsigned by signed bytes and sums groups of four into int32 lanes in one
// instruction (AVX2 needs maddubs + madd, plus the sign trick for Q4_0's offset).
// Compiled with -mavx2 -mfma -mf16c -mavxvnni; used only when CPUID reports AVX-VNNI.
#include <immintrin.h>

#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_avx2.h"

namespace agentry::kernels::avxvnni {
namespace {

using simd::hsum;
using simd::scale_product;

// Signed x signed bytes: |w| is unsigned, and w's sign moves onto x.
inline __m256i dot_i8(__m256i w, __m256i x) {
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                                 _mm256_sign_epi8(x, w));
}

// Q4_0 nibbles (0..15, unsigned) times signed x, minus 8 * sum(x): two vpdpbusd.
inline __m256i dot_q4(const uint8_t* qs, __m256i x) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i nibbles =
      _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
  const __m256i prod = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), nibbles, x);
  const __m256i sum_x8 = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), x);
  return _mm256_sub_epi32(prod, sum_x8);
}

}  // namespace

float vec_dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQK8_0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i p0 = dot_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs)),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)));
    const __m256i p1 = dot_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b + 1].qs)),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b + 1].qs)));
    acc0 = _mm256_fmadd_ps(scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(scale_product(w[b + 1].d, x[b + 1].d), _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i p0 = dot_i8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs)),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)));
    acc0 = _mm256_fmadd_ps(scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(p0), acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

float vec_dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQK4_0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i p0 =
        dot_q4(w[b].qs, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)));
    const __m256i p1 =
        dot_q4(w[b + 1].qs, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b + 1].qs)));
    acc0 = _mm256_fmadd_ps(scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(scale_product(w[b + 1].d, x[b + 1].d), _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; b < nb; ++b) {
    const __m256i p0 =
        dot_q4(w[b].qs, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs)));
    acc0 = _mm256_fmadd_ps(scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(p0), acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

}  // namespace agentry::kernels::avxvnni
