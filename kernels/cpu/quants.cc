#include "kernels/cpu/quants.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/gemm_ref.h"

namespace agentry::kernels {

void quantize_row_q8_0_ref(const float* x, block_q8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* xb = x + b * kQK8_0;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[b].qs[j] = static_cast<int8_t>(std::lround(xb[j] * id));
  }
}

void quantize_row_q4_0_ref(const float* x, block_q4_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const float* xb = x + b * kQK4_0;
    // The value of largest magnitude maps to -8, so the full nibble range is used.
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQK4_0; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(xb[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(xb[j + kQK4_0 / 2] * id + 8.5f));
      y[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK8_0; ++j) y[b * kQK8_0 + j] = d * static_cast<float>(x[b].qs[j]);
  }
}

void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      y[b * kQK4_0 + j] = d * static_cast<float>((x[b].qs[j] & 0x0F) - 8);
      y[b * kQK4_0 + j + kQK4_0 / 2] = d * static_cast<float>((x[b].qs[j] >> 4) - 8);
    }
  }
}

void convert_row_fp32_to_fp16_ref(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void dequantize_row_fp16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void dequantize_row_bf16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

float vec_dot_f32_ref(const float* w, const float* x, int64_t n) {
  // Double accumulation: the reference is the accurate answer SIMD paths are judged by.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(w[i]) * x[i];
  return static_cast<float>(sum);
}

float vec_dot_f16_ref(const uint16_t* w, const uint16_t* x, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    sum += static_cast<double>(fp16_to_fp32(w[i])) * fp16_to_fp32(x[i]);
  }
  return static_cast<float>(sum);
}

float vec_dot_q8_0_q8_0_ref(const block_q8_0* w, const block_q8_0* x, int64_t n) {
  double sum = 0.0;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < kQK8_0; ++j) isum += w[b].qs[j] * x[b].qs[j];
    sum += static_cast<double>(fp16_to_fp32(w[b].d)) * fp16_to_fp32(x[b].d) * isum;
  }
  return static_cast<float>(sum);
}

void dots_q8_0_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  for (int64_t t = 0; t < tokens; ++t) {
    const auto* xt = reinterpret_cast<const block_q8_0*>(x + t * x_stride);
    for (int64_t r = 0; r < rows; ++r) {
      const auto* wr = reinterpret_cast<const block_q8_0*>(w + r * w_stride);
      float acc = 0.0f;
      for (int64_t b = 0; b < n / kQK8_0; ++b) {
        int32_t isum = 0;
        for (int j = 0; j < kQK8_0; ++j) isum += wr[b].qs[j] * xt[b].qs[j];
        const float scale = fp16_to_fp32(wr[b].d) * fp16_to_fp32(xt[b].d);
        acc = std::fmaf(static_cast<float>(isum), scale, acc);
      }
      y[t * ldy + r] = acc;
    }
  }
}

float vec_dot_q4_0_q8_0_ref(const block_q4_0* w, const block_q8_0* x, int64_t n) {
  double sum = 0.0;
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      isum += ((w[b].qs[j] & 0x0F) - 8) * x[b].qs[j];
      isum += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + kQK4_0 / 2];
    }
    sum += static_cast<double>(fp16_to_fp32(w[b].d)) * fp16_to_fp32(x[b].d) * isum;
  }
  return static_cast<float>(sum);
}

void axpy_f16_ref(float* y, float a, const uint16_t* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

void gemm_f32_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                  int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<float, float, &vec_dot_f32_ref>(w, w_stride, x, x_stride, y, ldy, n, rows, tokens);
}

void gemm_f16_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                  int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<uint16_t, uint16_t, &vec_dot_f16_ref>(w, w_stride, x, x_stride, y, ldy, n, rows, tokens);
}

void gemm_q8_0_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<block_q8_0, block_q8_0, &vec_dot_q8_0_q8_0_ref>(w, w_stride, x, x_stride, y, ldy, n, rows,
                                                          tokens);
}

void gemm_q4_0_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<block_q4_0, block_q8_0, &vec_dot_q4_0_q8_0_ref>(w, w_stride, x, x_stride, y, ldy, n, rows,
                                                          tokens);
}

}  // namespace agentry::kernels
