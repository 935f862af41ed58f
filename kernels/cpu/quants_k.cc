// kernels/cpu/quants_k.cc — scalar reference kernels for the K-quants (Q4_K, Q5_K, Q6_K)
// and their Q8_K activations. Layouts in quants.h.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/gemm_ref.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels {
namespace {

// The 256 unsigned 4-bit (Q4_K) or 5-bit (Q5_K) values of one block, in order.
void UnpackQ4K(const block_q4_K& b, uint8_t* out) {
  for (ptrdiff_t chunk = 0; chunk < 4; ++chunk) {  // 64 weights: 32 low nibbles, 32 high
    for (int l = 0; l < 32; ++l) {
      out[chunk * 64 + l] = b.qs[chunk * 32 + l] & 0x0F;
      out[chunk * 64 + 32 + l] = b.qs[chunk * 32 + l] >> 4;
    }
  }
}

void UnpackQ5K(const block_q5_K& b, uint8_t* out) {
  for (ptrdiff_t chunk = 0; chunk < 4; ++chunk) {
    const uint8_t lo_bit = static_cast<uint8_t>(1u << (2 * chunk));
    const uint8_t hi_bit = static_cast<uint8_t>(2u << (2 * chunk));
    for (int l = 0; l < 32; ++l) {
      out[chunk * 64 + l] = (b.qs[chunk * 32 + l] & 0x0F) | ((b.qh[l] & lo_bit) ? 16 : 0);
      out[chunk * 64 + 32 + l] = (b.qs[chunk * 32 + l] >> 4) | ((b.qh[l] & hi_bit) ? 16 : 0);
    }
  }
}

// The 256 signed 6-bit values of a Q6_K block (-32..31), in order.
void UnpackQ6K(const block_q6_K& b, int8_t* out) {
  for (ptrdiff_t half = 0; half < 2; ++half) {  // 128 weights from 64 ql bytes and 32 qh bytes
    const uint8_t* ql = b.ql + half * 64;
    const uint8_t* qh = b.qh + half * 32;
    int8_t* y = out + half * 128;
    for (int l = 0; l < 32; ++l) {
      y[l] = static_cast<int8_t>(((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32);
      y[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
      y[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      y[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
}

// Q4_K and Q5_K share their scale/min scheme: weight = d * scale_j * q - dmin * min_j.
template <typename Block, void (*unpack)(const Block&, uint8_t*)>
void DequantizeScaleMin(const Block* x, float* y, int64_t n) {
  uint8_t q[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    unpack(x[b], q);
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc = 0;
      uint8_t m = 0;
      q4k_scale_min(j, x[b].scales, &sc, &m);
      for (int l = 0; l < 32; ++l) {
        y[b * kQK_K + j * ptrdiff_t{32} + l] = d * sc * q[j * ptrdiff_t{32} + l] - dmin * m;
      }
    }
  }
}

template <typename Block, void (*unpack)(const Block&, uint8_t*)>
float DotScaleMin(const Block* w, const block_q8_K* x, int64_t n) {
  double sum = 0.0;
  uint8_t q[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    unpack(w[b], q);
    int64_t scaled = 0;  // sum over sub-blocks of scale_j * (q · x)
    int64_t mins = 0;    // sum over sub-blocks of min_j * sum(x)
    for (int j = 0; j < 8; ++j) {
      uint8_t sc = 0;
      uint8_t m = 0;
      q4k_scale_min(j, w[b].scales, &sc, &m);
      int32_t dot = 0;
      for (ptrdiff_t l = 0; l < 32; ++l)
        dot += q[j * ptrdiff_t{32} + l] * x[b].qs[j * ptrdiff_t{32} + l];
      scaled += static_cast<int64_t>(sc) * dot;
      mins += static_cast<int64_t>(m) *
              (x[b].bsums[ptrdiff_t{2} * j] + x[b].bsums[ptrdiff_t{2} * j + 1]);
    }
    sum += static_cast<double>(x[b].d) * (static_cast<double>(fp16_to_fp32(w[b].d)) * scaled -
                                          static_cast<double>(fp16_to_fp32(w[b].dmin)) * mins);
  }
  return static_cast<float>(sum);
}

}  // namespace

void quantize_row_q8_K_ref(const float* x, block_q8_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float* xb = x + b * kQK_K;
    // The value of largest magnitude maps to -127 (as llama.cpp does; its sign sets d's).
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    if (amax == 0.0f) {
      y[b] = block_q8_K{};
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      const int v = static_cast<int>(std::nearbyint(iscale * xb[j]));
      y[b].qs[j] = static_cast<int8_t>(std::min(127, v));
    }
    for (int g = 0; g < kQK_K / 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[b].qs[g * 16 + l];
      y[b].bsums[g] = static_cast<int16_t>(sum);
    }
    y[b].d = 1.0f / iscale;
  }
}

void dequantize_row_q4_K(const block_q4_K* x, float* y, int64_t n) {
  DequantizeScaleMin<block_q4_K, &UnpackQ4K>(x, y, n);
}

void dequantize_row_q5_K(const block_q5_K* x, float* y, int64_t n) {
  DequantizeScaleMin<block_q5_K, &UnpackQ5K>(x, y, n);
}

void dequantize_row_q6_K(const block_q6_K* x, float* y, int64_t n) {
  int8_t q[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    UnpackQ6K(x[b], q);
    const float d = fp16_to_fp32(x[b].d);
    for (int i = 0; i < kQK_K; ++i) {
      const int group = i / 16;  // 16 sub-blocks of 16 weights, each with its own scale
      y[b * kQK_K + i] = d * x[b].scales[group] * q[i];
    }
  }
}

float vec_dot_q4_K_q8_K_ref(const block_q4_K* w, const block_q8_K* x, int64_t n) {
  return DotScaleMin<block_q4_K, &UnpackQ4K>(w, x, n);
}

float vec_dot_q5_K_q8_K_ref(const block_q5_K* w, const block_q8_K* x, int64_t n) {
  return DotScaleMin<block_q5_K, &UnpackQ5K>(w, x, n);
}

float vec_dot_q6_K_q8_K_ref(const block_q6_K* w, const block_q8_K* x, int64_t n) {
  double sum = 0.0;
  int8_t q[kQK_K];
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    UnpackQ6K(w[b], q);
    int64_t scaled = 0;
    for (int g = 0; g < kQK_K / 16; ++g) {
      int32_t dot = 0;
      for (int l = 0; l < 16; ++l) dot += q[g * 16 + l] * x[b].qs[g * 16 + l];
      scaled += static_cast<int64_t>(w[b].scales[g]) * dot;
    }
    sum += static_cast<double>(fp16_to_fp32(w[b].d)) * x[b].d * scaled;
  }
  return static_cast<float>(sum);
}

void gemm_q4_K_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<block_q4_K, block_q8_K, &vec_dot_q4_K_q8_K_ref>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q5_K_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<block_q5_K, block_q8_K, &vec_dot_q5_K_q8_K_ref>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

void gemm_q6_K_ref(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                   int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<block_q6_K, block_q8_K, &vec_dot_q6_K_q8_K_ref>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels
