// kernels/cpu/dot_avx512.cc — the dot products, activation conversions and F16 axpy on
// 512-bit vectors, with AVX512-VNNI's vpdpbusd for the Q8_0 and Q4_0 dots. Compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512vnni (and AVX2/FMA/F16C); used only when CPUID
// reports all of them (kernels.cc).
//
// vpdpbusd multiplies unsigned by signed bytes. AVX-512 has no vpsignb to move a sign from
// one operand to the other as the AVX2 paths do, so signed weights w meet the activations x
// as w + 128 (w xor 0x80, unsigned) and 128 * sum(x), from a second vpdpbusd, is subtracted;
// Q4_0's nibbles are already unsigned and subtract 8 * sum(x). Both are exact in int32.
// <immintrin.h> through immintrin_avx512.h, first: GCC 12 workaround (see there).
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/immintrin_avx512.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_avx512.h"

namespace agentry::kernels::avx512 {
namespace {

using simd512::hsum;

// Sum of the 8 lanes of a 256-bit vector.
inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Integer dot of two blocks in one 512-bit register each: per block, 8 int32 partial sums.
inline __m512i pair_dot_q8_0(__m512i w, __m512i x) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i sum_x = _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, x);
  const __m512i biased = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(w, bias), x);
  return _mm512_sub_epi32(biased, sum_x);
}

inline __m512i pair_dot_q4_0(__m512i nibbles, __m512i x) {
  const __m512i sum_x8 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), x);
  return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles, x), sum_x8);
}

// One block on 256-bit vectors (the odd block at the end of a row).
inline float single_dot_q8_0(const block_q8_0& w, const block_q8_0& x) {
  const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.qs));
  const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i sum_x = _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, xq);
  const __m256i biased =
      _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_xor_si256(wq, bias), xq);
  const __m256 p = _mm256_cvtepi32_ps(_mm256_sub_epi32(biased, sum_x));
  return hsum256(_mm256_mul_ps(_mm256_set1_ps(fp16_to_fp32(w.d) * fp16_to_fp32(x.d)), p));
}

inline float single_dot_q4_0(const block_q4_0& w, const block_q8_0& x) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.qs));
  const __m256i nibbles = _mm256_and_si256(
      _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1),
      _mm256_set1_epi8(0x0F));
  const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i sum_x8 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), xq);
  const __m256i prod = _mm256_dpbusd_epi32(_mm256_setzero_si256(), nibbles, xq);
  const __m256 p = _mm256_cvtepi32_ps(_mm256_sub_epi32(prod, sum_x8));
  return hsum256(_mm256_mul_ps(_mm256_set1_ps(fp16_to_fp32(w.d) * fp16_to_fp32(x.d)), p));
}

// Q5_0: the weights as unsigned w + 16 (simd512::load_five_bit_pair), minus 16 * sum(x).
inline __m512i pair_dot_q5_0(__m512i w, __m512i x) {
  const __m512i sum_x16 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(16), x);
  return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x), sum_x16);
}

inline float single_dot_q5_0(const block_q5_0& w, const block_q8_0& x) {
  uint32_t h = 0;
  std::memcpy(&h, w.qh, 4);
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w.qs));
  const __m256i nibbles = _mm256_and_si256(
      _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1),
      _mm256_set1_epi8(0x0F));
  const __m256i wq = _mm256_or_si256(nibbles, _mm256_maskz_mov_epi8(h, _mm256_set1_epi8(0x10)));
  const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.qs));
  const __m256i sum_x16 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(16), xq);
  const __m256i prod = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wq, xq);
  const __m256 p = _mm256_cvtepi32_ps(_mm256_sub_epi32(prod, sum_x16));
  return hsum256(_mm256_mul_ps(_mm256_set1_ps(fp16_to_fp32(w.d) * fp16_to_fp32(x.d)), p));
}

// Four 64-bit lanes' worth of word index `v`, for the word permutes below.
constexpr int64_t Words4(int v) { return int64_t{0x0001000100010001} * v; }

// Where block i's fp16 field at byte `kField` (0: d; 2: Q4_1/Q5_1's m, Q8_1's s) sits among
// the 64 words of two 64-byte loads of four consecutive blocks (words 0-31: the load at byte
// 0, words 32-63: the load at byte `second`). The second load ends at or before the fourth
// block's end, so neither reads past the four blocks.
template <typename Block, int kField>
struct FieldWords {
  static constexpr int kSize = static_cast<int>(sizeof(Block));
  static constexpr bool kOneLoad = 3 * kSize + kField + 2 <= 64;
  static constexpr int second = 2 * kSize < 4 * kSize - 64 ? 2 * kSize : 4 * kSize - 64;
  static constexpr int of(int i) {
    return i * kSize + kField + 2 <= 64 ? (i * kSize + kField) / 2
                                        : 32 + (i * kSize + kField - second) / 2;
  }
  static_assert(kSize % 2 == 0 && kField % 2 == 0 && second % 2 == 0, "fields are whole words");
  static_assert(kOneLoad || (second >= 0 && second + 64 <= 4 * kSize),
                "the second load stays inside the four blocks");
  static_assert(kOneLoad || 2 * kSize + kField + 2 <= 64 || 2 * kSize + kField >= second,
                "block 2's field is loaded");
  static_assert(kOneLoad || 3 * kSize + kField >= second, "block 3's field is loaded");
};

// The fp16 field at byte kField (d by default) of four consecutive blocks of `Block`, each
// repeated 8 times: 32 halves {f0 x 8, f1 x 8, f2 x 8, f3 x 8}. One 64-byte load and a word
// permute when the four fields lie within 64 bytes (Q4_0), else two (Q8_0, Q5_0, ...); both
// stay inside the four blocks (ASan caught a Q5_0 version whose second load did not). perf
// annotate showed the scalar build of these vectors (a load, vpinsrw and shuffles per
// scale) at 40 % of the Q4_0 decode loop.
template <typename Block, int kField = 0>
inline __m512i scales4(const Block* b) {
  using W = FieldWords<Block, kField>;
  const auto* p = reinterpret_cast<const uint8_t*>(b);
  const __m512i idx =
      _mm512_set_epi64(Words4(W::of(3)), Words4(W::of(3)), Words4(W::of(2)), Words4(W::of(2)),
                       Words4(W::of(1)), Words4(W::of(1)), Words4(W::of(0)), Words4(W::of(0)));
  if constexpr (W::kOneLoad) {
    return _mm512_permutexvar_epi16(idx, _mm512_loadu_si512(p));
  } else {
    return _mm512_permutex2var_epi16(_mm512_loadu_si512(p), idx, _mm512_loadu_si512(p + W::second));
  }
}

// Products of two scales4 vectors as two 16-lane floats: blocks 0-1 and blocks 2-3.
inline void scale_products4(__m512i a, __m512i b, __m512* s01, __m512* s23) {
  *s01 = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(a)),
                       _mm512_cvtph_ps(_mm512_castsi512_si256(b)));
  *s23 = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(a, 1)),
                       _mm512_cvtph_ps(_mm512_extracti64x4_epi64(b, 1)));
}

// A row of `Block`s against Q8_0 activations, two blocks a register, two registers a step
// (independent FMA chains). `load_w` gives two blocks' weights laid out as load_q8_0_pair.
template <typename Block, __m512i (*load_w)(const Block*), __m512i (*pair_dot)(__m512i, __m512i),
          float (*single_dot)(const Block&, const block_q8_0&)>
float dot_blocks(const Block* w, const block_q8_0* x, int64_t n) {
  const int64_t nb = n / kQK8_0;
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m512i p0 = pair_dot(load_w(w + b), simd512::load_q8_0_pair(x + b));
    const __m512i p1 = pair_dot(load_w(w + b + 2), simd512::load_q8_0_pair(x + b + 2));
    __m512 s01;
    __m512 s23;
    scale_products4(scales4(w + b), scales4(x + b), &s01, &s23);
    acc0 = _mm512_fmadd_ps(s01, _mm512_cvtepi32_ps(p0), acc0);
    acc1 = _mm512_fmadd_ps(s23, _mm512_cvtepi32_ps(p1), acc1);
  }
  for (; b + 2 <= nb; b += 2) {
    const __m512i p = pair_dot(load_w(w + b), simd512::load_q8_0_pair(x + b));
    acc0 = _mm512_fmadd_ps(simd512::scale_pair(w[b].d, x[b].d, w[b + 1].d, x[b + 1].d),
                           _mm512_cvtepi32_ps(p), acc0);
  }
  float sum = hsum(_mm512_add_ps(acc0, acc1));
  if (b < nb) sum += single_dot(w[b], x[b]);
  return sum;
}

// A row of blocks with a min (Q4_1, Q5_1) against Q8_1 activations, two blocks a register
// and four a step: unsigned weights are vpdpbusd's unsigned operand as they stand, so no
// bias. The min terms m_w * s_x come from the same fp16 gathers as the scales (field 2 of
// both blocks), each product in 8 lanes, so their sum is the lanes' sum / 8 (exact: a power
// of two). Odd pairs at the end go one pair at a time, an odd last block with a zero block
// (scale 0) in the pair's high half.
template <typename Block, __m512i (*load_w)(const Block*)>
float dot_blocks_q8_1(const Block* w, const block_q8_1* x, int64_t n) {
  static_assert(offsetof(Block, m) == 2 && offsetof(block_q8_1, s) == 2, "m and s at byte 2");
  const int64_t nb = n / kQK8_0;
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  __m512 mins = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const __m512i p0 =
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), load_w(w + b), simd512::load_q8_pair(x + b));
    const __m512i p1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), load_w(w + b + 2),
                                           simd512::load_q8_pair(x + b + 2));
    __m512 s01;
    __m512 s23;
    scale_products4(scales4(w + b), scales4(x + b), &s01, &s23);
    acc0 = _mm512_fmadd_ps(s01, _mm512_cvtepi32_ps(p0), acc0);
    acc1 = _mm512_fmadd_ps(s23, _mm512_cvtepi32_ps(p1), acc1);
    __m512 m01;
    __m512 m23;
    scale_products4(scales4<Block, 2>(w + b), scales4<block_q8_1, 2>(x + b), &m01, &m23);
    mins = _mm512_add_ps(mins, _mm512_add_ps(m01, m23));
  }
  auto pair = [&](const Block* wb, const block_q8_1* xb) {
    const __m512i p =
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), load_w(wb), simd512::load_q8_pair(xb));
    acc0 = _mm512_fmadd_ps(simd512::scale_pair(wb[0].d, xb[0].d, wb[1].d, xb[1].d),
                           _mm512_cvtepi32_ps(p), acc0);
    mins = _mm512_add_ps(mins, simd512::scale_pair(wb[0].m, xb[0].s, wb[1].m, xb[1].s));
  };
  for (; b + 2 <= nb; b += 2) pair(w + b, x + b);
  if (b < nb) {
    const Block wt[2] = {w[b], Block{}};
    const block_q8_1 xt[2] = {x[b], block_q8_1{}};
    pair(wt, xt);
  }
  return hsum(_mm512_add_ps(acc0, acc1)) + hsum(mins) * 0.125f;
}

}  // namespace

float vec_dot_q4_1_q8_1(const block_q4_1* w, const block_q8_1* x, int64_t n) {
  return dot_blocks_q8_1<block_q4_1, &simd512::load_nibble_pair<block_q4_1>>(w, x, n);
}

float vec_dot_q5_1_q8_1(const block_q5_1* w, const block_q8_1* x, int64_t n) {
  return dot_blocks_q8_1<block_q5_1, &simd512::load_five_bit_pair<block_q5_1>>(w, x, n);
}

float vec_dot_f32(const float* w, const float* x, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  __m512 acc2 = _mm512_setzero_ps();
  __m512 acc3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), acc1);
    acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 32), _mm512_loadu_ps(x + i + 32), acc2);
    acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 48), _mm512_loadu_ps(x + i + 48), acc3);
  }
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc0);
  }
  if (i < n) {
    acc1 = _mm512_fmadd_ps(simd512::load_partial_f32(w + i, n - i),
                           simd512::load_partial_f32(x + i, n - i), acc1);
  }
  return hsum(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
}

float vec_dot_f16(const uint16_t* w, const uint16_t* x, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps();
  __m512 acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(simd512::load16_f32(w + i), simd512::load16_f32(x + i), acc0);
    acc1 = _mm512_fmadd_ps(simd512::load16_f32(w + i + 16), simd512::load16_f32(x + i + 16), acc1);
  }
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm512_fmadd_ps(simd512::load16_f32(w + i), simd512::load16_f32(x + i), acc0);
  }
  if (i < n) {
    acc1 = _mm512_fmadd_ps(simd512::load_partial_f32(w + i, n - i),
                           simd512::load_partial_f32(x + i, n - i), acc1);
  }
  return hsum(_mm512_add_ps(acc0, acc1));
}

float vec_dot_q8_0_q8_0(const block_q8_0* w, const block_q8_0* x, int64_t n) {
  return dot_blocks<block_q8_0, &simd512::load_q8_0_pair, &pair_dot_q8_0, &single_dot_q8_0>(w, x,
                                                                                            n);
}

float vec_dot_q4_0_q8_0(const block_q4_0* w, const block_q8_0* x, int64_t n) {
  return dot_blocks<block_q4_0, &simd512::load_q4_0_pair, &pair_dot_q4_0, &single_dot_q4_0>(w, x,
                                                                                            n);
}

float vec_dot_q5_0_q8_0(const block_q5_0* w, const block_q8_0* x, int64_t n) {
  return dot_blocks<block_q5_0, &simd512::load_five_bit_pair<block_q5_0>, &pair_dot_q5_0,
                    &single_dot_q5_0>(w, x, n);
}

// As avx2::quantize_row_q8_0 (scale 127 / amax, round half to even), a block a step: the
// same arithmetic, so the same bytes; int32 -> int8 by one saturating narrow (values are
// within +-127 already).
void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * kQK8_0);
    const __m512 v1 = _mm512_loadu_ps(x + b * kQK8_0 + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    y[b].d = fp32_to_fp16(amax / 127.0f);
    const __m512 id = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16), _mm512_cvtsepi32_epi8(q1));
  }
}

void axpy_f16(float* y, float a, const uint16_t* x, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i,
                     _mm512_fmadd_ps(av, simd512::load16_f32(x + i), _mm512_loadu_ps(y + i)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 yv = _mm512_maskz_loadu_ps(m, y + i);
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(av, simd512::load_partial_f32(x + i, n - i), yv));
  }
}

void convert_row_fp32_to_fp16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

}  // namespace agentry::kernels::avx512
