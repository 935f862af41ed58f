// The AVX-512 table against the scalar references: every entry it replaces, on lengths and
// shapes with and without edges. Skips, saying so, on CPUs without AVX-512 VNNI.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/quants.h"
#include "kernels/tests/kernel_test_support.h"

namespace agentry::kernels {
namespace {

using test_support::AsBytes;
using test_support::DotTolerance;
using test_support::GemmCase;
using test_support::RandomVector;

const KernelTable* Avx512OrSkip() {
  const KernelTable* k = Avx512Kernels();
  if (k == nullptr) {
    std::printf("this CPU has no AVX-512 F/BW/VL/DQ + VNNI: AVX-512 kernels not tested\n");
  }
  return k;
}

class Avx512DotTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    k_ = Avx512OrSkip();
    if (k_ == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX-512 kernels";
  }
  const KernelTable* k_ = nullptr;
};

TEST_P(Avx512DotTest, F32) {
  const int64_t n = GetParam();
  std::vector<float> w = RandomVector(n, 1), x = RandomVector(n, 2);
  EXPECT_NEAR(k_->vec_dot_f32(w.data(), x.data(), n), vec_dot_f32_ref(w.data(), x.data(), n),
              DotTolerance(w, x));
}

TEST_P(Avx512DotTest, F16AndConversion) {
  const int64_t n = GetParam();
  std::vector<float> w = RandomVector(n, 3), x = RandomVector(n, 4);
  std::vector<uint16_t> wh(n), xh(n), xh_ref(n);
  convert_row_fp32_to_fp16_ref(w.data(), wh.data(), n);
  k_->convert_row_fp32_to_fp16(x.data(), xh.data(), n);
  convert_row_fp32_to_fp16_ref(x.data(), xh_ref.data(), n);
  EXPECT_EQ(xh, xh_ref);
  EXPECT_NEAR(k_->vec_dot_f16(wh.data(), xh.data(), n), vec_dot_f16_ref(wh.data(), xh.data(), n),
              DotTolerance(w, x));
}

TEST_P(Avx512DotTest, Q8_0AndQ4_0) {
  const int64_t n = (GetParam() + 31) / 32 * 32;  // whole blocks
  std::vector<float> w = RandomVector(n, 5), x = RandomVector(n, 6);
  std::vector<block_q8_0> w8(n / 32), x8(n / 32);
  std::vector<block_q4_0> w4(n / 32);
  quantize_row_q8_0_ref(w.data(), w8.data(), n);
  k_->quantize_row_q8_0(x.data(), x8.data(), n);
  quantize_row_q4_0_ref(w.data(), w4.data(), n);
  const double tol = DotTolerance(w, x);
  EXPECT_NEAR(k_->vec_dot_q8_0_q8_0(w8.data(), x8.data(), n),
              vec_dot_q8_0_q8_0_ref(w8.data(), x8.data(), n), tol);
  EXPECT_NEAR(k_->vec_dot_q4_0_q8_0(w4.data(), x8.data(), n),
              vec_dot_q4_0_q8_0_ref(w4.data(), x8.data(), n), tol);
}

TEST_P(Avx512DotTest, QuantizeQ8_0IsTheAvx2Bytes) {
  const int64_t n = (GetParam() + 31) / 32 * 32;
  std::vector<float> x = RandomVector(n, 7);
  x[0] = 0.0f;
  std::vector<block_q8_0> a(n / 32), b(n / 32), ref(n / 32);
  k_->quantize_row_q8_0(x.data(), a.data(), n);
  Avx2Kernels()->quantize_row_q8_0(x.data(), b.data(), n);
  quantize_row_q8_0_ref(x.data(), ref.data(), n);
  // Decode (any table) and prefill must see the same activations as on AVX2, which differ
  // from the reference's rounding on exact ties only.
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(block_q8_0)), 0);
  for (int64_t blk = 0; blk < n / 32; ++blk) {
    EXPECT_EQ(a[blk].d, ref[blk].d);
    for (int j = 0; j < 32; ++j) EXPECT_LE(std::abs(a[blk].qs[j] - ref[blk].qs[j]), 1) << blk;
  }
  std::vector<float> zeros(32, 0.0f);
  block_q8_0 z{};
  k_->quantize_row_q8_0(zeros.data(), &z, 32);
  EXPECT_EQ(z.d, 0);
  for (int8_t q : z.qs) EXPECT_EQ(q, 0);
}

TEST_P(Avx512DotTest, AxpyF16) {
  const int64_t n = GetParam();
  std::vector<float> x = RandomVector(n, 8), y0 = RandomVector(n, 9);
  std::vector<uint16_t> xh(n);
  convert_row_fp32_to_fp16_ref(x.data(), xh.data(), n);
  // A guard value after the row: the masked tail must not write past n.
  std::vector<float> a = y0, b = y0;
  a.push_back(123.0f);
  k_->axpy_f16(a.data(), -0.61f, xh.data(), n);
  axpy_f16_ref(b.data(), -0.61f, xh.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 1e-6f * (1 + std::fabs(b[i]))) << i;
  EXPECT_EQ(a[n], 123.0f);
}

INSTANTIATE_TEST_SUITE_P(Lengths, Avx512DotTest,
                         ::testing::Values(1, 7, 15, 16, 17, 31, 32, 33, 64, 96, 100, 576, 4096,
                                           4131));

// Integer dots are exact: with unit scales the result is the integer sum itself, over every
// byte value the formats can hold (a file may hold Q8_0 weights of -128; the activation
// quantizer writes -127..127).
TEST(Avx512ExactTest, IntegerDotsAreExactAtTheExtremes) {
  const KernelTable* k = Avx512OrSkip();
  if (k == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX-512 kernels";
  const int64_t nb = 9;  // four pairs and an odd block
  std::vector<block_q8_0> w8(nb), x8(nb);
  std::vector<block_q4_0> w4(nb);
  std::mt19937 rng(10);
  for (int64_t b = 0; b < nb; ++b) {
    w8[b].d = x8[b].d = w4[b].d = fp32_to_fp16(1.0f);
    for (int j = 0; j < 32; ++j) {
      w8[b].qs[j] = static_cast<int8_t>(b < 2 ? (j % 2 == 0 ? -128 : 127)
                                              : static_cast<int>(rng() % 256) - 128);
      x8[b].qs[j] = static_cast<int8_t>(b < 2 ? (j % 3 == 0 ? -127 : 127)
                                              : static_cast<int>(rng() % 255) - 127);
    }
    for (int j = 0; j < 16; ++j) w4[b].qs[j] = static_cast<uint8_t>(b < 2 ? 0x0F : rng() % 256);
  }
  const int64_t n = nb * 32;
  EXPECT_EQ(k->vec_dot_q8_0_q8_0(w8.data(), x8.data(), n),
            vec_dot_q8_0_q8_0_ref(w8.data(), x8.data(), n));
  EXPECT_EQ(k->vec_dot_q4_0_q8_0(w4.data(), x8.data(), n),
            vec_dot_q4_0_q8_0_ref(w4.data(), x8.data(), n));
  float y8[2] = {};
  float y4[2] = {};
  const auto* xb = reinterpret_cast<const uint8_t*>(x8.data());
  k->gemm_q8_0(reinterpret_cast<const uint8_t*>(w8.data()), 0, xb, 0, y8, 1, n, 1, 2);
  k->gemm_q4_0(reinterpret_cast<const uint8_t*>(w4.data()), 0, xb, 0, y4, 1, n, 1, 2);
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(y8[t], vec_dot_q8_0_q8_0_ref(w8.data(), x8.data(), n));
    EXPECT_EQ(y4[t], vec_dot_q4_0_q8_0_ref(w4.data(), x8.data(), n));
  }
}
// The prefill blocks against their references, and against themselves cut into pieces.
class Avx512GemmTest : public ::testing::TestWithParam<GemmCase> {
 protected:
  void SetUp() override {
    k_ = Avx512OrSkip();
    if (k_ == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX-512 kernels";
  }

  // `gemm` against `ref` on the same bytes, every output; then every output once more
  // from a call on just its own row and token, which must give the same bits (the tiles
  // compute an output the same way wherever it lands: any thread split gives one answer).
  void Check(GemmFn gemm, GemmFn ref, const GemmCase& c, const std::vector<uint8_t>& w, size_t ws,
             const std::vector<uint8_t>& x, size_t xs, double tolerance) {
    const int64_t ldy = c.rows + 3;  // a stride wider than the block, as in MatMul
    std::vector<float> a(c.tokens * ldy, -1.0f), b(c.tokens * ldy, -1.0f);
    gemm(w.data(), ws, x.data(), xs, a.data(), ldy, c.n, c.rows, c.tokens);
    ref(w.data(), ws, x.data(), xs, b.data(), ldy, c.n, c.rows, c.tokens);
    for (int64_t t = 0; t < c.tokens; ++t) {
      for (int64_t r = 0; r < ldy; ++r) {
        ASSERT_NEAR(a[t * ldy + r], b[t * ldy + r], tolerance) << "row " << r << " token " << t;
      }
    }
    for (int64_t t = 0; t < c.tokens; ++t) {
      for (int64_t r = 0; r < c.rows; ++r) {
        float one = 0.0f;
        gemm(w.data() + r * ws, ws, x.data() + t * xs, xs, &one, 1, c.n, 1, 1);
        ASSERT_EQ(one, a[t * ldy + r]) << "row " << r << " token " << t;
      }
    }
  }
  const KernelTable* k_ = nullptr;
};

TEST_P(Avx512GemmTest, F32AndF16) {
  const GemmCase c = GetParam();
  std::vector<float> w = RandomVector(c.rows * c.n, 20), x = RandomVector(c.tokens * c.n, 21);
  const double tol = 1e-4 * std::sqrt(static_cast<double>(c.n));
  Check(k_->gemm_f32, &gemm_f32_ref, c, AsBytes(w.data(), w.size() * 4), c.n * 4,
        AsBytes(x.data(), x.size() * 4), c.n * 4, tol);
  std::vector<uint16_t> wh(w.size()), xh(x.size());
  convert_row_fp32_to_fp16_ref(w.data(), wh.data(), w.size());
  convert_row_fp32_to_fp16_ref(x.data(), xh.data(), x.size());
  Check(k_->gemm_f16, &gemm_f16_ref, c, AsBytes(wh.data(), wh.size() * 2), c.n * 2,
        AsBytes(xh.data(), xh.size() * 2), c.n * 2, tol);
}

TEST_P(Avx512GemmTest, Q8_0AndQ4_0) {
  GemmCase c = GetParam();
  c.n = (c.n + 31) / 32 * 32;  // quantized rows are whole blocks
  std::vector<float> w = RandomVector(c.rows * c.n, 22), x = RandomVector(c.tokens * c.n, 23);
  std::vector<block_q8_0> w8(w.size() / 32), x8(x.size() / 32);
  std::vector<block_q4_0> w4(w.size() / 32);
  quantize_row_q8_0_ref(w.data(), w8.data(), w.size());
  quantize_row_q8_0_ref(x.data(), x8.data(), x.size());
  quantize_row_q4_0_ref(w.data(), w4.data(), w.size());
  const size_t row8 = c.n / 32 * sizeof(block_q8_0);
  const size_t row4 = c.n / 32 * sizeof(block_q4_0);
  const double tol = 1e-4 * std::sqrt(static_cast<double>(c.n));
  const auto xb = AsBytes(x8.data(), x8.size() * sizeof(block_q8_0));
  Check(k_->gemm_q8_0, &gemm_q8_0_ref, c, AsBytes(w8.data(), w8.size() * sizeof(block_q8_0)), row8,
        xb, row8, tol);
  Check(k_->gemm_q4_0, &gemm_q4_0_ref, c, AsBytes(w4.data(), w4.size() * sizeof(block_q4_0)), row4,
        xb, row8, tol);
}

// Rows: whole tiles, and 1-3 past them. Tokens: under one 16-token group, whole groups,
// more than the three groups a tile holds, and every float tile width (1-6 past whole ones).
// n: one block, many, and (floats only) lengths that end in a partial 16-value step.
INSTANTIATE_TEST_SUITE_P(Shapes, Avx512GemmTest,
                         ::testing::Values(GemmCase{4, 6, 32}, GemmCase{1, 1, 32},
                                           GemmCase{2, 2, 64}, GemmCase{3, 5, 96},
                                           GemmCase{5, 7, 64}, GemmCase{6, 16, 576},
                                           GemmCase{7, 17, 160}, GemmCase{9, 33, 64},
                                           GemmCase{8, 49, 96}, GemmCase{13, 11, 576},
                                           GemmCase{4, 9, 40}, GemmCase{5, 10, 7},
                                           GemmCase{64, 48, 256}));

}  // namespace
}  // namespace agentry::kernels
