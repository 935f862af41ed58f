// kernels/cpu/ops.h — scalar references for the attention and activation steps of the
// forward pass that are not dot products: the softmax of a score row, SiLU(gate) * up, and
// blocks of F16 and F32 axpys (probabilities times values; the trainer's attention). SIMD
// versions sit in ops_avx2.cc and ops_avx512.cc, compared with these in
// kernels/tests/ops_test.cc.
#pragma once

#include <cstdint>

namespace agentry::kernels {

// e^x as the SIMD kernels compute it (simd::exp in simd_avx2.h, simd512::exp), step for step
// in scalar code, so a scalar table gives their bits: within 1 ulp of expf; infinity above
// 88.72, zero below -104, NaN stays NaN.
float exp_f32_ref(float x);

// x[i] = exp(scale * x[i] - max) / sum over j of exp(scale * x[j] - max), i < n (n >= 1).
// The exponentials are summed in a fixed order that every table follows, so a softmax has the
// same bits on every table (the trainer relies on it: a model trains to the same bits on any
// x86 CPU): eight at a time in float (lanes i and i + 4 first, then i and i + 2, then the
// two halves: the AVX2 horizontal sum), the blocks of eight in double, in order; the inverse
// of the sum is applied as a float multiply, as llama.cpp's soft_max does.
void soft_max_f32_ref(float* x, int64_t n, float scale);

// gate[i] = gate[i] / (1 + exp(-gate[i])) * up[i]: SwiGLU's SiLU(gate) * up, with
// exp_f32_ref's exponential (the SIMD tables' bits).
void silu_mul_f32_ref(float* gate, const float* up, int64_t n);

// For t < tokens and i < n: y[t * ldy + i] += sum over s < n_x of a[t * lda + s] *
// x[s * ldx + i], with a and x F16, adding the terms in order of s as axpy_f16 would.
// Attention's output: probabilities (a, rounded to F16 as llama.cpp rounds them) times
// the cached values (x).
void axpy_block_f16_ref(float* y, int64_t ldy, const uint16_t* a, int64_t lda, const uint16_t* x,
                        int64_t ldx, int64_t n_x, int64_t n, int64_t tokens);

// axpy_block_f16_ref over F32 a and x, with the coefficient of (t, s) at a[t * lda +
// s * a_step] (a_step = 1: rows of a, as above; lda = 1: a stored transposed, as the
// gradient dY of a layer's outputs is when its weight gradient dYᵀ · X is accumulated).
// Each term is one fused multiply-add (y = fma(a, x, y), in order of s) as the SIMD tiles
// compute it, so they agree bit for bit.
void axpy_block_f32_ref(float* y, int64_t ldy, const float* a, int64_t lda, int64_t a_step,
                        const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t tokens);

}  // namespace agentry::kernels
