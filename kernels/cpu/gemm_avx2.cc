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

constexpr int RM = static_cast<int>(kGemmRows);
constexpr int RN = static_cast<int>(kGemmTokens);

using simd::dot_i8x32;
using simd::hsum;

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float to_f32(float v) { return v; }
inline float to_f32(uint16_t h) { return _cvtsh_ss(h); }

// F32 and F16 weights against activations of the same type.
template <typename T>
void tile_float(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                int64_t n) {
  __m256 c[RM][RN];
#pragma GCC unroll 4
  for (auto& row : c) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  const T* xr[RN];
  const T* wr[RM];
#pragma GCC unroll 4
  for (int t = 0; t < RN; ++t) xr[t] = reinterpret_cast<const T*>(x + t * xs);
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r) wr[r] = reinterpret_cast<const T*>(w + r * ws);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 xv[RN];
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) xv[t] = load8(xr[t] + k);
#pragma GCC unroll 4
    for (int r = 0; r < RM; ++r) {
      const __m256 wv = load8(wr[r] + k);
#pragma GCC unroll 4
      for (int t = 0; t < RN; ++t) c[r][t] = _mm256_fmadd_ps(wv, xv[t], c[r][t]);
    }
  }
  for (int r = 0; r < RM; ++r) {
    for (int t = 0; t < RN; ++t) {
      float sum = hsum(c[r][t]);
      for (int64_t j = k; j < n; ++j) sum += to_f32(wr[r][j]) * to_f32(xr[t][j]);
      y[t * ldy + r] = sum;
    }
  }
}

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

using TileFn = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t, int64_t);
using DotFn = float (*)(const uint8_t*, const uint8_t*, int64_t);

// Whole tiles through `tile`, the remaining rows and tokens through `dot`.
void Gemm(TileFn tile, DotFn dot, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs,
          float* y, int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  const int64_t full_rows = rows / RM * RM;
  const int64_t full_tokens = tokens / RN * RN;
  for (int64_t t = 0; t < full_tokens; t += RN) {
    for (int64_t r = 0; r < full_rows; r += RM) {
      tile(w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy, n);
    }
  }
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t r0 = t < full_tokens ? full_rows : 0;
    for (int64_t r = r0; r < rows; ++r) y[t * ldy + r] = dot(w + r * ws, x + t * xs, n);
  }
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
  Gemm(&tile_float<float>, &dot_f32, w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_f16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_float<uint16_t>, &dot_f16, w, ws, x, xs, y, ldy, n, rows, tokens);
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
