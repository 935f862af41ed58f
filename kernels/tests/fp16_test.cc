#include "kernels/cpu/fp16.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/kernels.h"

namespace agentry::kernels {
namespace {

TEST(Fp16Test, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    const bool is_nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
    if (is_nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f)))) << h;
    } else {
      EXPECT_EQ(fp32_to_fp16(f), h) << h;
    }
  }
}

TEST(Fp16Test, KnownValues) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);                          // largest half
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);                          // rounds up to infinity
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);             // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);             // halfway, ties to even (0)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);             // above halfway
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie to even, down
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie to even, up
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_FLOAT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);
}

TEST(Fp16Test, ScalarMatchesTheHardwareConversion) {
  const KernelTable* avx2 = Avx2Kernels();
  if (avx2 == nullptr) GTEST_SKIP() << "this CPU has no F16C; the hardware path cannot run";
  std::mt19937 rng(42);
  std::vector<float> x;
  x.reserve(200000 + 500);
  // Random bit patterns cover every exponent, subnormals, infinities and NaNs.
  for (int i = 0; i < 200000; ++i) x.push_back(fp32_from_bits(rng()));
  for (int e = -30; e < 20; ++e) {
    for (float m : {1.0f, 1.5f, 1.00048828125f, 1.0009765625f, 1.99951171875f}) {
      x.push_back(std::ldexp(m, e));
      x.push_back(-std::ldexp(m, e));
    }
  }
  std::vector<uint16_t> hw(x.size());
  avx2->convert_row_fp32_to_fp16(x.data(), hw.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t ours = fp32_to_fp16(x[i]);
    if (std::isnan(x[i])) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(ours)));
      continue;
    }
    ASSERT_EQ(ours, hw[i]) << "x = " << x[i] << " bits " << fp32_to_bits(x[i]);
  }
}

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3F808000)), 0x3F80);  // tie, even stays
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3F818000)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x3F808001)), 0x3F81);  // above half
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(fp32_from_bits(0x7F800001)))));
}

}  // namespace
}  // namespace agentry::kernels
