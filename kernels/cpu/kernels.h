// kernels/cpu/kernels.h — the CPU kernel table, chosen once at run time from CPUID.
//
//   const KernelTable& k = Kernels();
//   float y = k.vec_dot_q8_0_q8_0(w_row, x_q8, n);
//
// The table holds the fastest implementation this CPU can run. AGENTRY_KERNELS=scalar
// forces the scalar reference (for debugging and for benchmarks of the SIMD gain).
#pragma once

#include <cstdint>

#include "kernels/cpu/quants.h"

namespace agentry::kernels {

struct KernelTable {
  const char* isa;  // "avx2", "scalar"
  float (*vec_dot_f32)(const float* w, const float* x, int64_t n);
  float (*vec_dot_f16)(const uint16_t* w, const uint16_t* x, int64_t n);
  float (*vec_dot_q8_0_q8_0)(const block_q8_0* w, const block_q8_0* x, int64_t n);
  float (*vec_dot_q4_0_q8_0)(const block_q4_0* w, const block_q8_0* x, int64_t n);
  void (*convert_row_fp32_to_fp16)(const float* x, uint16_t* y, int64_t n);
  void (*quantize_row_q8_0)(const float* x, block_q8_0* y, int64_t n);
};

const KernelTable& Kernels();
const KernelTable& ScalarKernels();
// nullptr when this CPU cannot run the AVX2 path.
const KernelTable* Avx2Kernels();

}  // namespace agentry::kernels
