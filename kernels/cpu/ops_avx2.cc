// kernels/cpu/ops_avx2.cc — softmax, SiLU(gate) * up and F16 and F32 axpy blocks (ops.h) on
// AVX2, FMA and F16C. The exponential is simd::exp (simd_avx2.h), the same bits as the AVX-512
// one; rows end in a masked vector instead of a scalar tail.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/simd_avx2.h"

namespace agentry::kernels::avx2 {
namespace {

// Lanes [0, count) set, count < 8: masked moves touch nothing past the row's end, and need
// no copy through memory (which made a short row's tail cost more than its whole vectors).
inline __m256i first_lanes(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// The first `count` (< 8) floats, zeros after; reads and writes nothing past them.
inline __m256 load_partial(const float* p, int64_t count) {
  return _mm256_maskload_ps(p, first_lanes(count));
}
inline void store_partial(float* p, __m256 v, int64_t count) {
  _mm256_maskstore_ps(p, first_lanes(count), v);
}
// The largest lane (lanes hold no NaN, as in a softmax row that can train).
inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// 8 values from F16 or F32; one of them as a float.
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline float to_float(uint16_t h) { return _cvtsh_ss(h); }
inline float to_float(float f) { return f; }

// One key of a tile: c[t][v] += av[t] * xv[v] for every token t and vector v.
template <int RT, int NV>
inline void fma_tile_row(__m256 (&c)[RT][NV], const __m256 (&xv)[NV], const float (&av)[RT]) {
#pragma GCC unroll 4
  for (int t = 0; t < RT; ++t) {
    const __m256 at = _mm256_set1_ps(av[t]);
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[t][v] = _mm256_fmadd_ps(at, xv[v], c[t][v]);
  }
}

// Tiles of RT tokens x NV vectors of 8 outputs (12 accumulators at 3 x 4), as
// avx512::axpy_tile: F32 coefficients broadcast straight from memory at any stride, F16 ones
// from a float copy; columns past the last whole vector are left to the caller. T is the
// element type of a and x: uint16_t (F16) or float.
template <typename T, int RT, int NV>
void axpy_tile(float* y, int64_t ldy, const T* a, int64_t lda, int64_t a_step, const T* x,
               int64_t ldx, int64_t n_x, bool strided) {
  __m256 c[RT][NV];
#pragma GCC unroll 4
  for (int t = 0; t < RT; ++t) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[t][v] = _mm256_loadu_ps(y + t * ldy + ptrdiff_t{8} * v);
  }
  const auto load_row = [&](int64_t s, __m256(&xv)[NV]) {
    const T* xs = x + s * ldx;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) xv[v] = load8(xs + ptrdiff_t{8} * v);
  };
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t s = 0; s < n_x; ++s) {
      __m256 xv[NV];
      load_row(s, xv);
      float av[RT];
#pragma GCC unroll 4
      for (int t = 0; t < RT; ++t) av[t] = a[t * lda + s * a_step];
      fma_tile_row(c, xv, av);
    }
  } else {
    constexpr int64_t kKeys = 64;
    alignas(32) float af[RT][kKeys];
    for (int64_t s0 = 0; s0 < n_x; s0 += kKeys) {
      const int64_t ns = std::min(kKeys, n_x - s0);
      for (int t = 0; t < RT; ++t) {
        for (int64_t s = 0; s < ns; ++s) af[t][s] = to_float(a[t * lda + s0 + s]);
      }
      for (int64_t s = 0; s < ns; ++s) {
        if (strided) {
          prefetch_rows_ahead(x, ldx * static_cast<int64_t>(sizeof(T)), s0 + s, 1, n_x,
                              int64_t{NV} * 8 * static_cast<int64_t>(sizeof(T)));
        }
        __m256 xv[NV];
        load_row(s0 + s, xv);
        float av[RT];
#pragma GCC unroll 4
        for (int t = 0; t < RT; ++t) av[t] = af[t][s];
        fma_tile_row(c, xv, av);
      }
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < RT; ++t) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(y + t * ldy + ptrdiff_t{8} * v, c[t][v]);
  }
}

// The last `count` (< 8) columns of RT tokens: axpy_tile's terms on one vector whose lanes
// past `count` are neither read nor written (masked loads and stores for y and F32 rows).
template <typename T, int RT>
void axpy_tile_tail(float* y, int64_t ldy, const T* a, int64_t lda, int64_t a_step, const T* x,
                    int64_t ldx, int64_t n_x, int64_t count) {
  const __m256i mask = first_lanes(count);
  __m256 c[RT][1];
  for (int t = 0; t < RT; ++t) c[t][0] = _mm256_maskload_ps(y + t * ldy, mask);
  for (int64_t s = 0; s < n_x; ++s) {
    __m256 xv[1];
    if constexpr (std::is_same_v<T, float>) {
      xv[0] = _mm256_maskload_ps(x + s * ldx, mask);
    } else {
      alignas(16) uint16_t tmp[8] = {};
      std::memcpy(tmp, x + s * ldx, count * sizeof(uint16_t));
      xv[0] = load8(tmp);
    }
    float av[RT];
    for (int t = 0; t < RT; ++t) av[t] = to_float(a[t * lda + s * a_step]);
    fma_tile_row(c, xv, av);
  }
  for (int t = 0; t < RT; ++t) _mm256_maskstore_ps(y + t * ldy, mask, c[t][0]);
}

template <typename T>
using AxpyTileFn = void (*)(float*, int64_t, const T*, int64_t, int64_t, const T*, int64_t, int64_t,
                            bool);

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
    default:
      return AxpyTileOf<T, 3>(nv);
  }
}

// Keys in blocks of kKeys, as avx512::axpy_block, so that a block of x rows stays in cache
// while the tiles of every token pass over it.
template <typename T>
void axpy_block(float* y, int64_t ldy, const T* a, int64_t lda, int64_t a_step, const T* x,
                int64_t ldx, int64_t n_x, int64_t n, int64_t tokens) {
  constexpr int64_t kCols = 32;
  constexpr int64_t kTokens = 3;
  constexpr int64_t kKeys = 64;
  const int64_t whole = n / 8 * 8;
  const bool strided = ldx > n;  // each row of x longer than what is read of it
  for (int64_t s0 = 0; s0 < n_x; s0 += kKeys) {
    const int64_t ns = std::min(kKeys, n_x - s0);
    for (int64_t i0 = 0; i0 < whole; i0 += kCols) {
      const int64_t nv = std::min(kCols, whole - i0) / 8;
      for (int64_t t0 = 0; t0 < tokens; t0 += kTokens) {
        const int64_t rt = std::min(kTokens, tokens - t0);
        AxpyTileOf<T>(rt, nv)(y + t0 * ldy + i0, ldy, a + t0 * lda + s0 * a_step, lda, a_step,
                              x + s0 * ldx + i0, ldx, ns, strided);
      }
    }
  }
  if (whole == n) return;
  for (int64_t t0 = 0; t0 < tokens; t0 += kTokens) {
    const int64_t rt = std::min(kTokens, tokens - t0);
    const auto tail = rt == 3   ? &axpy_tile_tail<T, 3>
                      : rt == 2 ? &axpy_tile_tail<T, 2>
                                : &axpy_tile_tail<T, 1>;
    tail(y + t0 * ldy + whole, ldy, a + t0 * lda, lda, a_step, x + whole, ldx, n_x, n - whole);
  }
}

}  // namespace

void soft_max_f32(float* x, int64_t n, float scale) {
  const __m256 sv = _mm256_set1_ps(scale);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  const int64_t whole = n / 8 * 8;
  __m256 mv = neg_inf;
  for (int64_t i = 0; i < whole; i += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), sv);
    _mm256_storeu_ps(x + i, v);
    mv = _mm256_max_ps(mv, v);
  }
  const __m256i tail = first_lanes(n - whole);
  if (whole < n) {
    const __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + whole, tail), sv);
    _mm256_maskstore_ps(x + whole, tail, v);
    mv = _mm256_max_ps(mv, _mm256_blendv_ps(neg_inf, v, _mm256_castsi256_ps(tail)));
  }
  const __m256 maxv = _mm256_set1_ps(hmax(mv));
  double sum = 0.0;
  for (int64_t i = 0; i < whole; i += 8) {
    const __m256 e = simd::exp(_mm256_sub_ps(_mm256_loadu_ps(x + i), maxv));
    _mm256_storeu_ps(x + i, e);
    sum += simd::hsum(e);  // per 8 in float, across them in double
  }
  if (whole < n) {
    // Lanes past the row are zeroed, so they add nothing to the sum.
    const __m256 e =
        _mm256_and_ps(simd::exp(_mm256_sub_ps(_mm256_maskload_ps(x + whole, tail), maxv)),
                      _mm256_castsi256_ps(tail));
    _mm256_maskstore_ps(x + whole, tail, e);
    sum += simd::hsum(e);
  }
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t i = 0; i < whole; i += 8)
    _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  if (whole < n)
    _mm256_maskstore_ps(x + whole, tail, _mm256_mul_ps(_mm256_maskload_ps(x + whole, tail), inv));
}

void silu_mul_f32(float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  auto silu_mul = [one](__m256 g, __m256 u) {
    const __m256 e = simd::exp(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), u);
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(gate + i, silu_mul(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  }
  if (i < n) {
    store_partial(gate + i, silu_mul(load_partial(gate + i, n - i), load_partial(up + i, n - i)),
                  n - i);
  }
}

void axpy_block_f16(float* y, int64_t ldy, const uint16_t* a, int64_t lda, const uint16_t* x,
                    int64_t ldx, int64_t n_x, int64_t n, int64_t tokens) {
  axpy_block(y, ldy, a, lda, 1, x, ldx, n_x, n, tokens);
}

void axpy_block_f32(float* y, int64_t ldy, const float* a, int64_t lda, int64_t a_step,
                    const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t tokens) {
  axpy_block(y, ldy, a, lda, a_step, x, ldx, n_x, n, tokens);
}

}  // namespace agentry::kernels::avx2
