#include "kernels/cpu/attention.h"

#include <cmath>

#include "kernels/cpu/fp16.h"

namespace agentry::kernels {

void axpy_q8_0_ref(float* y, float a, const block_q8_0* x, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK8_0; ++j) {
      y[b * kQK8_0 + j] += a * (d * static_cast<float>(x[b].qs[j]));
    }
  }
}

void hadamard_rotate(float* x, int64_t n, int64_t block) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(block));
  for (int64_t start = 0; start < n; start += block) {
    float* v = x + start;
    for (int64_t i = 0; i < block; ++i) v[i] *= scale;
    for (int64_t len = 1; len < block; len <<= 1) {
      for (int64_t i = 0; i < block; i += 2 * len) {
        for (int64_t j = i; j < i + len; ++j) {
          const float u = v[j];
          const float w = v[j + len];
          v[j] = u + w;
          v[j + len] = u - w;
        }
      }
    }
  }
}

}  // namespace agentry::kernels
