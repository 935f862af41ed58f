#include "kernels/cpu/ops.h"

#include <cmath>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels {

void soft_max_f32_ref(float* x, int64_t n, float scale) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= scale;
    max = std::fmax(max, x[i]);
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul_f32_ref(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void axpy_block_f16_ref(float* y, int64_t ldy, const uint16_t* a, int64_t lda, const uint16_t* x,
                        int64_t ldx, int64_t n_x, int64_t n, int64_t tokens) {
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t s = 0; s < n_x; ++s) {
      axpy_f16_ref(y + t * ldy, fp16_to_fp32(a[t * lda + s]), x + s * ldx, n);
    }
  }
}

void axpy_block_f32_ref(float* y, int64_t ldy, const float* a, int64_t lda, int64_t a_step,
                        const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t tokens) {
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t s = 0; s < n_x; ++s) {
      const float at = a[t * lda + s * a_step];
      for (int64_t i = 0; i < n; ++i) y[t * ldy + i] = std::fma(at, x[s * ldx + i], y[t * ldy + i]);
    }
  }
}

}  // namespace agentry::kernels
