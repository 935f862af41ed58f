// kernels/cpu/gemm_ref.h — the gemm reference shape shared by every format: each (row,
// token) pair through the format's vec_dot reference. Internal to kernels/cpu.
#pragma once

#include <cstddef>
#include <cstdint>

namespace agentry::kernels {

template <typename W, typename X, float (*dot)(const W*, const X*, int64_t)>
void GemmRef(const uint8_t* w, size_t w_stride, const uint8_t* x, size_t x_stride, float* y,
             int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      y[t * ldy + r] = dot(reinterpret_cast<const W*>(w + r * w_stride),
                           reinterpret_cast<const X*>(x + t * x_stride), n);
    }
  }
}

}  // namespace agentry::kernels
