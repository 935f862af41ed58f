// K-quant references: the dot products agree with dequantize-then-multiply, on random
// blocks (every byte pattern is a valid K-quant block).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/quants.h"
#include "kernels/tests/kernel_test_support.h"

namespace agentry::kernels {
namespace {

template <typename Block>
std::vector<Block> RandomBlocks(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Block> blocks(n);
  auto* bytes = reinterpret_cast<uint8_t*>(blocks.data());
  for (size_t i = 0; i < n * sizeof(Block); ++i) bytes[i] = static_cast<uint8_t>(rng());
  return blocks;
}

std::vector<float> RandomFloats(int64_t n, uint32_t seed) {
  return test_support::RandomVector(n, seed);
}

// dot(w, q8k(x)) against dot(dequantize(w), dequantize(q8k(x))), in double.
template <typename Block>
void ExpectDotMatchesDequantized(std::vector<Block> w,
                                 void (*dequantize)(const Block*, float*, int64_t),
                                 float (*dot)(const Block*, const block_q8_K*, int64_t)) {
  const int64_t n = static_cast<int64_t>(w.size()) * kQK_K;
  const std::vector<float> x = RandomFloats(n, 77);
  std::vector<block_q8_K> xq(w.size());
  quantize_row_q8_K_ref(x.data(), xq.data(), n);
  std::vector<float> wd(n);
  dequantize(w.data(), wd.data(), n);
  double want = 0;
  double magnitude = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t block = i / kQK_K;
    const double xi = static_cast<double>(xq[block].d) * xq[block].qs[i % kQK_K];
    want += wd[i] * xi;
    magnitude += std::fabs(wd[i] * xi);
  }
  EXPECT_NEAR(dot(w.data(), xq.data(), n), want, 1e-5 * magnitude + 1e-3);
}

// Scales small enough that products stay finite: random fp16 bytes can be huge or NaN.
template <typename Block>
void TameScales(std::vector<Block>* blocks) {
  std::mt19937 rng(5);
  for (Block& b : *blocks) {
    b.d = fp32_to_fp16(0.001f + 0.01f * static_cast<float>(rng() % 100) / 100.0f);
    if constexpr (!std::is_same_v<Block, block_q6_K>) {
      b.dmin = fp32_to_fp16(0.001f + 0.01f * static_cast<float>(rng() % 100) / 100.0f);
    }
  }
}

TEST(QuantsKTest, Q4_KDotMatchesDequantized) {
  auto w = RandomBlocks<block_q4_K>(8, 1);
  TameScales(&w);
  ExpectDotMatchesDequantized<block_q4_K>(w, &dequantize_row_q4_K, &vec_dot_q4_K_q8_K_ref);
}

TEST(QuantsKTest, Q5_KDotMatchesDequantized) {
  auto w = RandomBlocks<block_q5_K>(8, 2);
  TameScales(&w);
  ExpectDotMatchesDequantized<block_q5_K>(w, &dequantize_row_q5_K, &vec_dot_q5_K_q8_K_ref);
}

TEST(QuantsKTest, Q6_KDotMatchesDequantized) {
  auto w = RandomBlocks<block_q6_K>(8, 3);
  TameScales(&w);
  ExpectDotMatchesDequantized<block_q6_K>(w, &dequantize_row_q6_K, &vec_dot_q6_K_q8_K_ref);
}

TEST(QuantsKTest, Q8_KKeepsValuesAndBlockSums) {
  const std::vector<float> x = RandomFloats(512, 9);
  std::vector<block_q8_K> q(2);
  quantize_row_q8_K_ref(x.data(), q.data(), 512);
  for (int b = 0; b < 2; ++b) {
    for (int i = 0; i < kQK_K; ++i) {
      EXPECT_NEAR(q[b].d * q[b].qs[i], x[b * kQK_K + i], std::fabs(q[b].d) * 0.5f + 1e-6f);
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += q[b].qs[g * 16 + l];
      EXPECT_EQ(q[b].bsums[g], sum);
    }
  }
  std::vector<float> zeros(256, 0.0f);
  block_q8_K z;
  quantize_row_q8_K_ref(zeros.data(), &z, 256);
  EXPECT_EQ(z.d, 0.0f);
}

TEST(QuantsKTest, Q6_KLayoutOfOneKnownBlock) {
  block_q6_K b{};
  b.d = fp32_to_fp16(1.0f);
  for (int8_t& s : b.scales) s = 1;
  // ql = 0, qh = 0: every weight is 0 - 32.
  float y[256];
  dequantize_row_q6_K(&b, y, 256);
  for (float v : y) EXPECT_EQ(v, -32.0f);
  b.ql[0] = 0x0F;  // weight 0 low bits = 15; weight 64 (high nibble) stays 0
  b.qh[0] = 0x03;  // weight 0 high bits = 3
  b.scales[0] = 2;
  dequantize_row_q6_K(&b, y, 256);
  EXPECT_EQ(y[0], 2.0f * (63 - 32));
  EXPECT_EQ(y[64], -32.0f);
}

// Every SIMD table's K-quant kernels against the scalar references.

// The SIMD table named `isa`, or nullptr where this CPU cannot run it.
const KernelTable* SimdTable(const std::string& isa) {
  if (isa == "avx2") return Avx2Kernels();
  if (isa == "avx2+vnni") return AvxVnniKernels();
  if (isa == "avx512") return Avx512Kernels();
  return nullptr;
}

std::string TableName(const std::string& isa) { return isa == "avx2+vnni" ? "avx2vnni" : isa; }

class SimdKTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    simd_ = SimdTable(GetParam());
    if (simd_ == nullptr) GTEST_SKIP() << "this CPU cannot run the " << GetParam() << " kernels";
  }
  const KernelTable* simd_ = nullptr;
};

// Activation rows that exercise the quantizer's corners: magnitudes from 1e-30 to 1e30, both
// signs at the largest magnitude (the first one sets d's sign), exact rounding ties, zeros.
std::vector<std::vector<float>> Q8KCornerRows() {
  std::vector<std::vector<float>> rows;
  uint32_t seed = 1;
  for (float scale : {1e-30f, 1e-6f, 1.0f, 3e4f, 1e30f}) {
    std::vector<float> x = RandomFloats(int64_t{3} * kQK_K, seed++);
    for (float& v : x) v *= scale;
    rows.push_back(x);
  }
  std::vector<float> ties(size_t{2} * kQK_K);
  for (int i = 0; i < kQK_K; ++i) ties[i] = static_cast<float>((i % 254) - 127) + 0.5f;
  ties[0] = -127.0f;  // iscale = 1 exactly: every other value is a tie between two codes
  for (int i = kQK_K; i < 2 * kQK_K; ++i) ties[i] = static_cast<float>((i * 37) % 254 - 127) / 2;
  ties[kQK_K + 5] = 64.0f;  // +64 first, then -64: the first sets the sign
  ties[kQK_K + 9] = -64.0f;
  rows.push_back(ties);
  std::vector<float> mixed = RandomFloats(int64_t{4} * kQK_K, 3);
  std::fill(mixed.begin(), mixed.begin() + ptrdiff_t{2} * kQK_K, 0.0f);  // a zero block, then
  mixed[kQK_K + 17] = -1e-3f;                               // one of a single tiny value
  mixed[2 * kQK_K + 200] = -mixed[2 * kQK_K + 3] * 100.0f;  // largest late in a block
  rows.push_back(mixed);
  for (int blocks : {1, 2, 5, 11, 16})
    rows.push_back(RandomFloats(int64_t{blocks} * kQK_K, 100 + blocks));
  return rows;
}

TEST_P(SimdKTest, QuantizeQ8_KIsBitIdenticalToTheReference) {
  for (const std::vector<float>& x : Q8KCornerRows()) {
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<block_q8_K> a(n / kQK_K), b(n / kQK_K);
    std::memset(a.data(), 0xAB, a.size() * sizeof(block_q8_K));  // no byte left unwritten
    simd_->quantize_row_q8_K(x.data(), a.data(), n);
    quantize_row_q8_K_ref(x.data(), b.data(), n);
    for (size_t blk = 0; blk < a.size(); ++blk) {
      SCOPED_TRACE(::testing::Message()
                   << "block " << blk << " of " << a.size() << ", first value " << x[blk * kQK_K]);
      EXPECT_EQ(std::bit_cast<uint32_t>(a[blk].d), std::bit_cast<uint32_t>(b[blk].d));
      EXPECT_TRUE(std::equal(std::begin(a[blk].qs), std::end(a[blk].qs), std::begin(b[blk].qs)));
      EXPECT_TRUE(
          std::equal(std::begin(a[blk].bsums), std::end(a[blk].bsums), std::begin(b[blk].bsums)));
    }
  }
}

TEST_P(SimdKTest, QuantizeQ8_KKeepsTheSignOfTheFirstLargestValue) {
  std::vector<float> x(kQK_K, 0.25f);
  x[10] = -2.0f;
  x[20] = 2.0f;
  block_q8_K q;
  simd_->quantize_row_q8_K(x.data(), &q, kQK_K);
  EXPECT_EQ(q.qs[10], -127);  // -2 is the first of magnitude 2: it maps to -127
  EXPECT_EQ(q.qs[20], 127);
  EXPECT_FLOAT_EQ(q.d, 2.0f / 127.0f);
  EXPECT_EQ(q.bsums[0], -127 + 15 * 16);  // 0.25 * 127 / 2 = 15.875 -> 16
}

// Weight blocks with random bytes and sane scales, plus blocks whose scales sit at the fp16
// extremes (largest normal, smallest subnormal).
template <typename Block>
std::vector<Block> WeightBlocks(int blocks, uint32_t seed, bool extreme) {
  std::vector<Block> w = RandomBlocks<Block>(blocks, seed);
  TameScales(&w);
  if (extreme) {
    for (size_t i = 0; i < w.size(); ++i) {
      const uint16_t d = i % 2 == 0 ? fp32_to_fp16(60000.0f) : uint16_t{1};  // 1: 2^-24
      w[i].d = d;
      if constexpr (!std::is_same_v<Block, block_q6_K>) {
        if (i % 3 == 0) w[i].dmin = d;
      }
    }
  }
  return w;
}

// sum |w_i * x_i| over the dequantized rows: the scale of a dot's rounding error.
template <typename Block>
double Magnitude(const std::vector<Block>& w, void (*dequantize)(const Block*, float*, int64_t),
                 const std::vector<block_q8_K>& x) {
  const int64_t n = static_cast<int64_t>(w.size()) * kQK_K;
  std::vector<float> wd(n);
  dequantize(w.data(), wd.data(), n);
  double m = 0;
  for (int64_t i = 0; i < n; ++i) {
    const block_q8_K& xb = x[i / kQK_K];
    m += std::fabs(static_cast<double>(wd[i]) * xb.d * xb.qs[i % kQK_K]);
  }
  return m;
}

template <typename Block>
void ExpectDotMatchesReference(float (*simd)(const Block*, const block_q8_K*, int64_t),
                               float (*ref)(const Block*, const block_q8_K*, int64_t),
                               void (*dequantize)(const Block*, float*, int64_t)) {
  for (bool extreme : {false, true}) {
    for (int blocks : {1, 2, 3, 5, 8, 11, 16}) {
      const std::vector<Block> w = WeightBlocks<Block>(blocks, 40 + blocks, extreme);
      const int64_t n = static_cast<int64_t>(blocks) * kQK_K;
      std::vector<float> x = RandomFloats(n, 50 + blocks);
      if (extreme) {
        for (int64_t i = 0; i < n; ++i) x[i] *= (i / kQK_K) % 2 == 0 ? 1e20f : 1e-20f;
      }
      std::vector<block_q8_K> xq(blocks);
      quantize_row_q8_K_ref(x.data(), xq.data(), n);
      const double tol = 1e-5 * Magnitude(w, dequantize, xq) + 1e-30;
      EXPECT_NEAR(simd(w.data(), xq.data(), n), ref(w.data(), xq.data(), n), tol)
          << blocks << " blocks, extreme " << extreme;
    }
  }
}

TEST_P(SimdKTest, Q4_KDotMatchesTheReference) {
  ExpectDotMatchesReference<block_q4_K>(simd_->vec_dot_q4_K_q8_K, &vec_dot_q4_K_q8_K_ref,
                                        &dequantize_row_q4_K);
}

TEST_P(SimdKTest, Q5_KDotMatchesTheReference) {
  ExpectDotMatchesReference<block_q5_K>(simd_->vec_dot_q5_K_q8_K, &vec_dot_q5_K_q8_K_ref,
                                        &dequantize_row_q5_K);
}

TEST_P(SimdKTest, Q6_KDotMatchesTheReference) {
  ExpectDotMatchesReference<block_q6_K>(simd_->vec_dot_q6_K_q8_K, &vec_dot_q6_K_q8_K_ref,
                                        &dequantize_row_q6_K);
}

// Weights at the top of every range: all-ones nibbles and high bits, largest 6-bit scales
// and mins, Q6_K scales of -128, against activations of -127 everywhere. The integer sums
// must not overflow on their way (int16 pair sums, int32 lanes).
TEST_P(SimdKTest, DotsHoldTheLargestIntegerSums) {
  block_q8_K x;
  std::vector<float> xf(kQK_K, -1.0f);
  quantize_row_q8_K_ref(xf.data(), &x, kQK_K);
  ASSERT_EQ(x.qs[0], -127);
  block_q4_K w4;
  std::memset(&w4, 0xFF, sizeof(w4));
  w4.d = fp32_to_fp16(1.0f);
  w4.dmin = fp32_to_fp16(0.5f);
  block_q5_K w5;
  std::memset(&w5, 0xFF, sizeof(w5));
  w5.d = w4.d;
  w5.dmin = w4.dmin;
  block_q6_K w6;
  std::memset(&w6, 0xFF, sizeof(w6));  // 6-bit 63 - 32 = 31
  for (int8_t& s : w6.scales) s = -128;
  w6.d = fp32_to_fp16(1.0f);
  // An overflow anywhere would be off by far more than float rounding.
  const auto expect_close = [](float got, float want) {
    EXPECT_NEAR(got, want, 1e-5f * std::fabs(want));
  };
  expect_close(simd_->vec_dot_q4_K_q8_K(&w4, &x, kQK_K), vec_dot_q4_K_q8_K_ref(&w4, &x, kQK_K));
  expect_close(simd_->vec_dot_q5_K_q8_K(&w5, &x, kQK_K), vec_dot_q5_K_q8_K_ref(&w5, &x, kQK_K));
  expect_close(simd_->vec_dot_q6_K_q8_K(&w6, &x, kQK_K), vec_dot_q6_K_q8_K_ref(&w6, &x, kQK_K));
  std::memset(w6.ql, 0, sizeof(w6.ql));  // 0 - 32: the negative end
  std::memset(w6.qh, 0, sizeof(w6.qh));
  expect_close(simd_->vec_dot_q6_K_q8_K(&w6, &x, kQK_K), vec_dot_q6_K_q8_K_ref(&w6, &x, kQK_K));
}

INSTANTIATE_TEST_SUITE_P(Tables, SimdKTest, ::testing::Values("avx2", "avx2+vnni", "avx512"),
                         [](const auto& info) { return TableName(info.param); });

// The tiled prefill: every output equals the table's dot of its row and token bit for bit
// (so no split of rows or tokens can change it), and the scalar reference within rounding.
struct KGemmCase {
  int64_t rows;
  int64_t tokens;
  int64_t blocks;
};

void PrintTo(const KGemmCase& c, std::ostream* os) {
  *os << c.rows << "x" << c.tokens << "x" << c.blocks * kQK_K;
}

class SimdKGemmTest : public ::testing::TestWithParam<std::tuple<KGemmCase, std::string>> {
 protected:
  void SetUp() override {
    simd_ = SimdTable(std::get<1>(GetParam()));
    if (simd_ == nullptr) GTEST_SKIP() << "this CPU cannot run these kernels";
  }

  template <typename Block>
  void Check(GemmFn gemm, GemmFn ref, float (*dot)(const Block*, const block_q8_K*, int64_t),
             void (*dequantize)(const Block*, float*, int64_t), uint32_t seed) {
    const KGemmCase c = std::get<0>(GetParam());
    const int64_t n = c.blocks * kQK_K;
    const std::vector<Block> w = WeightBlocks<Block>(c.rows * c.blocks, seed, false);
    const std::vector<float> xf = RandomFloats(c.tokens * n, seed + 1);
    std::vector<block_q8_K> x(c.tokens * c.blocks);
    simd_->quantize_row_q8_K(xf.data(), x.data(), c.tokens * n);
    const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
    const auto* xb = reinterpret_cast<const uint8_t*>(x.data());
    const size_t ws = c.blocks * sizeof(Block);
    const size_t xs = c.blocks * sizeof(block_q8_K);
    const int64_t ldy = c.rows + 3;  // a stride wider than the block, as in MatMul
    std::vector<float> got(c.tokens * ldy, -1.0f), want(c.tokens * ldy, -1.0f);
    gemm(wb, ws, xb, xs, got.data(), ldy, n, c.rows, c.tokens);
    ref(wb, ws, xb, xs, want.data(), ldy, n, c.rows, c.tokens);
    // The same block in pieces: rows split at 1 and 5, tokens at 2.
    std::vector<float> pieces(c.tokens * ldy, -1.0f);
    const int64_t r1 = std::min<int64_t>(1, c.rows);
    const int64_t r2 = std::min<int64_t>(5, c.rows);
    const int64_t t1 = std::min<int64_t>(2, c.tokens);
    for (int64_t t0 : {int64_t{0}, t1}) {
      const int64_t nt = t0 == 0 ? t1 : c.tokens - t1;
      const std::pair<int64_t, int64_t> row_splits[] = {{0, r1}, {r1, r2}, {r2, c.rows}};
      for (const auto& [a, b] : row_splits) {
        gemm(wb + a * ws, ws, xb + t0 * xs, xs, pieces.data() + t0 * ldy + a, ldy, n, b - a, nt);
      }
    }
    for (int64_t t = 0; t < c.tokens; ++t) {
      for (int64_t r = 0; r < ldy; ++r) {
        const float g = got[t * ldy + r];
        if (r >= c.rows) {
          ASSERT_EQ(g, -1.0f) << "wrote past the block at row " << r;
          continue;
        }
        const float d = dot(w.data() + r * c.blocks, x.data() + t * c.blocks, n);
        ASSERT_EQ(g, d) << "row " << r << " token " << t;
        ASSERT_EQ(pieces[t * ldy + r], d) << "row " << r << " token " << t;
        const std::vector<Block> w_row(w.begin() + r * c.blocks, w.begin() + (r + 1) * c.blocks);
        const std::vector<block_q8_K> x_row(x.begin() + t * c.blocks,
                                            x.begin() + (t + 1) * c.blocks);
        ASSERT_NEAR(g, want[t * ldy + r], 1e-5 * Magnitude(w_row, dequantize, x_row))
            << "row " << r << " token " << t;
      }
    }
  }
  const KernelTable* simd_ = nullptr;
};

TEST_P(SimdKGemmTest, Q4_K) {
  Check<block_q4_K>(simd_->gemm_q4_K, &gemm_q4_K_ref, simd_->vec_dot_q4_K_q8_K,
                    &dequantize_row_q4_K, 60);
}

TEST_P(SimdKGemmTest, Q5_K) {
  Check<block_q5_K>(simd_->gemm_q5_K, &gemm_q5_K_ref, simd_->vec_dot_q5_K_q8_K,
                    &dequantize_row_q5_K, 70);
}

TEST_P(SimdKGemmTest, Q6_K) {
  Check<block_q6_K>(simd_->gemm_q6_K, &gemm_q6_K_ref, simd_->vec_dot_q6_K_q8_K,
                    &dequantize_row_q6_K, 80);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, SimdKGemmTest,
    ::testing::Combine(::testing::Values(KGemmCase{4, 3, 1}, KGemmCase{8, 6, 2}, KGemmCase{5, 4, 3},
                                         KGemmCase{3, 2, 1}, KGemmCase{13, 11, 3},
                                         KGemmCase{16, 9, 8}, KGemmCase{1, 1, 2},
                                         KGemmCase{6, 19, 2}),
                       ::testing::Values("avx2", "avx2+vnni", "avx512")),
    [](const auto& info) {
      const KGemmCase c = std::get<0>(info.param);
      return TableName(std::get<1>(info.param)) + "_" + std::to_string(c.rows) + "x" +
             std::to_string(c.tokens) + "x" + std::to_string(c.blocks * kQK_K);
    });

// AVX-VNNI's vpdpwssd gives the same integers as AVX2's madd + add, and the 512-bit kernels
// the same integers two vectors at a time: the same bits. 19 tokens: whole tiles of 4 and 8
// tokens and a remainder.
template <typename Block>
void ExpectSameBits(const KernelTable& a, const KernelTable& b,
                    float (*KernelTable::*dot)(const Block*, const block_q8_K*, int64_t),
                    GemmFn KernelTable::*gemm, uint32_t seed) {
  const int64_t rows = 9;
  const int64_t tokens = 19;
  const int64_t blocks = 3;
  const int64_t n = blocks * kQK_K;
  const std::vector<Block> w = WeightBlocks<Block>(rows * blocks, seed, false);
  const std::vector<float> xf = RandomFloats(tokens * n, seed + 1);
  std::vector<block_q8_K> x(tokens * blocks);
  quantize_row_q8_K_ref(xf.data(), x.data(), tokens * n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < tokens; ++t) {
      EXPECT_EQ((a.*dot)(&w[r * blocks], &x[t * blocks], n),
                (b.*dot)(&w[r * blocks], &x[t * blocks], n))
          << "row " << r << " token " << t;
    }
  }
  std::vector<float> ya(rows * tokens), yb(rows * tokens);
  const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
  const auto* xb = reinterpret_cast<const uint8_t*>(x.data());
  (a.*gemm)(wb, blocks * sizeof(Block), xb, blocks * sizeof(block_q8_K), ya.data(), rows, n, rows,
            tokens);
  (b.*gemm)(wb, blocks * sizeof(Block), xb, blocks * sizeof(block_q8_K), yb.data(), rows, n, rows,
            tokens);
  EXPECT_EQ(ya, yb);
}

TEST(Avx512KTest, SameBitsAsAvx2) {
  const KernelTable* avx512 = Avx512Kernels();
  if (avx512 == nullptr) GTEST_SKIP() << "this CPU has no AVX-512 F/BW/VL with VNNI";
  const KernelTable& avx2 = *Avx2Kernels();
  ExpectSameBits<block_q4_K>(*avx512, avx2, &KernelTable::vec_dot_q4_K_q8_K,
                             &KernelTable::gemm_q4_K, 93);
  ExpectSameBits<block_q5_K>(*avx512, avx2, &KernelTable::vec_dot_q5_K_q8_K,
                             &KernelTable::gemm_q5_K, 94);
  ExpectSameBits<block_q6_K>(*avx512, avx2, &KernelTable::vec_dot_q6_K_q8_K,
                             &KernelTable::gemm_q6_K, 95);
}

TEST(AvxVnniKTest, SameBitsAsAvx2) {
  const KernelTable* vnni = AvxVnniKernels();
  if (vnni == nullptr) GTEST_SKIP() << "this CPU has no AVX-VNNI";
  const KernelTable& avx2 = *Avx2Kernels();
  ExpectSameBits<block_q4_K>(*vnni, avx2, &KernelTable::vec_dot_q4_K_q8_K, &KernelTable::gemm_q4_K,
                             90);
  ExpectSameBits<block_q5_K>(*vnni, avx2, &KernelTable::vec_dot_q5_K_q8_K, &KernelTable::gemm_q5_K,
                             91);
  ExpectSameBits<block_q6_K>(*vnni, avx2, &KernelTable::vec_dot_q6_K_q8_K, &KernelTable::gemm_q6_K,
                             92);
}

}  // namespace
}  // namespace agentry::kernels
