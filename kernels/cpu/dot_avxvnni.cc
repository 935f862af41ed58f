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

// Signed x signed bytes: |w| is unsigned, and w's sign moves onto x.
inline __m256i block_dot_q8_0(const block_q8_0& w, const block_q8_0& x) {
  const __m256i wq = simd::load_i8x32(w.qs);
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(wq, wq),
                                 _mm256_sign_epi8(simd::load_i8x32(x.qs), wq));
}

// Q4_0 nibbles (0..15, unsigned) times signed x, minus 8 * sum(x): two vpdpbusd.
inline __m256i block_dot_q4_0(const block_q4_0& w, const block_q8_0& x) {
  const __m256i xq = simd::load_i8x32(x.qs);
  const __m256i prod =
      _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), simd::unpack_nibbles(w.qs), xq);
  const __m256i sum_x8 = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), xq);
  return _mm256_sub_epi32(prod, sum_x8);
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
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w_abs, _mm256_sign_epi8(x, w));
}
}  // namespace

void dots_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd::dots_q8_0<&block_dot_q8_0_abs>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avxvnni
