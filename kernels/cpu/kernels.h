// kernels/cpu/kernels.h — the CPU kernel table, chosen once at run time from CPUID.
//
//   const KernelTable& k = Kernels();
//   float y = k.vec_dot_q8_0_q8_0(w_row, x_q8, n);
//
// The table holds the fastest implementation this CPU can run: "avx512" (AVX-512 F/BW/VL
// with VNNI), else "avx2+vnni", else "avx2", else "scalar". AGENTRY_KERNELS=scalar, avx2,
// avx2+vnni or avx512 forces one (for debugging, and for benchmarks of what each
// instruction set gains); a table this CPU cannot run is not forced.
#pragma once

#include <cstdint>

#include "kernels/cpu/quants.h"

namespace agentry::kernels {

inline constexpr int64_t kGemmRows = 4;
inline constexpr int64_t kGemmTokens = 3;

using GemmFn = void (*)(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride,
                        float* y, int64_t ldy, int64_t n, int64_t rows, int64_t tokens);

struct KernelTable {
  const char* isa;  // "avx512", "avx2+vnni", "avx2", "scalar"
  float (*vec_dot_f32)(const float* w, const float* x, int64_t n);
  float (*vec_dot_f16)(const uint16_t* w, const uint16_t* x, int64_t n);
  float (*vec_dot_q8_0_q8_0)(const block_q8_0* w, const block_q8_0* x, int64_t n);
  float (*vec_dot_q4_0_q8_0)(const block_q4_0* w, const block_q8_0* x, int64_t n);
  void (*convert_row_fp32_to_fp16)(const float* x, uint16_t* y, int64_t n);
  void (*quantize_row_q8_0)(const float* x, block_q8_0* y, int64_t n);
  void (*axpy_f16)(float* y, float a, const uint16_t* x, int64_t n);
  // Prefill blocks (see gemm_*_ref in quants.h). Register tiles cover whole groups of
  // kGemmRows rows and kGemmTokens tokens counted from the block's start; the rest goes
  // through vec_dot. Callers that split rows across threads at multiples of kGemmRows get
  // the same bits for any thread count.
  GemmFn gemm_f32;
  GemmFn gemm_f16;
  GemmFn gemm_q8_0;
  GemmFn gemm_q4_0;
  // K-quants against Q8_K activations. Each gemm output equals the table's vec_dot of its
  // row and token bit for bit (so any split of rows or tokens gives the same bits), and the
  // avx2, avx2+vnni and avx512 tables all give the same bits (simd_k_avx2.h says why).
  void (*quantize_row_q8_K)(const float* x, block_q8_K* y, int64_t n);
  float (*vec_dot_q4_K_q8_K)(const block_q4_K* w, const block_q8_K* x, int64_t n);
  float (*vec_dot_q5_K_q8_K)(const block_q5_K* w, const block_q8_K* x, int64_t n);
  float (*vec_dot_q6_K_q8_K)(const block_q6_K* w, const block_q8_K* x, int64_t n);
  GemmFn gemm_q4_K;
  GemmFn gemm_q5_K;
  GemmFn gemm_q6_K;
};

const KernelTable& Kernels();
const KernelTable& ScalarKernels();
// nullptr when this CPU cannot run the AVX2 path.
const KernelTable* Avx2Kernels();
// The AVX2 table with AVX-VNNI integer dot products; nullptr without AVX-VNNI.
const KernelTable* AvxVnniKernels();
// The AVX-VNNI table (or the AVX2 one where AVX-VNNI is missing) with 512-bit K-quant kernels;
// nullptr unless the CPU has AVX-512 F, BW, VL and VNNI.
const KernelTable* Avx512Kernels();

}  // namespace agentry::kernels
