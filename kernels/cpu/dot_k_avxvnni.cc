// kernels/cpu/dot_k_avxvnni.cc — the K-quant dots and prefill GEMM of simd_k_avx2.h with
// AVX-VNNI's vpdpwssd, which multiplies int16 pairs by the sub-block scales and adds them to
// the int32 sums in one instruction where AVX2 needs madd and add. Same integers, so the same
// bits as the AVX2 kernels (the tests compare them exactly). Compiled with -mavxvnni.
#include <immintrin.h>

#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_k_avx2.h"

namespace agentry::kernels::avxvnni {
namespace {

inline __m256i madd_vnni(__m256i acc, __m256i p, __m256i s) {
  return _mm256_dpwssd_avx_epi32(acc, p, s);
}

constexpr int kTileTokens = 4;

}  // namespace

float vec_dot_q4_K_q8_K(const block_q4_K* w, const block_q8_K* x, int64_t n) {
  return simd_k::vec_dot<simd_k::Q4K, &madd_vnni>(w, x, n);
}

float vec_dot_q5_K_q8_K(const block_q5_K* w, const block_q8_K* x, int64_t n) {
  return simd_k::vec_dot<simd_k::Q5K, &madd_vnni>(w, x, n);
}

float vec_dot_q6_K_q8_K(const block_q6_K* w, const block_q8_K* x, int64_t n) {
  return simd_k::vec_dot<simd_k::Q6K, &madd_vnni>(w, x, n);
}

void gemm_q4_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd_k::gemm<simd_k::Q4K, &madd_vnni, kTileTokens>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q5_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd_k::gemm<simd_k::Q5K, &madd_vnni, kTileTokens>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q6_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd_k::gemm<simd_k::Q6K, &madd_vnni, kTileTokens>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avxvnni
