// kernels/cpu/dot_bf16_avx512.cc — BF16 dot product and prefill tile on 512-bit vectors
// for CPUs with AVX-512 F/BW but no AVX512-BF16: values widened to F32 and multiplied with
// FMA (simd_bf16_avx512.h). Compiled with the avx512 table's flags; used only from it.
// <immintrin.h> through immintrin_avx512.h, first: GCC 12 workaround (see there).
#include "kernels/cpu/immintrin_avx512.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/simd_bf16_avx512.h"

namespace agentry::kernels::avx512 {
namespace {

struct Widen {
  using Vec = __m512;
  using Elem = uint16_t;
  static constexpr int64_t kValues = 16;
  static __m512 load(const uint16_t* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static __m512 load_partial(const uint16_t* p, int64_t count) {
    const auto m = static_cast<__mmask16>(count >= 16 ? 0xFFFF : (1u << count) - 1);
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  // The product is exact, so this is llama.cpp's separate multiply and add.
  static __m512 madd(__m512 c, __m512 w, __m512 x) { return _mm512_fmadd_ps(w, x, c); }
};

}  // namespace

float vec_dot_bf16(const uint16_t* w, const uint16_t* x, int64_t n) {
  return simd512::dot_bf16<Widen>(w, x, n);
}

void gemm_bf16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  simd512::gemm_lanes<Widen>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avx512
