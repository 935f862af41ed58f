// kernels/cpu/ops_avx512.cc — softmax, SiLU(gate) * up and F16 and F32 axpy blocks (ops.h) on
// 512-bit vectors. Compiled with the AVX-512 flags of dot_avx512.cc.
// <immintrin.h> through immintrin_avx512.h, first: GCC 12 workaround (see there).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/immintrin_avx512.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/simd_avx512.h"

namespace agentry::kernels::avx512 {
namespace {

inline __mmask16 first(int64_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << count) - 1);
}

// 16 values from F16 or F32, the lanes outside `mask` zero.
inline __m512 load16(const uint16_t* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}
inline __m512 load16(const float* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }

// One key of a tile: c[t][v] += av[t] * xv[v] for every token t and vector v.
template <int RT, int NV>
inline void fma_tile_row(__m512 (&c)[RT][NV], const __m512 (&xv)[NV], const float (&av)[RT]) {
#pragma GCC unroll 8
  for (int t = 0; t < RT; ++t) {
    const __m512 at = _mm512_set1_ps(av[t]);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[t][v] = _mm512_fmadd_ps(at, xv[v], c[t][v]);
  }
}

// Tiles of RT tokens x NV vectors of 16 outputs (24 accumulators at 6 x 4). Each x row is
// loaded once a tile and each coefficient broadcast to all lanes: F32 ones straight from
// memory, at any stride (a_step apart along s); F16 ones from a float copy made 64 at a time
// (their a_step is 1). Every output gets y = fma(a, x, y) in order of s, as axpy_f16
// computes it. T is the element type of a and x: uint16_t (F16) or float.
template <typename T, int RT, int NV>
void axpy_tile(float* y, int64_t ldy, const T* a, int64_t lda, int64_t a_step, const T* x,
               int64_t ldx, int64_t n_x, __mmask16 last, bool strided) {
  __m512 c[RT][NV];
#pragma GCC unroll 8
  for (int t = 0; t < RT; ++t) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      c[t][v] =
          _mm512_maskz_loadu_ps(v == NV - 1 ? last : first(16), y + t * ldy + ptrdiff_t{16} * v);
    }
  }
  const auto load_row = [&](int64_t s, __m512(&xv)[NV]) {
    const T* xs = x + s * ldx;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      xv[v] = load16(xs + ptrdiff_t{16} * v, v == NV - 1 ? last : first(16));
  };
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t s = 0; s < n_x; ++s) {
      __m512 xv[NV];
      load_row(s, xv);
      float av[RT];
#pragma GCC unroll 8
      for (int t = 0; t < RT; ++t) av[t] = a[t * lda + s * a_step];
      fma_tile_row(c, xv, av);
    }
  } else {
    constexpr int64_t kKeys = 64;
    alignas(64) float af[RT][kKeys];
    for (int64_t s0 = 0; s0 < n_x; s0 += kKeys) {
      const int64_t ns = std::min(kKeys, n_x - s0);
      for (int t = 0; t < RT; ++t) {
        for (int64_t q = 0; q < ns; q += 16) {
          _mm512_store_ps(&af[t][q], load16(a + t * lda + s0 + q, first(ns - q)));
        }
      }
      for (int64_t s = 0; s < ns; ++s) {
        if (strided) {
          prefetch_rows_ahead(x, ldx * static_cast<int64_t>(sizeof(T)), s0 + s, 1, n_x,
                              int64_t{NV} * 16 * static_cast<int64_t>(sizeof(T)));
        }
        __m512 xv[NV];
        load_row(s0 + s, xv);
        float av[RT];
#pragma GCC unroll 8
        for (int t = 0; t < RT; ++t) av[t] = af[t][s];
        fma_tile_row(c, xv, av);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < RT; ++t) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      _mm512_mask_storeu_ps(y + t * ldy + ptrdiff_t{16} * v, v == NV - 1 ? last : first(16),
                            c[t][v]);
    }
  }
}

template <typename T>
using AxpyTileFn = void (*)(float*, int64_t, const T*, int64_t, int64_t, const T*, int64_t, int64_t,
                            __mmask16, bool);

template <typename T, int RT>
AxpyTileFn<T> AxpyTileOf(int64_t nv) {
  switch (nv) {
    case 1:
      return &axpy_tile<T, RT, 1>;
    case 2:
      return &axpy_tile<T, RT, 2>;
    case 3:
      return &axpy_tile<T, RT, 3>;
    default:
      return &axpy_tile<T, RT, 4>;
  }
}

template <typename T>
AxpyTileFn<T> AxpyTileOf(int64_t rt, int64_t nv) {
  switch (rt) {
    case 1:
      return AxpyTileOf<T, 1>(nv);
    case 2:
      return AxpyTileOf<T, 2>(nv);
    case 3:
      return AxpyTileOf<T, 3>(nv);
    case 4:
      return AxpyTileOf<T, 4>(nv);
    case 5:
      return AxpyTileOf<T, 5>(nv);
    default:
      return AxpyTileOf<T, 6>(nv);
  }
}

}  // namespace

void soft_max_f32(float* x, int64_t n, float scale) {
  const __m512 sv = _mm512_set1_ps(scale);
  __m512 mv = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sv);
    _mm512_mask_storeu_ps(x + i, m, v);
    mv = _mm512_mask_max_ps(mv, m, mv, v);
  }
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(mv));
  double sum = 0.0;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first(n - i);
    const __m512 e =
        _mm512_maskz_mov_ps(m, simd512::exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), max)));
    _mm512_mask_storeu_ps(x + i, m, e);
    // Per 8 in float, across them in double: the AVX2 kernel's order (ops.h), so that a
    // softmax has the same bits on every table. (A tail's zero lanes add nothing.)
    sum += simd::hsum(_mm512_castps512_ps256(e));
    sum += simd::hsum(_mm512_extractf32x8_ps(e, 1));
  }
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first(n - i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
  }
}

void silu_mul_f32(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = first(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = simd512::exp(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

namespace {

// Keys in blocks of kKeys, so that a block of x rows (kKeys x kCols floats) stays in the L2
// cache while the tiles of every token pass over it; the accumulators go back to y between
// blocks, which keeps each output's fused multiply-adds in order of s.
template <typename T>
void axpy_block(float* y, int64_t ldy, const T* a, int64_t lda, int64_t a_step, const T* x,
                int64_t ldx, int64_t n_x, int64_t n, int64_t tokens) {
  constexpr int64_t kCols = 64;
  constexpr int64_t kTokens = 6;
  constexpr int64_t kKeys = 256;
  const bool strided = ldx > n;  // each row of x longer than what is read of it
  for (int64_t s0 = 0; s0 < n_x; s0 += kKeys) {
    const int64_t ns = std::min(kKeys, n_x - s0);
    for (int64_t i0 = 0; i0 < n; i0 += kCols) {
      const int64_t width = std::min(kCols, n - i0);
      const int64_t nv = (width + 15) / 16;
      const __mmask16 last = first(width - 16 * (nv - 1));
      for (int64_t t0 = 0; t0 < tokens; t0 += kTokens) {
        const int64_t rt = std::min(kTokens, tokens - t0);
        AxpyTileOf<T>(rt, nv)(y + t0 * ldy + i0, ldy, a + t0 * lda + s0 * a_step, lda, a_step,
                              x + s0 * ldx + i0, ldx, ns, last, strided);
      }
    }
  }
}

}  // namespace

void axpy_block_f16(float* y, int64_t ldy, const uint16_t* a, int64_t lda, const uint16_t* x,
                    int64_t ldx, int64_t n_x, int64_t n, int64_t tokens) {
  axpy_block(y, ldy, a, lda, 1, x, ldx, n_x, n, tokens);
}

void axpy_block_f32(float* y, int64_t ldy, const float* a, int64_t lda, int64_t a_step,
                    const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t tokens) {
  axpy_block(y, ldy, a, lda, a_step, x, ldx, n_x, n, tokens);
}

}  // namespace agentry::kernels::avx512
