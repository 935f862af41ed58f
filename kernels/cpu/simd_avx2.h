// kernels/cpu/simd_avx2.h — small AVX2 helpers shared by the AVX2 and AVX-VNNI kernel files.
// Include only from files compiled with -mavx2 -mfma -mf16c.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/prefetch.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels::simd {
// Internal linkage: this header is compiled into files built for different instruction sets
// (e.g. -mavx2 and -mavx2 -mavxvnni), and an out-of-line copy (Debug builds emit them) built
// for the wider set must never be the one the linker keeps for the narrower set's callers.
namespace {

// Sum of the 8 lanes.
inline float hsum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The product of two fp16 block scales, converted by the F16C unit, in every lane.
inline __m256 scale_product(uint16_t a, uint16_t b) {
  return _mm256_set1_ps(_cvtsh_ss(a) * _cvtsh_ss(b));
}

// Sum of the products of 32 signed bytes, as 8 int32 lanes. maddubs multiplies unsigned by
// signed bytes, so the sign of `a` is moved onto `b` first; each pair of products fits int16
// (at most 2 * 128 * 127).
inline __m256i dot_i8x32(__m256i a, __m256i b) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// 16 bytes of Q4_0 nibbles -> 32 bytes 0..15: low nibbles first, then high nibbles.
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

inline __m256i load_i8x32(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// 0xFF in byte j where bit j of a block's 32 fifth bits (Q5_0, Q5_1) is set, else 0.
inline __m256i bytes_from_bits_32(const uint8_t* qh) {
  uint32_t bits = 0;
  __builtin_memcpy(&bits, qh, sizeof(bits));
  // Byte j takes byte j / 8 of the bits, then tests bit j % 8 of it.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
  const __m256i select = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

// A Q5_0 block's weights as signed bytes q - 16: the nibble, with 0xF0 set where the fifth
// bit is clear.
inline __m256i load_q5_0(const block_q5_0& w) {
  const __m256i high =
      _mm256_andnot_si256(bytes_from_bits_32(w.qh), _mm256_set1_epi8(static_cast<char>(0xF0)));
  return _mm256_or_si256(unpack_nibbles(w.qs), high);
}

// A Q5_1 block's weights as unsigned bytes 0..31: the nibble with 0x10 where the fifth bit
// is set.
inline __m256i load_q5_1(const block_q5_1& w) {
  return _mm256_or_si256(unpack_nibbles(w.qs),
                         _mm256_and_si256(bytes_from_bits_32(w.qh), _mm256_set1_epi8(0x10)));
}

// A weight row of `Block`s (Q8_0 or Q4_0) against Q8_0 activations: the sum over blocks of
// both fp16 scales times `block_dot`'s 8 int32 partial sums. Two independent accumulators
// hide the latency of the FMA chain. Every ISA supplies only its `block_dot`.
template <typename Block, __m256i (*block_dot)(const Block&, const block_q8_0&)>
inline float dot_blocks_q8_0(const Block* w, const block_q8_0* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps();
  __m256 acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQK8_0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m256i p0 = block_dot(w[b], x[b]);
    const __m256i p1 = block_dot(w[b + 1], x[b + 1]);
    acc0 = _mm256_fmadd_ps(scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(scale_product(w[b + 1].d, x[b + 1].d), _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; b < nb; ++b) {
    acc0 = _mm256_fmadd_ps(scale_product(w[b].d, x[b].d), _mm256_cvtepi32_ps(block_dot(w[b], x[b])),
                           acc0);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

// kernels.h's dots_q8_0 tile of R rows x T tokens (R * T = 8), in the order of dots_q8_0_ref
// (quants.h): per output, each block's exact integer dot, then one FMA per block into a float
// that starts at zero, one output per lane (lane r * T + j: row r, token j). A block's 8
// integer dots (8 partial sums each, from `block_dot(|w|, w, x)`) are summed across their
// lanes by a tree of horizontal adds, and one convert, multiply and FMA scale all 8. `dx`
// holds the tokens' scales as floats, T per block. The tile also fetches, a block's worth a
// step, the R rows that start `next`: rows read a block at a time are R streams, which the
// hardware prefetchers follow badly; the next rows are one.
template <__m256i (*block_dot)(__m256i w_abs, __m256i w, __m256i x), int R, int T>
inline void dots_tile_q8_0(const block_q8_0* const* w, const block_q8_0* const* x, const float* dx,
                           int64_t nb, const uint8_t* next, __m256* out) {
  static_assert(R * T == 8);
  constexpr int kLines = (R * static_cast<int>(sizeof(block_q8_0)) + 63) / 64;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int i = 0; i < kLines; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(next) + (b * kLines + i) * 64, _MM_HINT_T0);
    }
    __m256i p[8];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256i wq = load_i8x32(w[r][b].qs);
      const __m256i wa = _mm256_sign_epi8(wq, wq);
#pragma GCC unroll 4
      for (int j = 0; j < T; ++j) p[r * T + j] = block_dot(wa, wq, load_i8x32(x[j][b].qs));
    }
    // Lane sums: pairs, then quads, then the two 128-bit halves.
    const __m256i q0 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
    const __m256i q1 =
        _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
    const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20),
                                          _mm256_permute2x128_si256(q0, q1, 0x31));
    // Lane r * T + j: w[r]'s scale times x[j]'s, each rounded to a float as the reference.
    uint16_t dw16[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) dw16[i] = w[i / T][b].d;
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(dw16)));
    __m256 dxv;
    if constexpr (T == 4) {
      dxv = _mm256_broadcast_ps(reinterpret_cast<const __m128*>(dx + b * T));
    } else if constexpr (T == 2) {
      dxv = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(dx + b * T)));
    } else {
      dxv = _mm256_broadcast_ss(dx + b * T);
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(dw, dxv), acc);
  }
  *out = acc;
}

// dots_q8_0 for 1 to 4 tokens (and any count): groups of 8 rows, each met by every token
// while it is in L1, in tiles of 2 rows x 4 tokens, then 4 x 2 or 8 x 1 for the last 2 or 1
// tokens (3 take a 2 x 4 tile). A short tile or group repeats its last token or row and
// stores only its own outputs, so an output's bits do not depend on the tile it lands in.
template <__m256i (*block_dot)(__m256i w_abs, __m256i w, __m256i x)>
inline void dots_tiles_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y,
                            int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  constexpr int kGroup = 8;
  const int64_t nb = n / kQK8_0;
  const auto token_at = [&](int64_t t) {
    return reinterpret_cast<const block_q8_0*>(x + (t < tokens ? t : tokens - 1) * xs);
  };
  // Token chunks of 4, and the last one of 4 (3 left), 2 or 1 tokens: its width.
  const auto width = [&](int64_t t) -> int {
    const int64_t left = tokens - t;
    return left >= 3 ? 4 : static_cast<int>(left);
  };
  // Each chunk's scales as floats, [block][token in chunk], where the tiles read them.
  thread_local std::vector<float> x_scales;
  x_scales.resize(static_cast<size_t>((tokens + 3) * nb));
  for (int64_t t = 0; t < tokens; t += 4) {
    const int wd = width(t);
    float* dx = x_scales.data() + t * nb;
    for (int j = 0; j < wd; ++j) {
      const block_q8_0* xt = token_at(t + j);
      for (int64_t b = 0; b < nb; ++b) dx[b * wd + j] = _cvtsh_ss(xt[b].d);
    }
  }
  for (int64_t r0 = 0; r0 < rows; r0 += kGroup) {
    const int nr = rows - r0 < kGroup ? static_cast<int>(rows - r0) : kGroup;
    const block_q8_0* wr[kGroup];
    for (int i = 0; i < kGroup; ++i) {
      wr[i] = reinterpret_cast<const block_q8_0*>(w + (r0 + (i < nr ? i : nr - 1)) * ws);
    }
    const uint8_t* next = w + (r0 + kGroup) * ws;
    for (int64_t t = 0; t < tokens; t += 4) {
      const int wd = width(t);
      const block_q8_0* xt[4] = {token_at(t), token_at(t + 1), token_at(t + 2), token_at(t + 3)};
      const float* dx = x_scales.data() + t * nb;
      alignas(32) float out[kGroup * 4];  // [tile][r * width + j]
      const int tiles = kGroup * wd / 8;
      const int tile_rows = 8 / wd;
      for (int k = 0; k < tiles; ++k) {
        const block_q8_0* const* rows_k = wr + k * tile_rows;
        const uint8_t* next_k = next + k * tile_rows * ws;
        __m256* o = reinterpret_cast<__m256*>(out + 8 * k);
        if (wd == 4) dots_tile_q8_0<block_dot, 2, 4>(rows_k, xt, dx, nb, next_k, o);
        if (wd == 2) dots_tile_q8_0<block_dot, 4, 2>(rows_k, xt, dx, nb, next_k, o);
        if (wd == 1) dots_tile_q8_0<block_dot, 8, 1>(rows_k, xt, dx, nb, next_k, o);
      }
      const int nt = tokens - t < 4 ? static_cast<int>(tokens - t) : 4;
      for (int i = 0; i < nr; ++i) {
        for (int j = 0; j < nt; ++j) y[(t + j) * ldy + r0 + i] = out[i * wd + j];
      }
    }
  }
}

// One block of 8 tokens' Q8_0 activations for dots_lanes_q8_0, tokens in lanes: lane t of
// q[g] holds token t's bytes 4g..4g+3, and lane t of d its scale as a float.
struct LanesBlockQ8_0 {
  __m256i q[8];
  __m256 d;
};

// `tokens` (1 to 8; the last repeated to fill the lanes) tokens' activations, block by block.
inline void to_lanes_q8_0(const uint8_t* x, size_t xs, int64_t nb, int tokens,
                          LanesBlockQ8_0* out) {
  const block_q8_0* xt[8];
  for (int t = 0; t < 8; ++t) {
    xt[t] = reinterpret_cast<const block_q8_0*>(x + (t < tokens ? t : tokens - 1) * xs);
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i r[8];
    alignas(16) uint16_t d16[8];
    for (int t = 0; t < 8; ++t) {
      r[t] = load_i8x32(xt[t][b].qs);
      d16[t] = xt[t][b].d;
    }
    // An 8 x 8 transpose of 32-bit groups: rows are tokens, columns the block's groups.
    __m256i u[8];
    for (int k = 0; k < 4; ++k) {
      u[2 * k] = _mm256_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
      u[2 * k + 1] = _mm256_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
    }
    __m256i v[8];
    for (int k = 0; k < 2; ++k) {
      v[4 * k] = _mm256_unpacklo_epi64(u[4 * k], u[4 * k + 2]);          // groups 0 and 4
      v[4 * k + 1] = _mm256_unpackhi_epi64(u[4 * k], u[4 * k + 2]);      // 1 and 5
      v[4 * k + 2] = _mm256_unpacklo_epi64(u[4 * k + 1], u[4 * k + 3]);  // 2 and 6
      v[4 * k + 3] = _mm256_unpackhi_epi64(u[4 * k + 1], u[4 * k + 3]);  // 3 and 7
    }
    for (int g = 0; g < 4; ++g) {
      out[b].q[g] = _mm256_permute2x128_si256(v[g], v[4 + g], 0x20);
      out[b].q[g + 4] = _mm256_permute2x128_si256(v[g], v[4 + g], 0x31);
    }
    out[b].d = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(d16)));
  }
}

// dots_q8_0 for R rows against up to 8 tokens in lanes, in dots_q8_0_ref's order: for each
// block, lane t of isum[r] gathers row r's exact integer dot with token t, group by group
// (`block_dot` of 4 bytes of the row, broadcast, against each token's 4), and one convert,
// multiply and FMA scale all 8. Each weight is read once for all the tokens and no lanes
// are summed across; |w| is taken from the broadcast (vpabsb), which kept the broadcast a
// load where a copy of |w| through the stack became shuffles. The tile also fetches the R
// rows that start `next`, a block's worth a step.
template <__m256i (*block_dot)(__m256i w_abs, __m256i w, __m256i x), int R>
inline void dots_lanes_tile_q8_0(const block_q8_0* const* w, const LanesBlockQ8_0* x, int64_t nb,
                                 const uint8_t* next, __m256* out) {
  constexpr int kLines = (R * static_cast<int>(sizeof(block_q8_0)) + 63) / 64;
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int i = 0; i < kLines; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(next) + (b * kLines + i) * 64, _MM_HINT_T0);
    }
    __m256i isum[R];
    for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      const __m256i xg = _mm256_load_si256(&x[b].q[g]);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        int32_t wg;
        __builtin_memcpy(&wg, w[r][b].qs + 4 * g, sizeof(wg));
        const __m256i wb = _mm256_set1_epi32(wg);
        isum[r] = _mm256_add_epi32(isum[r], block_dot(_mm256_abs_epi8(wb), wb, xg));
        // Keep each row's sum one chain in a register: GCC would otherwise regroup the 32
        // integer adds into a tree whose partial sums spill to the stack.
        asm("" : "+x"(isum[r]));
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(w[r][b].d)), x[b].d);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), scale, acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = acc[r];
}

// dots_q8_0 for 5 to 8 tokens, in lanes: the tokens' blocks are transposed once, then tiles
// of 4 rows meet them all. A short tile repeats its last row and stores only its own outputs.
template <__m256i (*block_dot)(__m256i w_abs, __m256i w, __m256i x)>
inline void dots_lanes_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y,
                            int64_t ldy, int64_t n, int64_t rows, int tokens) {
  constexpr int kRows = 4;
  const int64_t nb = n / kQK8_0;
  thread_local std::vector<LanesBlockQ8_0> lanes;
  lanes.resize(static_cast<size_t>(nb));
  to_lanes_q8_0(x, xs, nb, tokens, lanes.data());
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int nr = rows - r0 < kRows ? static_cast<int>(rows - r0) : kRows;
    const block_q8_0* wr[kRows];
    for (int i = 0; i < kRows; ++i) {
      wr[i] = reinterpret_cast<const block_q8_0*>(w + (r0 + (i < nr ? i : nr - 1)) * ws);
    }
    alignas(32) float out[kRows][8];
    dots_lanes_tile_q8_0<block_dot, kRows>(wr, lanes.data(), nb, w + (r0 + kRows) * ws,
                                           reinterpret_cast<__m256*>(out));
    for (int i = 0; i < nr; ++i) {
      for (int t = 0; t < tokens; ++t) y[t * ldy + r0 + i] = out[i][t];
    }
  }
}

// kernels.h's dots_q8_0: chunks of 8 tokens, and a last chunk of 5 to 7, in lanes
// (dots_lanes_q8_0); 1 to 4 tokens (a session alone, or what is left) in tiles
// (dots_tiles_q8_0). Both give dots_q8_0_ref's bits, so which a token takes never shows.
template <__m256i (*block_dot)(__m256i w_abs, __m256i w, __m256i x)>
inline void dots_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y,
                      int64_t ldy, int64_t n, int64_t rows, int64_t tokens) {
  constexpr int64_t kLanes = 8;
  constexpr int64_t kFewest = 5;  // below this the tiles' shared weight loads win
  int64_t t = 0;
  for (; tokens - t >= kFewest; t += kLanes) {
    const int chunk = static_cast<int>(tokens - t < kLanes ? tokens - t : kLanes);
    dots_lanes_q8_0<block_dot>(w, ws, x + t * xs, xs, y + t * ldy, ldy, n, rows, chunk);
  }
  if (t < tokens) {
    dots_tiles_q8_0<block_dot>(w, ws, x + t * xs, xs, y + t * ldy, ldy, n, rows, tokens - t);
  }
}

// e^x for 8 floats, within 1 ulp of glibc's expf (every 2000th float in [-104, 88.8]): e^x = 2^n
// e^r with n = round(x / ln 2) and r = x - n ln 2 (ln 2 in two parts, so r is exact); e^r by its
// Taylor series to r^7 (|r| <= ln 2 / 2: truncation under 1e-8 relative); 2^n applied as two exact
// power-of-two factors so results down into the subnormals round once, as the AVX-512 version's
// vscalefps does (the two agree bit for bit). Infinity above 88.72, zero below -104, NaN stays NaN.
inline __m256 exp(__m256 x) {
  const __m256 xc =
      _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(88.75f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-06f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  // n in [-150, 129]: halves in [-75, 65], each a normal float 2^k = (k + 127) << 23.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  e = _mm256_blendv_ps(e, _mm256_setzero_ps(),
                       _mm256_cmp_ps(x, _mm256_set1_ps(-104.0f), _CMP_LT_OQ));
  return _mm256_blendv_ps(e, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// ---- Prefill tiles (gemm_avx2.cc, dot_bf16_avx2.cc) --------------------------------------
// kGemmRows x kGemmTokens tiles; rows and tokens outside whole tiles go through the dot.
inline constexpr int kTileRows = static_cast<int>(kGemmRows);
inline constexpr int kTileTokens = static_cast<int>(kGemmTokens);

using TileFn = void (*)(const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t, int64_t);
using DotFn = float (*)(const uint8_t*, const uint8_t*, int64_t);

// Whole tiles through `tile`, the remaining rows and tokens through `dot`. `row_bytes`, when
// given, is what is read of each row: rows further apart than that (attention's keys) are
// fetched kStridedPrefetchRows ahead (prefetch.h).
inline void Gemm(TileFn tile, DotFn dot, const uint8_t* w, size_t ws, const uint8_t* x, size_t xs,
                 float* y, int64_t ldy, int64_t n, int64_t rows, int64_t tokens,
                 int64_t row_bytes = 0) {
  const bool strided = row_bytes > 0 && ws > static_cast<size_t>(row_bytes);
  const auto stride = static_cast<int64_t>(ws);
  const int64_t full_rows = rows / kTileRows * kTileRows;
  const int64_t full_tokens = tokens / kTileTokens * kTileTokens;
  for (int64_t t = 0; t < full_tokens; t += kTileTokens) {
    for (int64_t r = 0; r < full_rows; r += kTileRows) {
      if (strided) prefetch_rows_ahead(w, stride, r, kTileRows, rows, row_bytes);
      tile(w + r * ws, ws, x + t * xs, xs, y + t * ldy + r, ldy, n);
    }
  }
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t r0 = t < full_tokens ? full_rows : 0;
    for (int64_t r = r0; r < rows; ++r) {
      if (strided) prefetch_rows_ahead(w, stride, r, 1, rows, row_bytes);
      y[t * ldy + r] = dot(w + r * ws, x + t * xs, n);
    }
  }
}

// Weights and activations of type T that become 8 F32 lanes by `load8` (F32, F16, BF16):
// one kTileRows x kTileTokens tile with its 12 sums in registers; the tail past the last
// whole 8 in scalar code through `to_f32`.
template <typename T, __m256 (*load8)(const T*), float (*to_f32)(T)>
void tile_float(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                int64_t n) {
  __m256 c[kTileRows][kTileTokens];
#pragma GCC unroll 4
  for (auto& row : c) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm256_setzero_ps();
  }
  const T* xr[kTileTokens];
  const T* wr[kTileRows];
#pragma GCC unroll 4
  for (int t = 0; t < kTileTokens; ++t) xr[t] = reinterpret_cast<const T*>(x + t * xs);
#pragma GCC unroll 4
  for (int r = 0; r < kTileRows; ++r) wr[r] = reinterpret_cast<const T*>(w + r * ws);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 xv[kTileTokens];
#pragma GCC unroll 4
    for (int t = 0; t < kTileTokens; ++t) xv[t] = load8(xr[t] + k);
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 wv = load8(wr[r] + k);
#pragma GCC unroll 4
      for (int t = 0; t < kTileTokens; ++t) c[r][t] = _mm256_fmadd_ps(wv, xv[t], c[r][t]);
    }
  }
  for (int r = 0; r < kTileRows; ++r) {
    for (int t = 0; t < kTileTokens; ++t) {
      float sum = hsum(c[r][t]);
      for (int64_t j = k; j < n; ++j) sum += to_f32(wr[r][j]) * to_f32(xr[t][j]);
      y[t * ldy + r] = sum;
    }
  }
}

}  // namespace
}  // namespace agentry::kernels::simd
