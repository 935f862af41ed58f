// kernels/cpu/bf16.h — BF16 weights: scalar reference kernels.
//
// llama.cpp multiplies BF16 weights by activations rounded to BF16 (its vec_dot_type for
// BF16 is BF16, converted by ggml_cpu_fp32_to_bf16: round to nearest even, NaN kept quiet,
// subnormals kept) and sums the products in F32. A product of two BF16 values is exact in
// F32 (8-bit by 8-bit significands), so only the order of the additions differs between
// implementations. SIMD paths (bf16_avx2.cc) are tested against these.
#pragma once

#include <cstddef>
#include <cstdint>

namespace agentry::kernels {

// y[i] = fp32_to_bf16(x[i]) (fp16.h), the rounding llama.cpp applies to activations.
void convert_row_fp32_to_bf16_ref(const float* x, uint16_t* y, int64_t n);

// Dot product of a BF16 weight row with BF16 activations, accumulated in double.
float vec_dot_bf16_ref(const uint16_t* w, const uint16_t* x, int64_t n);

// Prefill block (see gemm_f16_ref in quants.h): every (row, token) pair through
// vec_dot_bf16_ref.
void gemm_bf16_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy, int64_t n, int64_t rows, int64_t tokens);

}  // namespace agentry::kernels
