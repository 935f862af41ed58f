#include "kernels/cpu/quants.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/tests/kernel_test_support.h"

namespace agentry::kernels {
namespace {

using test_support::AsBytes;
using test_support::DotTolerance;
using test_support::GemmCase;
using test_support::RandomVector;

TEST(QuantsTest, Q8_0RoundTripWithinHalfAStep) {
  const int64_t n = 1024;
  std::vector<float> x = RandomVector(n, 1);
  std::vector<block_q8_0> q(n / kQK8_0);
  quantize_row_q8_0_ref(x.data(), q.data(), n);
  std::vector<float> y(n);
  dequantize_row_q8_0(q.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const float d = fp16_to_fp32(q[i / kQK8_0].d);
    // Half a step, plus the scale's own fp16 rounding times the largest code.
    EXPECT_LE(std::fabs(x[i] - y[i]), 0.5f * d + 127 * d * 1e-3f) << i;
  }
}

TEST(QuantsTest, Q4_0RoundTripWithinHalfAStep) {
  const int64_t n = 1024;
  std::vector<float> x = RandomVector(n, 2);
  std::vector<block_q4_0> q(n / kQK4_0);
  quantize_row_q4_0_ref(x.data(), q.data(), n);
  std::vector<float> y(n);
  dequantize_row_q4_0(q.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const float d = fp16_to_fp32(q[i / kQK4_0].d);
    // The largest magnitude maps to code -8; the opposite extreme would need +8 and is
    // clipped to +7, so only values beyond +7.5 steps may be a whole step off.
    const bool clipped = x[i] / d > 7.5f;
    const float steps = clipped ? 1.0f : 0.5f;
    EXPECT_LE(std::fabs(x[i] - y[i]), steps * std::fabs(d) + 8 * std::fabs(d) * 1e-3f) << i;
  }
}

TEST(QuantsTest, Q4_0NibbleLayout) {
  block_q4_0 b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  dequantize_row_q4_0(&b, y, 32);
  EXPECT_FLOAT_EQ(y[0], -4.0f);   // (0 - 8) * 0.5, low nibble of byte 0
  EXPECT_FLOAT_EQ(y[15], 3.5f);   // (15 - 8) * 0.5, low nibble of byte 15
  EXPECT_FLOAT_EQ(y[16], 3.5f);   // high nibble of byte 0
  EXPECT_FLOAT_EQ(y[31], -4.0f);  // high nibble of byte 15
}

TEST(QuantsTest, QuantizedDotIsCloseToTheFloatDot) {
  const int64_t n = 4096;
  std::vector<float> w = RandomVector(n, 3);
  std::vector<float> x = RandomVector(n, 4);
  const double exact = vec_dot_f32_ref(w.data(), x.data(), n);
  std::vector<block_q8_0> wq(n / 32), xq(n / 32);
  std::vector<block_q4_0> w4(n / 32);
  quantize_row_q8_0_ref(w.data(), wq.data(), n);
  quantize_row_q8_0_ref(x.data(), xq.data(), n);
  quantize_row_q4_0_ref(w.data(), w4.data(), n);
  // Bounds are relative to the norm product (the dot itself can be near zero).
  const double scale =
      std::sqrt(vec_dot_f32_ref(w.data(), w.data(), n) * vec_dot_f32_ref(x.data(), x.data(), n));
  EXPECT_LT(std::fabs(vec_dot_q8_0_q8_0_ref(wq.data(), xq.data(), n) - exact) / scale, 0.01);
  EXPECT_LT(std::fabs(vec_dot_q4_0_q8_0_ref(w4.data(), xq.data(), n) - exact) / scale, 0.1);
}

// Every SIMD table entry against the scalar reference, on lengths that exercise the main
// loops and the tails.
class SimdVsScalarTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    simd_ = Avx2Kernels();
    if (simd_ == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX2 kernels";
  }
  const KernelTable* simd_ = nullptr;
};

TEST_P(SimdVsScalarTest, F32) {
  const int64_t n = GetParam();
  std::vector<float> w = RandomVector(n, 5), x = RandomVector(n, 6);
  EXPECT_NEAR(simd_->vec_dot_f32(w.data(), x.data(), n), vec_dot_f32_ref(w.data(), x.data(), n),
              DotTolerance(w, x));
}

TEST_P(SimdVsScalarTest, F16) {
  const int64_t n = GetParam();
  std::vector<float> w = RandomVector(n, 7), x = RandomVector(n, 8);
  std::vector<uint16_t> wh(n), xh(n);
  convert_row_fp32_to_fp16_ref(w.data(), wh.data(), n);
  simd_->convert_row_fp32_to_fp16(x.data(), xh.data(), n);
  std::vector<uint16_t> xh_ref(n);
  convert_row_fp32_to_fp16_ref(x.data(), xh_ref.data(), n);
  EXPECT_EQ(xh, xh_ref);
  EXPECT_NEAR(simd_->vec_dot_f16(wh.data(), xh.data(), n), vec_dot_f16_ref(wh.data(), xh.data(), n),
              DotTolerance(w, x));
}

TEST_P(SimdVsScalarTest, Q8_0) {
  const int64_t n = (GetParam() + 31) / 32 * 32;  // whole blocks
  std::vector<float> w = RandomVector(n, 9), x = RandomVector(n, 10);
  std::vector<block_q8_0> wq(n / 32), xq(n / 32);
  quantize_row_q8_0_ref(w.data(), wq.data(), n);
  simd_->quantize_row_q8_0(x.data(), xq.data(), n);
  EXPECT_NEAR(simd_->vec_dot_q8_0_q8_0(wq.data(), xq.data(), n),
              vec_dot_q8_0_q8_0_ref(wq.data(), xq.data(), n), DotTolerance(w, x));
}

TEST_P(SimdVsScalarTest, Q4_0) {
  const int64_t n = (GetParam() + 31) / 32 * 32;  // whole blocks
  std::vector<float> w = RandomVector(n, 11), x = RandomVector(n, 12);
  std::vector<block_q4_0> wq(n / 32);
  std::vector<block_q8_0> xq(n / 32);
  quantize_row_q4_0_ref(w.data(), wq.data(), n);
  quantize_row_q8_0_ref(x.data(), xq.data(), n);
  EXPECT_NEAR(simd_->vec_dot_q4_0_q8_0(wq.data(), xq.data(), n),
              vec_dot_q4_0_q8_0_ref(wq.data(), xq.data(), n), DotTolerance(w, x));
}

TEST_P(SimdVsScalarTest, QuantizeQ8_0DiffersOnlyOnTies) {
  const int64_t n = (GetParam() + 31) / 32 * 32;
  std::vector<float> x = RandomVector(n, 15);
  x[0] = 0.0f;  // zeros and exact extremes are part of every row's life
  std::vector<block_q8_0> a(n / 32), b(n / 32);
  simd_->quantize_row_q8_0(x.data(), a.data(), n);
  quantize_row_q8_0_ref(x.data(), b.data(), n);
  for (int64_t blk = 0; blk < n / 32; ++blk) {
    EXPECT_EQ(a[blk].d, b[blk].d);
    for (int j = 0; j < 32; ++j) EXPECT_LE(std::abs(a[blk].qs[j] - b[blk].qs[j]), 1) << blk;
  }
  std::vector<float> zeros(32, 0.0f);
  block_q8_0 z{};
  simd_->quantize_row_q8_0(zeros.data(), &z, 32);
  EXPECT_EQ(z.d, 0);
  for (int8_t q : z.qs) EXPECT_EQ(q, 0);
}

TEST_P(SimdVsScalarTest, AxpyF16) {
  const int64_t n = GetParam();
  std::vector<float> x = RandomVector(n, 13), y0 = RandomVector(n, 14);
  std::vector<uint16_t> xh(n);
  convert_row_fp32_to_fp16_ref(x.data(), xh.data(), n);
  std::vector<float> a = y0, b = y0;
  simd_->axpy_f16(a.data(), 0.37f, xh.data(), n);
  axpy_f16_ref(b.data(), 0.37f, xh.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 1e-6f * (1 + std::fabs(b[i]))) << i;
}

INSTANTIATE_TEST_SUITE_P(Lengths, SimdVsScalarTest,
                         ::testing::Values(1, 7, 8, 31, 32, 33, 64, 96, 100, 576, 4096, 4131));

TEST(KernelTableTest, PicksTheBestPathForThisCpu) {
  const KernelTable& k = Kernels();
  if (std::getenv("AGENTRY_KERNELS") != nullptr) {
    GTEST_SKIP() << "AGENTRY_KERNELS overrides the choice in this run";
  }
  if (Avx512Kernels() != nullptr) {
    EXPECT_STREQ(k.isa, "avx512");
  } else if (AvxVnniKernels() != nullptr) {
    EXPECT_STREQ(k.isa, "avx2+vnni");
  } else if (Avx2Kernels() != nullptr) {
    EXPECT_STREQ(k.isa, "avx2");
  } else {
    EXPECT_STREQ(k.isa, "scalar");
  }
}

// The VNNI dots against the scalar reference (exact integer sums, so tight tolerances).
class VnniVsScalarTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    vnni_ = AvxVnniKernels();
    if (vnni_ == nullptr) GTEST_SKIP() << "this CPU has no AVX-VNNI";
  }
  const KernelTable* vnni_ = nullptr;
};

TEST_P(VnniVsScalarTest, Q8_0AndQ4_0) {
  const int64_t n = (GetParam() + 31) / 32 * 32;
  std::vector<float> w = RandomVector(n, 30), x = RandomVector(n, 31);
  std::vector<block_q8_0> w8(n / 32), x8(n / 32);
  std::vector<block_q4_0> w4(n / 32);
  quantize_row_q8_0_ref(w.data(), w8.data(), n);
  quantize_row_q8_0_ref(x.data(), x8.data(), n);
  quantize_row_q4_0_ref(w.data(), w4.data(), n);
  const double tol = DotTolerance(w, x);
  EXPECT_NEAR(vnni_->vec_dot_q8_0_q8_0(w8.data(), x8.data(), n),
              vec_dot_q8_0_q8_0_ref(w8.data(), x8.data(), n), tol);
  EXPECT_NEAR(vnni_->vec_dot_q4_0_q8_0(w4.data(), x8.data(), n),
              vec_dot_q4_0_q8_0_ref(w4.data(), x8.data(), n), tol);
}

INSTANTIATE_TEST_SUITE_P(Lengths, VnniVsScalarTest, ::testing::Values(32, 64, 96, 576, 4096));

}  // namespace
}  // namespace agentry::kernels

namespace agentry::kernels {
namespace {
// The tiled prefill kernels against their references, on shapes with and without edges.
class GemmTest : public ::testing::TestWithParam<GemmCase> {
 protected:
  void SetUp() override {
    simd_ = Avx2Kernels();
    if (simd_ == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX2 kernels";
  }

  // Runs `simd` and `ref` on the same bytes and compares every output.
  void Compare(GemmFn simd, GemmFn ref, const std::vector<uint8_t>& w, size_t ws,
               const std::vector<uint8_t>& x, size_t xs, double tolerance) {
    const GemmCase c = GetParam();
    const int64_t ldy = c.rows + 3;  // a stride wider than the block, as in MatMul
    std::vector<float> a(c.tokens * ldy, -1.0f), b(c.tokens * ldy, -1.0f);
    simd(w.data(), ws, x.data(), xs, a.data(), ldy, c.n, c.rows, c.tokens);
    ref(w.data(), ws, x.data(), xs, b.data(), ldy, c.n, c.rows, c.tokens);
    for (int64_t t = 0; t < c.tokens; ++t) {
      for (int64_t r = 0; r < ldy; ++r) {
        ASSERT_NEAR(a[t * ldy + r], b[t * ldy + r], tolerance) << "row " << r << " token " << t;
      }
    }
  }
  const KernelTable* simd_ = nullptr;
};

TEST_P(GemmTest, F32AndF16) {
  const GemmCase c = GetParam();
  std::vector<float> w = RandomVector(c.rows * c.n, 20), x = RandomVector(c.tokens * c.n, 21);
  const double tol = 1e-4 * std::sqrt(static_cast<double>(c.n));
  Compare(simd_->gemm_f32, &gemm_f32_ref, AsBytes(w.data(), w.size() * 4), c.n * 4,
          AsBytes(x.data(), x.size() * 4), c.n * 4, tol);
  std::vector<uint16_t> wh(w.size()), xh(x.size());
  convert_row_fp32_to_fp16_ref(w.data(), wh.data(), w.size());
  convert_row_fp32_to_fp16_ref(x.data(), xh.data(), x.size());
  Compare(simd_->gemm_f16, &gemm_f16_ref, AsBytes(wh.data(), wh.size() * 2), c.n * 2,
          AsBytes(xh.data(), xh.size() * 2), c.n * 2, tol);
}

TEST_P(GemmTest, Q8_0AndQ4_0) {
  const GemmCase c = GetParam();
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
  Compare(simd_->gemm_q8_0, &gemm_q8_0_ref, AsBytes(w8.data(), w8.size() * sizeof(block_q8_0)),
          row8, xb, row8, tol);
  Compare(simd_->gemm_q4_0, &gemm_q4_0_ref, AsBytes(w4.data(), w4.size() * sizeof(block_q4_0)),
          row4, xb, row8, tol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmTest,
                         ::testing::Values(GemmCase{4, 3, 32}, GemmCase{8, 6, 64},
                                           GemmCase{5, 4, 96}, GemmCase{3, 2, 32},
                                           GemmCase{13, 11, 576}, GemmCase{64, 48, 256}));

}  // namespace
}  // namespace agentry::kernels
