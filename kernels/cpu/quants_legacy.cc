// kernels/cpu/quants_legacy.cc — scalar references for Q4_1, Q5_0, Q5_1 and their Q8_1
// activations: quantizers that round as ggml's reference quantizers do (so their bytes are
// llama-quantize's), dequantizers, and dot products summed in double, the accurate answer the
// SIMD paths are judged by.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/gemm_ref.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels {
namespace {

constexpr int kBlock = 32;

// v >= 0 rounded half up, as ggml's reference quantizers write (int)(v + 0.5f): the same
// float addition and truncation, so our bytes are llama-quantize's (lround would differ
// where v + 0.5f rounds up in float).
inline int RoundHalfUp(float v) {
  return static_cast<int>(v + 0.5f);  // NOLINT(bugprone-incorrect-roundings): see above
}

// Smallest and largest value of a block.
void MinMax(const float* x, float* min, float* max) {
  *min = x[0];
  *max = x[0];
  for (int j = 1; j < kBlock; ++j) {
    *min = std::min(*min, x[j]);
    *max = std::max(*max, x[j]);
  }
}

// Packs 32 five-bit values: low nibbles as Q4_0 (weight j low, j + 16 high), fifth bits to qh.
void Pack5(const int* q, uint8_t* qs, uint8_t* qh) {
  uint32_t high = 0;
  for (int j = 0; j < kBlock / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kBlock / 2] & 0x0F) << 4));
    high |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    high |= static_cast<uint32_t>((q[j + kBlock / 2] >> 4) & 1) << (j + kBlock / 2);
  }
  std::memcpy(qh, &high, sizeof(high));
}

// The 32 five-bit values (0..31) of a Q5 block.
void Unpack5(const uint8_t* qs, const uint8_t* qh, int* q) {
  uint32_t high = 0;
  std::memcpy(&high, qh, sizeof(high));
  for (int j = 0; j < kBlock / 2; ++j) {
    q[j] = (qs[j] & 0x0F) | static_cast<int>(((high >> j) & 1) << 4);
    q[j + kBlock / 2] = (qs[j] >> 4) | static_cast<int>(((high >> (j + kBlock / 2)) & 1) << 4);
  }
}

// Integer dot product of 32 weights (already offset) with a block of int8 activations.
int32_t IntDot(const int* q, const int8_t* x) {
  int32_t sum = 0;
  for (int j = 0; j < kBlock; ++j) sum += q[j] * x[j];
  return sum;
}

}  // namespace

void quantize_row_q4_1_ref(const float* x, block_q4_1* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float min = 0;
    float max = 0;
    MinMax(xb, &min, &max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    for (int j = 0; j < kBlock / 2; ++j) {
      const int lo = std::min(15, RoundHalfUp((xb[j] - min) * id));
      const int hi = std::min(15, RoundHalfUp((xb[j + kBlock / 2] - min) * id));
      y[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quantize_row_q5_0_ref(const float* x, block_q5_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    // As Q4_0: the value of largest magnitude maps to -16.
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kBlock; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    int q[kBlock];
    for (int j = 0; j < kBlock; ++j) q[j] = std::min(31, static_cast<int>(xb[j] * id + 16.5f));
    Pack5(q, y[b].qs, y[b].qh);
  }
}

void quantize_row_q5_1_ref(const float* x, block_q5_1* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float min = 0;
    float max = 0;
    MinMax(xb, &min, &max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    int q[kBlock];
    // No clamp: (max - min) * id + 0.5 rounds to at most 31.
    for (int j = 0; j < kBlock; ++j) q[j] = static_cast<uint8_t>(RoundHalfUp((xb[j] - min) * id));
    Pack5(q, y[b].qs, y[b].qh);
  }
}

void quantize_row_q8_1_ref(const float* x, block_q8_1* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < kBlock; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::lround(xb[j] * id));
      sum += y[b].qs[j];
    }
    y[b].d = fp32_to_fp16(d);
    y[b].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < kBlock / 2; ++j) {
      y[b * kBlock + j] = d * static_cast<float>(x[b].qs[j] & 0x0F) + m;
      y[b * kBlock + j + kBlock / 2] = d * static_cast<float>(x[b].qs[j] >> 4) + m;
    }
  }
}

void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    int q[kBlock];
    Unpack5(x[b].qs, x[b].qh, q);
    for (int j = 0; j < kBlock; ++j) y[b * kBlock + j] = d * static_cast<float>(q[j] - 16);
  }
}

void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kBlock; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    int q[kBlock];
    Unpack5(x[b].qs, x[b].qh, q);
    for (int j = 0; j < kBlock; ++j) y[b * kBlock + j] = d * static_cast<float>(q[j]) + m;
  }
}

float vec_dot_q4_1_q8_1_ref(const block_q4_1* w, const block_q8_1* x, int64_t n) {
  double sum = 0.0;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    int q[kBlock];
    for (int j = 0; j < kBlock / 2; ++j) {
      q[j] = w[b].qs[j] & 0x0F;
      q[j + kBlock / 2] = w[b].qs[j] >> 4;
    }
    sum += static_cast<double>(fp16_to_fp32(w[b].d)) * fp16_to_fp32(x[b].d) * IntDot(q, x[b].qs) +
           static_cast<double>(fp16_to_fp32(w[b].m)) * fp16_to_fp32(x[b].s);
  }
  return static_cast<float>(sum);
}

float vec_dot_q5_0_q8_0_ref(const block_q5_0* w, const block_q8_0* x, int64_t n) {
  double sum = 0.0;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    int q[kBlock];
    Unpack5(w[b].qs, w[b].qh, q);
    for (int& v : q) v -= 16;
    sum += static_cast<double>(fp16_to_fp32(w[b].d)) * fp16_to_fp32(x[b].d) * IntDot(q, x[b].qs);
  }
  return static_cast<float>(sum);
}

float vec_dot_q5_1_q8_1_ref(const block_q5_1* w, const block_q8_1* x, int64_t n) {
  double sum = 0.0;
  for (int64_t b = 0; b < n / kBlock; ++b) {
    int q[kBlock];
    Unpack5(w[b].qs, w[b].qh, q);
    sum += static_cast<double>(fp16_to_fp32(w[b].d)) * fp16_to_fp32(x[b].d) * IntDot(q, x[b].qs) +
           static_cast<double>(fp16_to_fp32(w[b].m)) * fp16_to_fp32(x[b].s);
  }
  return static_cast<float>(sum);
}

void gemm_q4_1_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<block_q4_1, block_q8_1, &vec_dot_q4_1_q8_1_ref>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q5_0_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<block_q5_0, block_q8_0, &vec_dot_q5_0_q8_0_ref>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q5_1_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<block_q5_1, block_q8_1, &vec_dot_q5_1_q8_1_ref>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels
