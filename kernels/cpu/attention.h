// kernels/cpu/attention.h — what attention over a Q8_0 KV cache needs beyond the dot
// products: values accumulated straight from Q8_0 rows, and the Walsh-Hadamard rotation
// llama.cpp applies to quantized caches. Scalar references; SIMD in attention_avx2.cc.
//
// Why the rotation: a Q8_0 block spends its 8 bits relative to its largest value, so one
// outlier coordinate costs the whole block precision. An orthonormal Hadamard transform H
// spreads every coordinate over the block; dot products are unchanged (Hk · Hq = k · q,
// and H is its own inverse), so llama.cpp rotates Q and K (and V, rotating the attention
// output back) before quantizing whenever the head size is a multiple of 64.
#pragma once

#include <cstdint>

#include "kernels/cpu/quants.h"

namespace agentry::kernels {

// y[i] += a * x[i] for a Q8_0 row x of n values (n a multiple of 32): each value is
// dequantized to float (d * q) first, as llama.cpp's flash attention does with V rows.
void axpy_q8_0_ref(float* y, float a, const block_q8_0* x, int64_t n);

// In place, each run of `block` values of x (n a multiple of block, block a power of two)
// becomes H x with H the orthonormal Sylvester-Hadamard matrix of that size: the values
// are scaled by 1/sqrt(block) first, then butterflies (u + v, u - v) at strides 1, 2, 4 …
// Every step is one rounded add or subtract, in the order of ggml's fast Walsh-Hadamard
// transform (ggml_compute_forward_fwht), so both engines round the rotation the same way.
void hadamard_rotate(float* x, int64_t n, int64_t block);

}  // namespace agentry::kernels
