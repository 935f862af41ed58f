// kernels/cpu/dot_bf16_avx512bf16.cc — BF16 dot product and prefill tile with AVX512-BF16's
// vdpbf16ps, 32 values a step (simd_bf16_avx512.h). Compiled with the avx512 table's flags
// and -mavx512bf16; used only when CPUID also reports AVX512-BF16 (kernels.cc).
// <immintrin.h> through immintrin_avx512.h, first: GCC 12 workaround (see there).
#include "kernels/cpu/immintrin_avx512.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/simd_bf16_avx512.h"

namespace agentry::kernels::avx512bf16 {
namespace {

struct Dpbf16 {
  using Vec = __m512i;
  using Elem = uint16_t;
  static constexpr int64_t kValues = 32;
  static __m512i load(const uint16_t* p) { return _mm512_loadu_si512(p); }
  static __m512i load_partial(const uint16_t* p, int64_t count) {
    const auto m = static_cast<__mmask32>(count >= 32 ? 0xFFFFFFFFu : (1u << count) - 1);
    return _mm512_maskz_loadu_epi16(m, p);
  }
  static __m512 madd(__m512 c, __m512i w, __m512i x) {
    return _mm512_dpbf16_ps(c, reinterpret_cast<__m512bh>(w), reinterpret_cast<__m512bh>(x));
  }
};

}  // namespace

float vec_dot_bf16(const uint16_t* w, const uint16_t* x, int64_t n) {
  return simd512::dot_bf16<Dpbf16>(w, x, n);
}

void gemm_bf16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd512::gemm_lanes<Dpbf16>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avx512bf16
