// kernels/cpu/gemm_avx512.cc — prefill blocks of dot products on 512-bit vectors (AVX-512
// F/BW/VL and VNNI). Two shapes, both on the weights' own layout in the mapped file:
//
// F32 and F16: 4-row x 6-token register tiles, 16 values of k a lane: every weight load
//   serves six tokens, every activation load four rows; 24 accumulators of the 32
//   registers. The four rows' sums of one token are reduced together and stored as one
//   128-bit vector.
//
// Q8_0 and Q4_0: the lanes are 16 tokens. The activations of the call (at most a chunk of
//   48 tokens in MatMul) are first rearranged into a panel: per block and per 16 tokens,
//   eight registers whose lane i holds token i's bytes 4j..4j+3, plus each token's scale
//   and bias correction. A weight block's four bytes j are then broadcast to all lanes, and
//   one vpdpbusd multiplies them with the 16 tokens' four bytes at once; its int32 lanes
//   are 16 outputs, so one scale multiply and one FMA finish a block for 16 tokens (a tile
//   on the k axis instead spends them on every token and row). This is what llama.cpp gets
//   from repacking Q4_0 weights at load time into interleaved rows; here the activations
//   are repacked instead, per call, into a few hundred KiB of thread-local scratch, and the
//   weights stay as they are in the memory-mapped file (no private copy: the resident
//   memory bound of engine.md holds for any model size).
//
// In both shapes an output's arithmetic does not depend on the tile it lands in (rows and
// tokens at the edges run the same instruction sequence on padded tiles), so the result is
// the same bits for any split of rows or tokens across calls and threads.
// <immintrin.h> through immintrin_avx512.h, first: GCC 12 workaround (see there).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/immintrin_avx512.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/simd_avx512.h"

namespace agentry::kernels::avx512 {
namespace {

// ---- F32 and F16 -------------------------------------------------------------------

// F32 and F16 (widened by vcvtph2ps) weights and activations, 16 values a step, one FMA.
template <typename T>
struct FloatStep {
  using Elem = T;
  using Vec = __m512;
  static constexpr int64_t kValues = 16;
  static __m512 load(const T* p) { return simd512::load16_f32(p); }
  static __m512 load_partial(const T* p, int64_t count) {
    return simd512::load_partial_f32(p, count);
  }
  static __m512 madd(__m512 c, __m512 w, __m512 x) { return _mm512_fmadd_ps(w, x, c); }
};

// ---- Q8_0 and Q4_0 against Q8_0 activations -----------------------------------------

constexpr int kLanes = 16;     // tokens a register
constexpr int kQuantRows = 2;  // rows a tile
constexpr int kMaxGroups = 3;  // 16-token groups a tile: 2 x 3 x 2 registers of sums

// One block of 16 tokens' activations, rearranged for broadcast weights.
struct alignas(64) PanelBlock {
  int8_t q[8][kLanes * 4];  // q[j][4 i + m] = token i's byte 4 j + m
  int32_t corr[kLanes];     // -bias * sum of token i's bytes (see WeightQ8_0 / WeightQ4_0)
  float d[kLanes];          // token i's scale
  float s[kLanes];          // Q8_1 activations: token i's d * sum(q), for weights with a min
};

// The activation panel of one call: group g's block b at [g * nb + b]. Thread-local so the
// pool's threads never share or reallocate it; it only grows (to 48 tokens x n / 32 blocks
// x 640 bytes for MatMul's chunks: 60 KiB for n = 1024, 540 KiB for n = 9216).
thread_local std::vector<PanelBlock> t_panel;

// Lanes past `tokens` are zero: they compute zeros that are never stored.
template <typename XBlock>
void BuildPanel(const uint8_t* x, size_t xs, int64_t n, int64_t tokens, int32_t bias) {
  const int64_t nb = n / kQK8_0;
  const int64_t ng = (tokens + kLanes - 1) / kLanes;
  if (t_panel.size() < static_cast<size_t>(ng * nb)) t_panel.resize(ng * nb);
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t g = 0; g < ng; ++g) {
    const int64_t valid = std::min<int64_t>(kLanes, tokens - g * kLanes);
    for (int64_t b = 0; b < nb; ++b) {
      PanelBlock& p = t_panel[g * nb + b];
      alignas(32) uint16_t d16[kLanes] = {};
      alignas(32) uint16_t s16[kLanes] = {};
      for (int64_t i = 0; i < kLanes; ++i) {
        if (i < valid) {
          const XBlock& blk = reinterpret_cast<const XBlock*>(x + (g * kLanes + i) * xs)[b];
          for (int j = 0; j < 8; ++j) std::memcpy(&p.q[j][4 * i], blk.qs + ptrdiff_t{4} * j, 4);
          d16[i] = blk.d;
          if constexpr (std::is_same_v<XBlock, block_q8_1>) s16[i] = blk.s;
        } else {
          for (auto& row : p.q) std::memset(&row[4 * i], 0, 4);
        }
      }
      __m512i sum = _mm512_setzero_si512();
      for (const auto& row : p.q) sum = _mm512_dpbusd_epi32(sum, ones, _mm512_load_si512(row));
      _mm512_store_si512(p.corr, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-bias)));
      _mm512_store_ps(p.d, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<__m256i*>(d16))));
      if constexpr (std::is_same_v<XBlock, block_q8_1>) {
        _mm512_store_ps(p.s, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<__m256i*>(s16))));
      }
    }
  }
}

inline __m512i broadcast4(const uint8_t* p) {
  int32_t v = 0;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Each weight format adds its block's integer dot to acc[r][g] for 16 tokens a lane: the
// weights must be the unsigned operand of vpdpbusd, so each says what it adds to them
// (kBias) and the panel's corr starts every sum at -kBias * sum(x).
struct WeightQ8_0 {
  using Block = block_q8_0;
  using XBlock = block_q8_0;
  static constexpr int32_t kBias = 128;  // w + 128 = w xor 0x80
  template <int RM, int NG>
  static inline void dot(const Block* const* w, int64_t b, const PanelBlock* const* pb,
                         __m512i (&acc)[RM][NG]) {
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      __m512i u[RM];
#pragma GCC unroll 4
      for (int r = 0; r < RM; ++r) {
        u[r] = _mm512_xor_si512(
            broadcast4(reinterpret_cast<const uint8_t*>(w[r][b].qs) + ptrdiff_t{4} * j), flip);
      }
#pragma GCC unroll 4
      for (int g = 0; g < NG; ++g) {
        const __m512i xv = _mm512_load_si512(pb[g]->q[j]);
#pragma GCC unroll 4
        for (int r = 0; r < RM; ++r) acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], u[r], xv);
      }
    }
  }
};

// Nibble weights: Q4_0 (unsigned nibbles are w + 8) and Q4_1 (unsigned as they stand; the
// min is added per block in tile_panel).
template <typename B, typename X, int32_t bias>
struct WeightNibbles {
  using Block = B;
  using XBlock = X;
  static constexpr int32_t kBias = bias;
  template <int RM, int NG>
  static inline void dot(const Block* const* w, int64_t b, const PanelBlock* const* pb,
                         __m512i (&acc)[RM][NG]) {
    const __m512i low = _mm512_set1_epi8(0x0F);
    // Bytes 4j..4j+3 hold weights 4j.. (low nibbles) and 16 + 4j.. (high nibbles).
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      __m512i lo[RM];
      __m512i hi[RM];
#pragma GCC unroll 4
      for (int r = 0; r < RM; ++r) {
        const __m512i packed = broadcast4(w[r][b].qs + ptrdiff_t{4} * j);
        lo[r] = _mm512_and_si512(packed, low);
        hi[r] = _mm512_and_si512(_mm512_srli_epi32(packed, 4), low);
      }
#pragma GCC unroll 4
      for (int g = 0; g < NG; ++g) {
        const __m512i xl = _mm512_load_si512(pb[g]->q[j]);
        const __m512i xh = _mm512_load_si512(pb[g]->q[j + 4]);
#pragma GCC unroll 4
        for (int r = 0; r < RM; ++r) {
          acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], lo[r], xl);
          acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], hi[r], xh);
        }
      }
    }
  }
};

// Five-bit weights, nibble | fifth bit << 4: Q5_0 (that is w + 16) and Q5_1 (unsigned as it
// stands; the min is added per block in tile_panel).
template <typename B, typename X, int32_t bias>
struct WeightFiveBit {
  using Block = B;
  using XBlock = X;
  static constexpr int32_t kBias = bias;
  template <int RM, int NG>
  static inline void dot(const Block* const* w, int64_t b, const PanelBlock* const* pb,
                         __m512i (&acc)[RM][NG]) {
    // Four fifth bits -> the 0x10 of four bytes.
    static constexpr uint32_t kFifth[16] = {0x00000000, 0x00000010, 0x00001000, 0x00001010,
                                            0x00100000, 0x00100010, 0x00101000, 0x00101010,
                                            0x10000000, 0x10000010, 0x10001000, 0x10001010,
                                            0x10100000, 0x10100010, 0x10101000, 0x10101010};
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      __m512i lo[RM];
      __m512i hi[RM];
#pragma GCC unroll 4
      for (int r = 0; r < RM; ++r) {
        uint32_t packed = 0;
        uint32_t high = 0;
        std::memcpy(&packed, w[r][b].qs + ptrdiff_t{4} * j, 4);
        std::memcpy(&high, w[r][b].qh, 4);
        lo[r] = _mm512_set1_epi32(
            static_cast<int>((packed & 0x0F0F0F0Fu) | kFifth[(high >> (4 * j)) & 15]));
        hi[r] = _mm512_set1_epi32(
            static_cast<int>(((packed >> 4) & 0x0F0F0F0Fu) | kFifth[(high >> (16 + 4 * j)) & 15]));
      }
#pragma GCC unroll 4
      for (int g = 0; g < NG; ++g) {
        const __m512i xl = _mm512_load_si512(pb[g]->q[j]);
        const __m512i xh = _mm512_load_si512(pb[g]->q[j + 4]);
#pragma GCC unroll 4
        for (int r = 0; r < RM; ++r) {
          acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], lo[r], xl);
          acc[r][g] = _mm512_dpbusd_epi32(acc[r][g], hi[r], xh);
        }
      }
    }
  }
};

using WeightQ4_0 = WeightNibbles<block_q4_0, block_q8_0, 8>;
using WeightQ4_1 = WeightNibbles<block_q4_1, block_q8_1, 0>;
using WeightQ5_0 = WeightFiveBit<block_q5_0, block_q8_0, 16>;
using WeightQ5_1 = WeightFiveBit<block_q5_1, block_q8_1, 0>;

// RM rows against NG groups of 16 tokens (panel groups g0..), all blocks. The panel comes
// as a plain pointer: reading the thread_local in the loop costs a guard check and a
// possible call per block, and GCC then keeps the sums in memory.
template <typename W, int RM, int NG>
void tile_panel(const typename W::Block* const* w, const PanelBlock* panel, int64_t nb, int64_t g0,
                float* y, int64_t ldy, int64_t tokens) {
  __m512 c[RM][NG];
#pragma GCC unroll 4
  for (auto& row : c) {
#pragma GCC unroll 4
    for (auto& v : row) v = _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const PanelBlock* pb[NG];
    __m512i acc[RM][NG];
#pragma GCC unroll 4
    for (int g = 0; g < NG; ++g) {
      pb[g] = &panel[(g0 + g) * nb + b];
      const __m512i corr = _mm512_load_si512(pb[g]->corr);
#pragma GCC unroll 4
      for (int r = 0; r < RM; ++r) acc[r][g] = corr;
    }
    W::template dot<RM, NG>(w, b, pb, acc);
    __m512 dw[RM];
#pragma GCC unroll 4
    for (int r = 0; r < RM; ++r) {
      dw[r] = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<int16_t>(w[r][b].d)));
    }
#pragma GCC unroll 4
    for (int g = 0; g < NG; ++g) {
      const __m512 dx = _mm512_load_ps(pb[g]->d);
#pragma GCC unroll 4
      for (int r = 0; r < RM; ++r) {
        c[r][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][g]), _mm512_mul_ps(dw[r], dx), c[r][g]);
      }
    }
    if constexpr (std::is_same_v<typename W::XBlock, block_q8_1>) {
      // The min term of each block: m_w * (d_x * sum(x)).
#pragma GCC unroll 4
      for (int r = 0; r < RM; ++r) {
        const __m512 mw = _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<int16_t>(w[r][b].m)));
#pragma GCC unroll 4
        for (int g = 0; g < NG; ++g)
          c[r][g] = _mm512_fmadd_ps(mw, _mm512_load_ps(pb[g]->s), c[r][g]);
      }
    }
  }
  for (int g = 0; g < NG; ++g) {
    const int64_t t0 = (g0 + g) * kLanes;
    const int64_t valid = std::min<int64_t>(kLanes, tokens - t0);
    alignas(64) float out[RM][kLanes];
    for (int r = 0; r < RM; ++r) _mm512_store_ps(out[r], c[r][g]);
    for (int64_t i = 0; i < valid; ++i) {
      for (int r = 0; r < RM; ++r) y[(t0 + i) * ldy + r] = out[r][i];
    }
  }
}

template <typename W, int RM>
void rows_panel(const typename W::Block* const* w, const PanelBlock* panel, int64_t nb, int64_t ng,
                float* y, int64_t ldy, int64_t tokens) {
  int64_t g = 0;
  for (; g + kMaxGroups <= ng; g += kMaxGroups) {
    tile_panel<W, RM, kMaxGroups>(w, panel, nb, g, y, ldy, tokens);
  }
  if (ng - g == 2) tile_panel<W, RM, 2>(w, panel, nb, g, y, ldy, tokens);
  if (ng - g == 1) tile_panel<W, RM, 1>(w, panel, nb, g, y, ldy, tokens);
}

template <typename W>
void gemm_quant(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
                int64_t n, int64_t rows, int64_t tokens) {
  using Block = typename W::Block;
  const int64_t nb = n / kQK8_0;
  const int64_t ng = (tokens + kLanes - 1) / kLanes;
  BuildPanel<typename W::XBlock>(x, xs, n, tokens, W::kBias);
  const PanelBlock* panel = t_panel.data();
  int64_t r = 0;
  for (; r + kQuantRows <= rows; r += kQuantRows) {
    const Block* wr[kQuantRows];
    for (int i = 0; i < kQuantRows; ++i) wr[i] = reinterpret_cast<const Block*>(w + (r + i) * ws);
    rows_panel<W, kQuantRows>(wr, panel, nb, ng, y + r, ldy, tokens);
  }
  for (; r < rows; ++r) {
    const Block* wr[1] = {reinterpret_cast<const Block*>(w + r * ws)};
    rows_panel<W, 1>(wr, panel, nb, ng, y + r, ldy, tokens);
  }
}

}  // namespace

void gemm_f32(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens) {
  simd512::gemm_lanes<FloatStep<float>>(w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_f16(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
              int64_t n, int64_t rows, int64_t tokens) {
  simd512::gemm_lanes<FloatStep<uint16_t>>(w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q8_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  gemm_quant<WeightQ8_0>(w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q4_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  gemm_quant<WeightQ4_0>(w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q5_0(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  gemm_quant<WeightQ5_0>(w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q4_1(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  gemm_quant<WeightQ4_1>(w, ws, x, xs, y, ldy, n, rows, tokens);
}
void gemm_q5_1(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, float* y, int64_t ldy,
               int64_t n, int64_t rows, int64_t tokens) {
  gemm_quant<WeightQ5_1>(w, ws, x, xs, y, ldy, n, rows, tokens);
}

}  // namespace agentry::kernels::avx512
