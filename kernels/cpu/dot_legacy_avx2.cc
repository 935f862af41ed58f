// kernels/cpu/dot_legacy_avx2.cc — AVX2 + FMA + F16C dot products for Q4_1, Q5_0 and Q5_1
// weights and the Q8_1 activation quantizer (references in quants_legacy.cc). Per block, as
// ggml's x86 kernels: an exact int32 sum in 8 lanes of 4 products, one FMA with d_w * d_x,
// and for Q4_1/Q5_1 the min term m_w * s_x summed on the side. Prefill goes through the tiles
// of gemm_avx2.cc.
// Compiled with -mavx2 -mfma -mf16c; only called when the CPU has all three (kernels.cc).
#include <immintrin.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_avx2.h"

namespace agentry::kernels::avx2 {
namespace {

inline __m256i block_dot_q5_0(const block_q5_0& w, const block_q8_0& x) {
  return simd::dot_i8x32(simd::load_q5_0(w), simd::load_i8x32(x.qs));
}

// Unsigned weights (0..31) as bytes.
inline __m256i weights_q4_1(const block_q4_1& w) { return simd::unpack_nibbles(w.qs); }

// A row of blocks with a min against Q8_1 activations: unsigned weights times signed
// activations (maddubs cannot saturate: 31 * 127 * 2 < 32767), 8 lanes of 4 products.
template <typename Block, __m256i (*weights)(const Block&)>
float dot_blocks_q8_1(const Block* w, const block_q8_1* x, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const __m256i p = _mm256_madd_epi16(
        _mm256_set1_epi16(1), _mm256_maddubs_epi16(weights(w[b]), simd::load_i8x32(x[b].qs)));
    acc = _mm256_fmadd_ps(simd::scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(p), acc);
    mins += fp16_to_fp32(w[b].m) * fp16_to_fp32(x[b].s);
  }
  return simd::hsum(acc) + mins;
}

}  // namespace

void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    int32_t sum = 0;
    const float d = quantize_block_q8(x + b * kQK8_0, y[b].qs, &sum);
    y[b].d = fp32_to_fp16(d);
    y[b].s = fp32_to_fp16(d * static_cast<float>(sum));
  }
}

float vec_dot_q4_1_q8_1(const block_q4_1* w, const block_q8_1* x, int64_t n) {
  return dot_blocks_q8_1<block_q4_1, &weights_q4_1>(w, x, n);
}

float vec_dot_q5_0_q8_0(const block_q5_0* w, const block_q8_0* x, int64_t n) {
  return simd::dot_blocks_q8_0<block_q5_0, &block_dot_q5_0>(w, x, n);
}

float vec_dot_q5_1_q8_1(const block_q5_1* w, const block_q8_1* x, int64_t n) {
  return dot_blocks_q8_1<block_q5_1, &simd::load_q5_1>(w, x, n);
}

}  // namespace agentry::kernels::avx2
