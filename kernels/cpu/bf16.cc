#include "kernels/cpu/bf16.h"

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/gemm_ref.h"

namespace agentry::kernels {

void convert_row_fp32_to_bf16_ref(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

float vec_dot_bf16_ref(const uint16_t* w, const uint16_t* x, int64_t n) {
  // Double accumulation: the reference is the accurate answer SIMD paths are judged by.
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    sum += static_cast<double>(bf16_to_fp32(w[i])) * bf16_to_fp32(x[i]);
  }
  return static_cast<float>(sum);
}

void gemm_bf16_ref(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
                   int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  GemmRef<uint16_t, uint16_t, &vec_dot_bf16_ref>(w, w_stride, x, x_stride, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels
