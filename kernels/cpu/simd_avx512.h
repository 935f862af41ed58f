// kernels/cpu/simd_avx512.h — small AVX-512 helpers shared by dot_avx512.cc and
// gemm_avx512.cc. Include only from files compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni (and -mavx2 -mfma -mf16c), after kernels/cpu/immintrin_avx512.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels::simd512 {
// Internal linkage: this header is compiled into files built for different instruction sets
// (e.g. -mavx2 and -mavx2 -mavxvnni), and an out-of-line copy (Debug builds emit them) built
// for the wider set must never be the one the linker keeps for the narrower set's callers.
namespace {

// Sum of the 16 lanes.
inline float hsum(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The sums of four vectors' lanes as one 128-bit vector {sum a, sum b, sum c, sum d}: the
// lane pairs of a and b (and of c and d) are added first, then the 128-bit quarters.
inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  // Per quarter: {a0+a2, b0+b2, a1+a3, b1+b3} and the same for c, d; fold to {a, b, c, d}.
  const __m512 abcd = _mm512_add_ps(
      _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
      _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// 16 fp16 values to 16 floats.
inline __m512 load16_f32(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 load16_f32(const float* p) { return _mm512_loadu_ps(p); }

// The first `count` (< 16) values, zeros after; reads nothing past them.
inline __m512 load_partial_f32(const uint16_t* p, int64_t count) {
  const __mmask16 m = static_cast<__mmask16>((1u << count) - 1);
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}
inline __m512 load_partial_f32(const float* p, int64_t count) {
  const __mmask16 m = static_cast<__mmask16>((1u << count) - 1);
  return _mm512_maskz_loadu_ps(m, p);
}

// The quants of two consecutive Q8_0 (or Q8_1) blocks: block b in the low 256 bits, b + 1 in
// the high.
template <typename Block>
inline __m512i load_q8_pair(const Block* b) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

inline __m512i load_q8_0_pair(const block_q8_0* b) { return load_q8_pair(b); }

// The nibbles of two consecutive Q4_0 (Q4_1, Q5_0, Q5_1) blocks as bytes 0..15, laid out to
// meet load_q8_0_pair: block b's low nibbles (weights 0-15), its high nibbles (16-31), then
// block b + 1's. Byte j of a block's half is weight j.
template <typename Block>
inline __m512i load_nibble_pair(const Block* b) {
  const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[0].qs));
  const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[1].qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
  // {q0, q1, q0 >> 4, q1 >> 4}, reordered to {q0, q0 >> 4, q1, q1 >> 4}.
  const __m512i wide =
      _mm512_inserti64x4(_mm512_castsi256_si512(both), _mm256_srli_epi16(both, 4), 1);
  const __m512i ordered = _mm512_shuffle_i64x2(wide, wide, _MM_SHUFFLE(3, 1, 2, 0));
  return _mm512_and_si512(ordered, _mm512_set1_epi8(0x0F));
}

inline __m512i load_q4_0_pair(const block_q4_0* b) { return load_nibble_pair(b); }

// Two consecutive Q5_0/Q5_1 blocks' weights as unsigned bytes 0..31: the nibbles with each
// weight's fifth bit (qh bit j -> byte j) as 0x10.
template <typename Block>
inline __m512i load_five_bit_pair(const Block* b) {
  uint32_t h0 = 0;
  uint32_t h1 = 0;
  __builtin_memcpy(&h0, b[0].qh, 4);
  __builtin_memcpy(&h1, b[1].qh, 4);
  const __mmask64 fifth = static_cast<__mmask64>(h0) | (static_cast<__mmask64>(h1) << 32);
  return _mm512_or_si512(load_nibble_pair(b), _mm512_maskz_mov_epi8(fifth, _mm512_set1_epi8(0x10)));
}

// Two blocks' scale products: lanes 0-7 hold a0 * b0, lanes 8-15 a1 * b1 (fp16 inputs).
inline __m512 scale_pair(uint16_t a0, uint16_t b0, uint16_t a1, uint16_t b1) {
  const __m128 v =
      _mm_cvtph_ps(_mm_setr_epi16(static_cast<int16_t>(a0), static_cast<int16_t>(a1),
                                  static_cast<int16_t>(b0), static_cast<int16_t>(b1), 0, 0, 0, 0));
  const __m128 prod = _mm_mul_ps(v, _mm_movehl_ps(v, v));  // {a0 b0, a1 b1, ...}
  const __m512 wide = _mm512_castps128_ps512(prod);
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               wide);
}

// e^x for 16 floats: the same steps as simd::exp (simd_avx2.h) and the same bits, with
// vscalefps applying 2^n (overflow to infinity and subnormal results rounded once).
inline __m512 exp(__m512 x) {
  const __m512 xc =
      _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.75f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  __m512 e = _mm512_scalef_ps(p, n);
  e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_LT_OQ),
                         _mm512_setzero_ps());
  return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// ---- Prefill tiles for weights multiplied in F32 lanes (F32, F16, BF16) ----------------
// A `Step` says how: Elem (the stored type of weights and activations), Vec, kValues (values
// a step), load(p), load_partial(p, count) (zeros past count, reading nothing past them) and
// madd(c, w, x) (c + w * x into 16 F32 lanes). Callers: gemm_avx512.cc (F32, F16) and
// simd_bf16_avx512.h's users (BF16, widened or by vdpbf16ps).

inline constexpr int kLaneRows = 4;
inline constexpr int kLaneTokens = 6;
static_assert(kGemmRows % kLaneRows == 0, "threads split rows at multiples of kGemmRows");

// Rows w[0..3] (pointers may repeat for a short tile) against RN tokens; stores the first
// `rows` sums of each token. Values past n meet zero-padded lanes, so every output runs the
// same instructions wherever its row and token sit: the same bits for any split.
template <typename Step, int RN>
void tile_lanes(const typename Step::Elem* const w[kLaneRows], const uint8_t* x, size_t xs,
                float* y, int64_t ldy, int64_t n, int64_t rows) {
  constexpr int64_t kStep = Step::kValues;
  __m512 c[RN][kLaneRows];
#pragma GCC unroll 8
  for (auto& tok : c) {
#pragma GCC unroll 4
    for (auto& v : tok) v = _mm512_setzero_ps();
  }
  const typename Step::Elem* xr[RN];
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) xr[t] = reinterpret_cast<const typename Step::Elem*>(x + t * xs);
  int64_t k = 0;
  for (; k + kStep <= n; k += kStep) {
    typename Step::Vec wv[kLaneRows];
#pragma GCC unroll 4
    for (int r = 0; r < kLaneRows; ++r) wv[r] = Step::load(w[r] + k);
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      const typename Step::Vec xv = Step::load(xr[t] + k);
#pragma GCC unroll 4
      for (int r = 0; r < kLaneRows; ++r) c[t][r] = Step::madd(c[t][r], wv[r], xv);
    }
  }
  if (k < n) {  // the same step on zero-padded lanes
    typename Step::Vec wv[kLaneRows];
#pragma GCC unroll 4
    for (int r = 0; r < kLaneRows; ++r) wv[r] = Step::load_partial(w[r] + k, n - k);
#pragma GCC unroll 8
    for (int t = 0; t < RN; ++t) {
      const typename Step::Vec xv = Step::load_partial(xr[t] + k, n - k);
#pragma GCC unroll 4
      for (int r = 0; r < kLaneRows; ++r) c[t][r] = Step::madd(c[t][r], wv[r], xv);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < RN; ++t) {
    const __m128 sums = hsum4(c[t][0], c[t][1], c[t][2], c[t][3]);
    if (rows == kLaneRows) {
      _mm_storeu_ps(y + t * ldy, sums);
    } else {
      alignas(16) float tmp[kLaneRows];
      _mm_store_ps(tmp, sums);
      for (int64_t r = 0; r < rows; ++r) y[t * ldy + r] = tmp[r];
    }
  }
}

template <typename Step>
void gemm_lanes(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                int64_t n, int64_t rows, int64_t tokens) {
  const auto row_bytes = static_cast<int64_t>(n * sizeof(typename Step::Elem));
  const bool strided = ws > static_cast<size_t>(row_bytes);
  for (int64_t r = 0; r < rows; r += kLaneRows) {
    if (strided) prefetch_rows_ahead(w, static_cast<int64_t>(ws), r, kLaneRows, rows, row_bytes);
    const int64_t nr = std::min<int64_t>(kLaneRows, rows - r);
    const typename Step::Elem* wr[kLaneRows];
    for (int64_t i = 0; i < kLaneRows; ++i) {
      wr[i] = reinterpret_cast<const typename Step::Elem*>(w + (r + std::min(i, nr - 1)) * ws);
    }
    int64_t t = 0;
    for (; t + kLaneTokens <= tokens; t += kLaneTokens) {
      tile_lanes<Step, kLaneTokens>(wr, x + t * xs, xs, y + t * ldy + r, ldy, n, nr);
    }
    const uint8_t* xt = x + t * xs;
    float* yt = y + t * ldy + r;
    switch (tokens - t) {
      case 5:
        tile_lanes<Step, 5>(wr, xt, xs, yt, ldy, n, nr);
        break;
      case 4:
        tile_lanes<Step, 4>(wr, xt, xs, yt, ldy, n, nr);
        break;
      case 3:
        tile_lanes<Step, 3>(wr, xt, xs, yt, ldy, n, nr);
        break;
      case 2:
        tile_lanes<Step, 2>(wr, xt, xs, yt, ldy, n, nr);
        break;
      case 1:
        tile_lanes<Step, 1>(wr, xt, xs, yt, ldy, n, nr);
        break;
      default:
        break;
    }
  }
}

}  // namespace
}  // namespace agentry::kernels::simd512
