// kernels/cpu/gemm_avx2.cc — register-tiled blocks of dot products for prefill (AVX2, FMA,
// F16C). Each 4-row x 3-token tile keeps its 12 sums in registers, so every weight load
// serves three tokens and every activation load four rows; rows and tokens outside whole
// tiles use the vec_dot kernels. Compared with the gemm_*_ref references in tests.
// The loops over the tile's rows and tokens are unrolled by pragma: without it GCC 12 keeps
// the sums in memory (seen in perf annotate: a store and a load around every FMA).
#include <immintrin.h>

#include <type_traits>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_avx2.h"

namespace agentry::kernels::avx2 {
namespace {

constexpr int RM = simd::kTileRows;
constexpr int RN = simd::kTileTokens;

using simd::dot_i8x32;
using simd::Gemm;
using simd::hsum;

inline __m256 load8_f32(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float f32_of(float v) { return v; }
inline float f32_of_f16(uint16_t h) { return _cvtsh_ss(h); }

// Q8_0, Q4_0 and Q5_0 weights against Q8_0 activations, and Q4_1/Q5_1 against Q8_1: `load_w`
// gives a block's 32 values as bytes (signed, or unsigned below 128, which the sign trick of
// dot_i8x32 leaves as they are). Weights with a min add m_w * s_x per block, on the side.
template <typename Block, __m256i (*load_w)(const Block&), typename XBlock = block_q8_0>
void tile_quant(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                int64_t n) {
  __m256 c[RM][RN];
#pragma GCC unroll 4
  for (auto& row : c) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  constexpr bool kMin = std::is_same_v<XBlock, block_q8_1>;
  float mins[RM][RN] = {};
  const XBlock* xr[RN];
  const Block* wr[RM];
#pragma GCC unroll 4
  for (int t = 0; t < RN; ++t) xr[t] = reinterpret_cast<const XBlock*>(x + t * xs);
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r) wr[r] = reinterpret_cast<const Block*>(w + r * ws);
  for (int64_t b = 0; b < n / 32; ++b) {
    __m256i xq[RN];
    float dx[RN];
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) {
      xq[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr[t][b].qs));
      dx[t] = _cvtsh_ss(xr[t][b].d);
    }
#pragma GCC unroll 4
    for (int r = 0; r < RM; ++r) {
      const __m256i wq = load_w(wr[r][b]);
      const float dw = _cvtsh_ss(wr[r][b].d);
#pragma GCC unroll 4
      for (int t = 0; t < RN; ++t) {
        c[r][t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * dx[t]),
                                  _mm256_cvtepi32_ps(dot_i8x32(wq, xq[t])), c[r][t]);
      }
      if constexpr (kMin) {
        const float mw = _cvtsh_ss(wr[r][b].m);
#pragma GCC unroll 4
        for (int t = 0; t < RN; ++t) mins[r][t] += mw * _cvtsh_ss(xr[t][b].s);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) y[t * ldy + r] = hsum(c[r][t]) + mins[r][t];
  }
}

inline __m256i load_q8_0(const block_q8_0& b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
}
inline __m256i load_q4_0(const block_q4_0& b) {
  return _mm256_sub_epi8(simd::unpack_nibbles(b.qs), _mm256_set1_epi8(8));
}

float dot_f32(const uint8_t* w, const uint8_t* x, int64_t n) {
  return vec_dot_f32(reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(x), n);
}
float dot_f16(const uint8_t* w, const uint8_t* x, int64_t n) {
  return vec_dot_f16(reinterpret_cast<const uint16_t*>(w), reinterpret_cast<const uint16_t*>(x), n);
}
float dot_q8_0(const uint8_t* w, const uint8_t* x, int64_t n) {
  return vec_dot_q8_0_q8_0(reinterpret_cast<const block_q8_0*>(w),
                           reinterpret_cast<const block_q8_0*>(x), n);
}
float dot_q4_0(const uint8_t* w, const uint8_t* x, int64_t n) {
  return vec_dot_q4_0_q8_0(reinterpret_cast<const block_q4_0*>(w),
                           reinterpret_cast<const block_q8_0*>(x), n);
}
float dot_q5_0(const uint8_t* w, const uint8_t* x, int64_t n) {
  return vec_dot_q5_0_q8_0(reinterpret_cast<const block_q5_0*>(w),
                           reinterpret_cast<const block_q8_0*>(x), n);
}
float dot_q4_1(const uint8_t* w, const uint8_t* x, int64_t n) {
  return vec_dot_q4_1_q8_1(reinterpret_cast<const block_q4_1*>(w),
                           reinterpret_cast<const block_q8_1*>(x), n);
}
float dot_q5_1(const uint8_t* w, const uint8_t* x, int64_t n) {
  return vec_dot_q5_1_q8_1(reinterpret_cast<const block_q5_1*>(w),
                           reinterpret_cast<const block_q8_1*>(x), n);
}
inline __m256i load_q4_1(const block_q4_1& b) { return simd::unpack_nibbles(b.qs); }

}  // namespace

void gemm_f32(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&simd::tile_float<float, &load8_f32, &f32_of>, &dot_f32, w, ws, x, xs, y, ldy, n, rows,
       tokens, n * static_cast<int64_t>(sizeof(float)));
}
void gemm_f16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&simd::tile_float<uint16_t, &load8_f16, &f32_of_f16>, &dot_f16, w, ws, x, xs, y, ldy, n,
       rows, tokens, n * static_cast<int64_t>(sizeof(uint16_t)));
}
void gemm_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_quant<block_q8_0, &load_q8_0>, &dot_q8_0, w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q4_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_quant<block_q4_0, &load_q4_0>, &dot_q4_0, w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q5_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_quant<block_q5_0, &simd::load_q5_0>, &dot_q5_0, w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q4_1(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_quant<block_q4_1, &load_q4_1, block_q8_1>, &dot_q4_1, w, ws, x, xs, y, ldy, n, rows,
       tokens);
}
void gemm_q5_1(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_quant<block_q5_1, &simd::load_q5_1, block_q8_1>, &dot_q5_1, w, ws, x, xs, y, ldy, n,
       rows, tokens);
}

}  // namespace agentry::kernels::avx2
