// kernels/cpu/simd_bf16_avx512.h — the BF16 dot product and prefill tile on 512-bit
// vectors, written once for the two ways of multiplying BF16 values (`Step` below; the tile
// itself is simd512::gemm_lanes):
//   Widen   (AVX-512 F/BW): 16 values a step, widened to F32 (a zero-extend and a shift by
//           16) and multiplied with FMA;
//   Dpbf16  (AVX512-BF16): 32 values a step, vdpbf16ps multiplying pairs straight from
//           BF16 into F32 lanes (inputs below 2^-126 count as zero, as for llama.cpp, which
//           uses the same instruction on such CPUs).
// Products of two BF16 values are exact in F32, so both differ from vec_dot_bf16_ref only
// in the order of additions. Include only from files compiled for the step's ISA, after
// kernels/cpu/immintrin_avx512.h.
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

}  // namespace
}  // namespace agentry::kernels::simd512
