#include "kernels/cpu/ops.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels {

float exp_f32_ref(float x) {
  if (std::isnan(x)) return x;
  const float xc = std::min(std::max(x, -104.0f), 88.75f);
  const float n = std::nearbyint(xc * 1.44269504088896341f);  // ties to even, as vroundps
  float r = std::fma(-n, 0.693145751953125f, xc);
  r = std::fma(-n, 1.428606765330187e-06f, r);
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const auto ni = static_cast<int32_t>(n);
  const int32_t n1 = ni >> 1;  // arithmetic: floor(n / 2)
  const int32_t n2 = ni - n1;
  const auto power_of_two = [](int32_t k) { return std::bit_cast<float>((k + 127) << 23); };
  const float e = p * power_of_two(n1) * power_of_two(n2);
  return x < -104.0f ? 0.0f : e;
}

void soft_max_f32_ref(float* x, int64_t n, float scale) {
  float max = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x[i] *= scale;
    max = std::fmax(max, x[i]);
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; i += 8) {
    float v[8] = {};  // past the end: exp(-inf) = 0, as the SIMD tails pad
    for (int64_t j = 0; j < 8 && i + j < n; ++j) v[j] = x[i + j] = exp_f32_ref(x[i + j] - max);
    const float s0 = v[0] + v[4], s1 = v[1] + v[5], s2 = v[2] + v[6], s3 = v[3] + v[7];
    sum += (s0 + s2) + (s1 + s3);
  }
  const auto inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul_f32_ref(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + exp_f32_ref(-gate[i])) * up[i];
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
