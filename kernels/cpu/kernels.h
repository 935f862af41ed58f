// kernels/cpu/kernels.h — the CPU kernel table, chosen once at run time from CPUID.
//
//   const KernelTable& k = Kernels();
//   float y = k.vec_dot_q8_0_q8_0(w_row, x_q8, n);
//
// The table holds the fastest implementation this CPU can run: "avx512" (AVX-512 F/BW/VL/DQ
// with VNNI), else "avx2+vnni", else "avx2", else "scalar". AGENTRY_KERNELS=scalar, avx2,
// avx2+vnni or avx512 forces one (for debugging, and for benchmarks of what each
// instruction set gains); a table this CPU cannot run is not forced.
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/bf16.h"
#include "kernels/cpu/ops.h"
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
  // Prefill blocks (see gemm_*_ref in quants.h). How an output is computed depends only
  // on its row's place in its group of kGemmRows rows and its token's index from the
  // block's start, never on where the block ends: the AVX2 tiles cover whole groups of
  // kGemmRows rows and kGemmTokens tokens and send the rest through vec_dot; the AVX-512
  // ones compute every output the same way whatever tile it lands in. Callers that split
  // rows across threads at multiples of kGemmRows and tokens at fixed chunks get the same
  // bits for any thread count.
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
  // BF16 weights against activations rounded to BF16 (bf16.h).
  void (*convert_row_fp32_to_bf16)(const float* x, uint16_t* y, int64_t n);
  float (*vec_dot_bf16)(const uint16_t* w, const uint16_t* x, int64_t n);
  GemmFn gemm_bf16;
  // y += a * x for a Q8_0 row (attention values from a Q8_0 KV cache; attention.h).
  void (*axpy_q8_0)(float* y, float a, const block_q8_0* x, int64_t n);
  // Attention and activations (ops.h): softmax of a score row, SiLU(gate) * up, and
  // register-tiled blocks of F16 axpys (probabilities times cached values).
  void (*soft_max_f32)(float* x, int64_t n, float scale);
  void (*silu_mul_f32)(float* gate, const float* up, int64_t n);
  void (*axpy_block_f16)(float* y, int64_t ldy, const uint16_t* a, int64_t lda, const uint16_t* x,
                         int64_t ldx, int64_t n_x, int64_t n, int64_t tokens);
  // Q5_0 against Q8_0 activations; Q4_1 and Q5_1 (weights with a min) against Q8_1. The gemm
  // outputs need not equal vec_dot bit for bit: the AVX2 Q5_0 tile keeps one chain where its
  // vec_dot keeps two, and the AVX-512 Q4_1/Q5_1 tiles differ too (engine/forward_test found
  // both); the kernel tests hold them to the references within a tolerance.
  void (*quantize_row_q8_1)(const float* x, block_q8_1* y, int64_t n);
  float (*vec_dot_q4_1_q8_1)(const block_q4_1* w, const block_q8_1* x, int64_t n);
  float (*vec_dot_q5_0_q8_0)(const block_q5_0* w, const block_q8_0* x, int64_t n);
  float (*vec_dot_q5_1_q8_1)(const block_q5_1* w, const block_q8_1* x, int64_t n);
  GemmFn gemm_q4_1;
  GemmFn gemm_q5_0;
  GemmFn gemm_q5_1;
  // axpy_block_f16 with F32 coefficients and rows, the coefficients at any stride (a_step
  // apart along s): the trainer's attention (probabilities times values, score gradients
  // times keys and queries) and its weight gradients (a transposed: dW += dYᵀ · X).
  void (*axpy_block_f32)(float* y, int64_t ldy, const float* a, int64_t lda, int64_t a_step,
                         const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t tokens);
  // Decode (the node daemon's continuous batching, and a token alone): Q8_0 weights against
  // Q8_0 activations, every output computed in dots_q8_0_ref's order (quants.h: one FMA per
  // block over exact integer block dots) and so bit for bit the same on this table whatever
  // rows and tokens share the call: a session's decode steps give the same bits alone and
  // in any batch. The order lets a vector lane hold a row, so the tiles need no horizontal
  // sums on AVX-512 and share each weight block's loads among all the tokens.
  GemmFn dots_q8_0;
};

const KernelTable& Kernels();
const KernelTable& ScalarKernels();
// nullptr when this CPU cannot run the AVX2 path.
const KernelTable* Avx2Kernels();
// The AVX2 table with AVX-VNNI integer dot products; nullptr without AVX-VNNI.
const KernelTable* AvxVnniKernels();
// 512-bit kernels with AVX512-VNNI; nullptr unless the CPU has AVX-512 F, BW, VL, DQ and
// VNNI (Ice Lake, Sapphire Rapids, Zen 4 and later).
const KernelTable* Avx512Kernels();

}  // namespace agentry::kernels
