// kernels/cpu/simd_bf16_avx512.h — the BF16 dot product and prefill tile on 512-bit
// vectors, written once for the two ways of multiplying BF16 values (`Step` below):
//   Widen   (AVX-512 F/BW): 16 values a step, widened to F32 (a zero-extend and a shift by
//           16) and multiplied with FMA;
//   Dpbf16  (AVX512-BF16): 32 values a step, vdpbf16ps multiplying pairs straight from
//           BF16 into F32 lanes (inputs below 2^-126 count as zero, as for llama.cpp, which
//           uses the same instruction on such CPUs).
// Products of two BF16 values are exact in F32, so both differ from vec_dot_bf16_ref only
// in the order of additions. Include only from files compiled for the step's ISA, after
// the GCC 12 <immintrin.h> workaround (see dot_avx512.cc).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/simd_avx512.h"

namespace agentry::kernels::simd512 {
// Internal linkage: this header is compiled into files built for different instruction sets
// (e.g. -mavx2 and -mavx2 -mavxvnni), and an out-of-line copy (Debug builds emit them) built
// for the wider set must never be the one the linker keeps for the narrower set's callers.
namespace {

// Dot product as llama.cpp's ggml_vec_dot_bf16 for this ISA: two accumulators over
// 2 * Step::kValues values a step, each reduced and added in double, the tail in double.
template <typename Step>
float dot_bf16(const uint16_t* w, const uint16_t* x, int64_t n) {
  constexpr int64_t kStep = Step::kValues;
  __m512 c1 = _mm512_setzero_ps();
  __m512 c2 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 * kStep <= n; i += 2 * kStep) {
    c1 = Step::madd(c1, Step::load(w + i), Step::load(x + i));
    c2 = Step::madd(c2, Step::load(w + i + kStep), Step::load(x + i + kStep));
  }
  double sum = static_cast<double>(_mm512_reduce_add_ps(c1));
  sum += static_cast<double>(_mm512_reduce_add_ps(c2));
  for (; i < n; ++i) sum += static_cast<double>(bf16_to_fp32(w[i]) * bf16_to_fp32(x[i]));
  return static_cast<float>(sum);
}

inline constexpr int kBf16Rows = 4;
inline constexpr int kBf16Tokens = 6;
static_assert(kGemmRows % kBf16Rows == 0, "threads split rows at multiples of kGemmRows");

// Rows w[0..3] (pointers may repeat for a short tile) against RN tokens; stores the first
// `rows` sums of each token. Values past n meet zero-padded lanes, so every output runs the
// same instructions wherever its row and token sit: the same bits for any split.
template <typename Step, int RN>
void tile_bf16(const uint16_t* const w[kBf16Rows], const uint8_t* x, size_t xs, float* y,
               int64_t ldy, int64_t n, int64_t rows) {
  constexpr int64_t kStep = Step::kValues;
  __m512 c[RN][kBf16Rows];
#pragma GCC unroll 8
  for (auto& tok : c) {
#pragma GCC unroll 4
    for (auto& v : tok) v = _mm512_setzero_ps();
  }
  const uint16_t* xr[RN];
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) xr[t] = reinterpret_cast<const uint16_t*>(x + t * xs);
  int64_t k = 0;
  for (; k + kStep <= n; k += kStep) {
    typename Step::Vec wv[kBf16Rows];
#pragma GCC unroll 4
    for (int r = 0; r < kBf16Rows; ++r) wv[r] = Step::load(w[r] + k);
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      const typename Step::Vec xv = Step::load(xr[t] + k);
#pragma GCC unroll 4
      for (int r = 0; r < kBf16Rows; ++r) c[t][r] = Step::madd(c[t][r], wv[r], xv);
    }
  }
  if (k < n) {  // the same step on zero-padded lanes
    typename Step::Vec wv[kBf16Rows];
#pragma GCC unroll 4
    for (int r = 0; r < kBf16Rows; ++r) wv[r] = Step::load_partial(w[r] + k, n - k);
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      const typename Step::Vec xv = Step::load_partial(xr[t] + k, n - k);
#pragma GCC unroll 4
      for (int r = 0; r < kBf16Rows; ++r) c[t][r] = Step::madd(c[t][r], wv[r], xv);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) {
    const __m128 sums = hsum4(c[t][0], c[t][1], c[t][2], c[t][3]);
    alignas(16) float tmp[kBf16Rows];
    _mm_store_ps(tmp, sums);
    for (int64_t r = 0; r < rows; ++r) y[t * ldy + r] = tmp[r];
  }
}

template <typename Step>
void gemm_bf16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  for (int64_t r = 0; r < rows; r += kBf16Rows) {
    const int64_t nr = std::min<int64_t>(kBf16Rows, rows - r);
    const uint16_t* wr[kBf16Rows];
    for (int64_t i = 0; i < kBf16Rows; ++i) {
      wr[i] = reinterpret_cast<const uint16_t*>(w + (r + std::min(i, nr - 1)) * ws);
    }
    int64_t t = 0;
    for (; t + kBf16Tokens <= tokens; t += kBf16Tokens) {
      tile_bf16<Step, kBf16Tokens>(wr, x + t * xs, xs, y + t * ldy + r, ldy, n, nr);
    }
    const uint8_t* xt = x + t * xs;
    float* yt = y + t * ldy + r;
    switch (tokens - t) {
      case 5:
        tile_bf16<Step, 5>(wr, xt, xs, yt, ldy, n, nr);
        break;
      case 4:
        tile_bf16<Step, 4>(wr, xt, xs, yt, ldy, n, nr);
        break;
      case 3:
        tile_bf16<Step, 3>(wr, xt, xs, yt, ldy, n, nr);
        break;
      case 2:
        tile_bf16<Step, 2>(wr, xt, xs, yt, ldy, n, nr);
        break;
      case 1:
        tile_bf16<Step, 1>(wr, xt, xs, yt, ldy, n, nr);
        break;
      default:
        break;
    }
  }
}

}  // namespace
}  // namespace agentry::kernels::simd512
