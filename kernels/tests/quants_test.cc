#include "kernels/cpu/quants.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"

namespace agentry::kernels {
namespace {

std::vector<float> RandomVector(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

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

double Tolerance(const std::vector<float>& w, const std::vector<float>& x) {
  double mag = 0;
  for (size_t i = 0; i < w.size(); ++i) mag += std::fabs(static_cast<double>(w[i]) * x[i]);
  return 1e-5 * mag + 1e-6;
}

TEST_P(SimdVsScalarTest, F32) {
  const int64_t n = GetParam();
  std::vector<float> w = RandomVector(n, 5), x = RandomVector(n, 6);
  EXPECT_NEAR(simd_->vec_dot_f32(w.data(), x.data(), n), vec_dot_f32_ref(w.data(), x.data(), n),
              Tolerance(w, x));
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
              Tolerance(w, x));
}

TEST_P(SimdVsScalarTest, Q8_0) {
  const int64_t n = (GetParam() + 31) / 32 * 32;  // whole blocks
  std::vector<float> w = RandomVector(n, 9), x = RandomVector(n, 10);
  std::vector<block_q8_0> wq(n / 32), xq(n / 32);
  quantize_row_q8_0_ref(w.data(), wq.data(), n);
  simd_->quantize_row_q8_0(x.data(), xq.data(), n);
  EXPECT_NEAR(simd_->vec_dot_q8_0_q8_0(wq.data(), xq.data(), n),
              vec_dot_q8_0_q8_0_ref(wq.data(), xq.data(), n), Tolerance(w, x));
}

TEST_P(SimdVsScalarTest, Q4_0) {
  const int64_t n = (GetParam() + 31) / 32 * 32;  // whole blocks
  std::vector<float> w = RandomVector(n, 11), x = RandomVector(n, 12);
  std::vector<block_q4_0> wq(n / 32);
  std::vector<block_q8_0> xq(n / 32);
  quantize_row_q4_0_ref(w.data(), wq.data(), n);
  quantize_row_q8_0_ref(x.data(), xq.data(), n);
  EXPECT_NEAR(simd_->vec_dot_q4_0_q8_0(wq.data(), xq.data(), n),
              vec_dot_q4_0_q8_0_ref(wq.data(), xq.data(), n), Tolerance(w, x));
}

INSTANTIATE_TEST_SUITE_P(Lengths, SimdVsScalarTest,
                         ::testing::Values(1, 7, 8, 31, 32, 33, 64, 96, 100, 576, 4096, 4131));

TEST(KernelTableTest, PicksTheBestPathForThisCpu) {
  const KernelTable& k = Kernels();
  if (Avx2Kernels() != nullptr && std::getenv("AGENTRY_KERNELS") == nullptr) {
    EXPECT_STREQ(k.isa, "avx2");
  } else {
    EXPECT_STREQ(k.isa, "scalar");
  }
}

}  // namespace
}  // namespace agentry::kernels
