// kernels/cpu/quants.h — quantized block formats and their scalar reference kernels.
//
// One struct per format, laid out byte for byte as in GGUF files, so weights are used
// straight from the memory-mapped file. Every SIMD kernel has its scalar reference here and
// a test comparing the two (kernels/tests/).
//
// Formats (32 weights a block):
//   Q8_0: fp16 scale d, 32 int8;            x = d * q
//   Q4_0: fp16 scale d, 16 bytes of nibbles; x = d * (nibble - 8); byte j holds weight j in
//         its low nibble and weight j + 16 in its high nibble.
//   Q4_1: fp16 d and min m, nibbles as Q4_0;  x = d * nibble + m
//   Q5_0: fp16 d, 32 fifth bits (qh, bit j for weight j), nibbles as Q4_0; x = d * (q - 16)
//   Q5_1: fp16 d and m, qh and nibbles as Q5_0; x = d * q + m
//   Q8_1: fp16 d, fp16 s = d * sum(q), 32 int8 (activations for Q4_1 and Q5_1: the min term
//         of a block is m_w * s_x)
// llama-quantize writes Q5_0 for Q4_K and Q5_1 for Q5_K where a row is not a multiple of 256
// (every dim-576 matrix of a SmolLM-135M Q4_K_M file, for one), so real files need them.
// A matrix-vector product multiplies weight rows by activations quantized to the weight's
// "dot type" (F32 -> F32, F16 -> F16, Q8_0 and Q4_0 -> Q8_0), as llama.cpp does: integer
// dot products are what make quantized matmuls fast.
#pragma once

#include <cstddef>
#include <cstdint>

namespace agentry::kernels {

inline constexpr int kQK8_0 = 32;
inline constexpr int kQK4_0 = 32;

struct block_q8_0 {
  uint16_t d;  // fp16
  int8_t qs[kQK8_0];
};
static_assert(sizeof(block_q8_0) == 34, "Q8_0 block must match the GGUF layout");

struct block_q4_0 {
  uint16_t d;  // fp16
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 18, "Q4_0 block must match the GGUF layout");

struct block_q4_1 {
  uint16_t d;  // fp16
  uint16_t m;  // fp16
  uint8_t qs[32 / 2];
};
static_assert(sizeof(block_q4_1) == 20, "Q4_1 block must match the GGUF layout");

struct block_q5_0 {
  uint16_t d;     // fp16
  uint8_t qh[4];  // fifth bits, little-endian: bit j belongs to weight j
  uint8_t qs[32 / 2];
};
static_assert(sizeof(block_q5_0) == 22, "Q5_0 block must match the GGUF layout");

struct block_q5_1 {
  uint16_t d;  // fp16
  uint16_t m;  // fp16
  uint8_t qh[4];
  uint8_t qs[32 / 2];
};
static_assert(sizeof(block_q5_1) == 24, "Q5_1 block must match the GGUF layout");

struct block_q8_1 {
  uint16_t d;  // fp16
  uint16_t s;  // fp16: d * sum(qs)
  int8_t qs[32];
};
static_assert(sizeof(block_q8_1) == 36, "Q8_1 block must match the GGUF layout");

// K-quants: super-blocks of 256 weights in sub-blocks with their own 6-bit (Q4_K, Q5_K) or
// 8-bit (Q6_K) scales. Activations meet them as Q8_K (float scale, 256 int8, and the sums
// of each 16 for the min terms).
inline constexpr int kQK_K = 256;

struct block_q4_K {
  uint16_t d;          // fp16 super-block scale for the sub-block scales
  uint16_t dmin;       // fp16 super-block scale for the sub-block mins
  uint8_t scales[12];  // 8 scales and 8 mins, 6 bits each
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144, "Q4_K block must match the GGUF layout");

struct block_q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];  // the fifth bit of each weight
  uint8_t qs[kQK_K / 2];  // the low four bits
};
static_assert(sizeof(block_q5_K) == 176, "Q5_K block must match the GGUF layout");

struct block_q6_K {
  uint8_t ql[kQK_K / 2];      // low four bits
  uint8_t qh[kQK_K / 4];      // high two bits
  int8_t scales[kQK_K / 16];  // 16 sub-blocks of 16
  uint16_t d;                 // fp16
};
static_assert(sizeof(block_q6_K) == 210, "Q6_K block must match the GGUF layout");

struct block_q8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(block_q8_K) == 292, "Q8_K block must match the GGUF layout");

// Sub-block j's 6-bit scale and min from the 12 packed bytes of Q4_K and Q5_K: the first
// four pairs sit in the low six bits of bytes 0-7; the last four are split between the
// low/high nibbles of bytes 8-11 and the top two bits of bytes 0-7.
inline void q4k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// n is a multiple of the block size in every function taking blocks.
void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t n);
void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t n);
void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t n);
void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t n);
void convert_row_fp32_to_fp16_ref(const float* x, uint16_t* y, int64_t n);
void quantize_row_q8_K_ref(const float* x, block_q8_K* y, int64_t n);
// Q4_1, Q5_0, Q5_1 and Q8_1 (quants_legacy.cc), rounding as ggml's reference quantizers do,
// so a file they write has llama-quantize's bytes.
void quantize_row_q4_1_ref(const float* x, block_q4_1* y, int64_t n);
void quantize_row_q5_0_ref(const float* x, block_q5_0* y, int64_t n);
void quantize_row_q5_1_ref(const float* x, block_q5_1* y, int64_t n);
void quantize_row_q8_1_ref(const float* x, block_q8_1* y, int64_t n);
void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t n);
void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t n);
void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t n);
void dequantize_row_q4_K(const block_q4_K* x, float* y, int64_t n);
void dequantize_row_q5_K(const block_q5_K* x, float* y, int64_t n);
void dequantize_row_q6_K(const block_q6_K* x, float* y, int64_t n);
void dequantize_row_fp16(const uint16_t* x, float* y, int64_t n);
void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n);

// Dot products of one weight row (first argument) with one activation row.
float vec_dot_f32_ref(const float* w, const float* x, int64_t n);
float vec_dot_f16_ref(const uint16_t* w, const uint16_t* x, int64_t n);
float vec_dot_q8_0_q8_0_ref(const block_q8_0* w, const block_q8_0* x, int64_t n);
// Batched decode (kernels.h's dots_q8_0), laid out as the gemms: every (row, token) output
// is, in this order, acc = 0 and for each block b
//   acc = fmaf(float(isum_b), float(d_w[b]) * float(d_x[b]), acc)
// with isum_b the block's exact integer dot product. One FMA chain per output and nothing
// else in float, so a SIMD path that keeps a row per lane gets these bits whatever the tile.
void dots_q8_0_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy, int64_t n, int64_t rows, int64_t tokens);
float vec_dot_q4_0_q8_0_ref(const block_q4_0* w, const block_q8_0* x, int64_t n);
float vec_dot_q4_1_q8_1_ref(const block_q4_1* w, const block_q8_1* x, int64_t n);
float vec_dot_q5_0_q8_0_ref(const block_q5_0* w, const block_q8_0* x, int64_t n);
float vec_dot_q5_1_q8_1_ref(const block_q5_1* w, const block_q8_1* x, int64_t n);
float vec_dot_q4_K_q8_K_ref(const block_q4_K* w, const block_q8_K* x, int64_t n);
float vec_dot_q5_K_q8_K_ref(const block_q5_K* w, const block_q8_K* x, int64_t n);
float vec_dot_q6_K_q8_K_ref(const block_q6_K* w, const block_q8_K* x, int64_t n);

// y[i] += a * x[i] for F16 x (attention: probabilities times values).
void axpy_f16_ref(float* y, float a, const uint16_t* x, int64_t n);

// Blocks of dot products for prefill: y[t * ldy + r] = dot(w row r, x row t) for r < rows,
// t < tokens. Rows of w are w_stride bytes apart, rows of x x_stride bytes apart; n elements
// each. The references loop over the vec_dot references.
void gemm_f32_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                  int64_t ldy, int64_t n, int64_t rows, int64_t tokens);
void gemm_f16_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                  int64_t ldy, int64_t n, int64_t rows, int64_t tokens);
void gemm_q8_0_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy, int64_t n, int64_t rows, int64_t tokens);
void gemm_q4_0_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy, int64_t n, int64_t rows, int64_t tokens);
void gemm_q4_1_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_0_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_1_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens);
void gemm_q4_K_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens);
void gemm_q5_K_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens);
void gemm_q6_K_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens);

}  // namespace agentry::kernels
