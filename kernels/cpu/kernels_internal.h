// kernels/cpu/kernels_internal.h — the per-ISA implementations behind kernels.h's table.
// Only kernels.cc and the tests call these directly; everyone else goes through Kernels().
#pragma once

#include <cstdint>

#include "kernels/cpu/quants.h"

namespace agentry::kernels::avx2 {
float vec_dot_f32(const float* w, const float* x, int64_t n);
float vec_dot_f16(const uint16_t* w, const uint16_t* x, int64_t n);
float vec_dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* x, int64_t n);
float vec_dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* x, int64_t n);
void convert_row_fp32_to_fp16(const float* x, uint16_t* y, int64_t n);
void axpy_f16(float* y, float a, const uint16_t* x, int64_t n);
void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n);
float quantize_block_q8(const float* xb, int8_t* qs, int32_t* sum);  // one block; returns d
void dots_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_f32(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens);
void gemm_f16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens);
void gemm_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q4_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
// Q4_1, Q5_0, Q5_1 and Q8_1 activations (dot_legacy_avx2.cc). quantize_row_q8_1 rounds as
// quantize_row_q8_0; each gemm output is the vec_dot of its row and token.
void quantize_row_q8_1(const float* x, block_q8_1* y, int64_t n);
float vec_dot_q4_1_q8_1(const block_q4_1* w, const block_q8_1* x, int64_t n);
float vec_dot_q5_0_q8_0(const block_q5_0* w, const block_q8_0* x, int64_t n);
float vec_dot_q5_1_q8_1(const block_q5_1* w, const block_q8_1* x, int64_t n);
void gemm_q4_1(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_1(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
// BF16 (dot_bf16_avx2.cc).
void convert_row_fp32_to_bf16(const float* x, uint16_t* y, int64_t n);
float vec_dot_bf16(const uint16_t* w, const uint16_t* x, int64_t n);
void gemm_bf16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
// Attention over a Q8_0 KV cache (attention_avx2.cc).
void axpy_q8_0(float* y, float a, const block_q8_0* x, int64_t n);
void soft_max_f32(float* x, int64_t n, float scale);
void silu_mul_f32(float* gate, const float* up, int64_t n);
void axpy_block_f16(float* y, int64_t ldy, const uint16_t* a, int64_t lda, const uint16_t* x,
                    int64_t ldx, int64_t n_x, int64_t n, int64_t tokens);
void axpy_block_f32(float* y, int64_t ldy, const float* a, int64_t lda, int64_t a_step,
                    const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t tokens);
// K-quants (dot_k_avx2.cc). quantize_row_q8_K gives the reference's bytes exactly; each
// gemm output equals the vec_dot of its row and token exactly.
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t n);
float vec_dot_q4_K_q8_K(const block_q4_K* w, const block_q8_K* x, int64_t n);
float vec_dot_q5_K_q8_K(const block_q5_K* w, const block_q8_K* x, int64_t n);
float vec_dot_q6_K_q8_K(const block_q6_K* w, const block_q8_K* x, int64_t n);
void gemm_q4_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q6_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
}  // namespace agentry::kernels::avx2

namespace agentry::kernels::avxvnni {
float vec_dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* x, int64_t n);
float vec_dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* x, int64_t n);
void dots_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
// K-quants with vpdpwssd (dot_k_avxvnni.cc): the same bits as the AVX2 ones.
float vec_dot_q4_K_q8_K(const block_q4_K* w, const block_q8_K* x, int64_t n);
float vec_dot_q5_K_q8_K(const block_q5_K* w, const block_q8_K* x, int64_t n);
float vec_dot_q6_K_q8_K(const block_q6_K* w, const block_q8_K* x, int64_t n);
void gemm_q4_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q6_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
}  // namespace agentry::kernels::avxvnni

// 512-bit vectors with AVX512-VNNI (dot_avx512.cc, gemm_avx512.cc, dot_k_avx512.cc).

namespace agentry::kernels::avx512 {
float vec_dot_f32(const float* w, const float* x, int64_t n);
float vec_dot_f16(const uint16_t* w, const uint16_t* x, int64_t n);
float vec_dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* x, int64_t n);
float vec_dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* x, int64_t n);
float vec_dot_q5_0_q8_0(const block_q5_0* w, const block_q8_0* x, int64_t n);
float vec_dot_q4_1_q8_1(const block_q4_1* w, const block_q8_1* x, int64_t n);
float vec_dot_q5_1_q8_1(const block_q5_1* w, const block_q8_1* x, int64_t n);
void dots_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void convert_row_fp32_to_fp16(const float* x, uint16_t* y, int64_t n);
void axpy_f16(float* y, float a, const uint16_t* x, int64_t n);
void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n);
void gemm_f32(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens);
void gemm_f16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens);
void gemm_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q4_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q4_1(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_1(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void soft_max_f32(float* x, int64_t n, float scale);
void silu_mul_f32(float* gate, const float* up, int64_t n);
void axpy_block_f16(float* y, int64_t ldy, const uint16_t* a, int64_t lda, const uint16_t* x,
                    int64_t ldx, int64_t n_x, int64_t n, int64_t tokens);
void axpy_block_f32(float* y, int64_t ldy, const float* a, int64_t lda, int64_t a_step,
                    const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t tokens);
// K-quants on 512-bit vectors with AVX512-VNNI (dot_k_avx512.cc): the same bits as the AVX2
// ones. Need AVX-512 F, BW, VL and VNNI.
float vec_dot_q4_K_q8_K(const block_q4_K* w, const block_q8_K* x, int64_t n);
float vec_dot_q5_K_q8_K(const block_q5_K* w, const block_q8_K* x, int64_t n);
float vec_dot_q6_K_q8_K(const block_q6_K* w, const block_q8_K* x, int64_t n);
void gemm_q4_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
void gemm_q6_K(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
// BF16 widened to F32 (dot_bf16_avx512.cc): AVX-512 F/BW.
float vec_dot_bf16(const uint16_t* w, const uint16_t* x, int64_t n);
void gemm_bf16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
}  // namespace agentry::kernels::avx512

// BF16 with vdpbf16ps (dot_bf16_avx512bf16.cc): AVX-512 F/BW and AVX512-BF16.
namespace agentry::kernels::avx512bf16 {
float vec_dot_bf16(const uint16_t* w, const uint16_t* x, int64_t n);
void gemm_bf16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens);
}  // namespace agentry::kernels::avx512bf16
