// kernels/cpu/gemm_avx2.cc — register-tiled blocks of dot products for prefill (AVX2, FMA,
// F16C). Each 4-row x 3-token tile keeps its 12 sums in registers, so every weight load
// serves three tokens and every activation load four rows; rows and tokens outside whole
// tiles use the vec_dot kernels. Compared with the gemm_*_ref references in tests.
// The loops over the tile's rows and tokens are unrolled by pragma: without it GCC 12 keeps
// the sums in memory (seen in perf annotate: a store and a load around every FMA).
#include <immintrin.h>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels::avx2 {
namespace {

constexpr int RM = static_cast<int>(kGemmRows);
constexpr int RN = static_cast<int>(kGemmTokens);

inline float hsum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i dot_i8x32(__m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

inline __m256i unpack_nibbles_minus_8(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
}

void tile_f32(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n) {
  __m256 c[RM][RN];
#pragma GCC unroll 4
  for (auto& row : c) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  const float* xr[RN];
  const float* wr[RM];
#pragma GCC unroll 4
  for (int t = 0; t < RN; ++t) xr[t] = reinterpret_cast<const float*>(x + t * xs);
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r) wr[r] = reinterpret_cast<const float*>(w + r * ws);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 xv[RN];
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) xv[t] = _mm256_loadu_ps(xr[t] + k);
#pragma GCC unroll 4
    for (int r = 0; r < RM; ++r) {
      const __m256 wv = _mm256_loadu_ps(wr[r] + k);
#pragma GCC unroll 4
      for (int t = 0; t < RN; ++t) c[r][t] = _mm256_fmadd_ps(wv, xv[t], c[r][t]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) {
      float sum = hsum(c[r][t]);
      for (int64_t j = k; j < n; ++j) sum += wr[r][j] * xr[t][j];
      y[t * ldy + r] = sum;
    }
  }
}

void tile_f16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n) {
  __m256 c[RM][RN];
#pragma GCC unroll 4
  for (auto& row : c) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  const uint16_t* xr[RN];
  const uint16_t* wr[RM];
#pragma GCC unroll 4
  for (int t = 0; t < RN; ++t) xr[t] = reinterpret_cast<const uint16_t*>(x + t * xs);
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r) wr[r] = reinterpret_cast<const uint16_t*>(w + r * ws);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 xv[RN];
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) {
      xv[t] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xr[t] + k)));
    }
#pragma GCC unroll 4
    for (int r = 0; r < RM; ++r) {
      const __m256 wv =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wr[r] + k)));
#pragma GCC unroll 4
      for (int t = 0; t < RN; ++t) c[r][t] = _mm256_fmadd_ps(wv, xv[t], c[r][t]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) {
      float sum = hsum(c[r][t]);
      for (int64_t j = k; j < n; ++j) sum += _cvtsh_ss(wr[r][j]) * _cvtsh_ss(xr[t][j]);
      y[t * ldy + r] = sum;
    }
  }
}

// Q8_0 and Q4_0 weights against Q8_0 activations: `load_w` gives a block's 32 signed values.
template <typename Block, __m256i (*load_w)(const Block&)>
void tile_quant(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                int64_t n) {
  __m256 c[RM][RN];
#pragma GCC unroll 4
  for (auto& row : c) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  const block_q8_0* xr[RN];
  const Block* wr[RM];
#pragma GCC unroll 4
  for (int t = 0; t < RN; ++t) xr[t] = reinterpret_cast<const block_q8_0*>(x + t * xs);
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
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < RM; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < RN; ++t) y[t * ldy + r] = hsum(c[r][t]);
  }
}

inline __m256i load_q8_0(const block_q8_0& b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
}
inline __m256i load_q4_0(const block_q4_0& b) { return unpack_nibbles_minus_8(b.qs); }

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

}  // namespace

void gemm_f32(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_f32, &dot_f32, w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_f16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_f16, &dot_f16, w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_quant<block_q8_0, &load_q8_0>, &dot_q8_0, w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q4_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  Gemm(&tile_quant<block_q4_0, &load_q4_0>, &dot_q4_0, w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avx2
