// Q4_1, Q5_0, Q5_1 and Q8_1: the reference quantizers' round trip and bit layout, and every
// SIMD table's dots and Q8_1 quantizer against the references.
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

using test_support::DotTolerance;
using test_support::RandomVector;

// Weights in every format of this file and activations as Q8_0 and Q8_1, all by the
// reference quantizers.
struct LegacyOperands {
  LegacyOperands(const std::vector<float>& w, const std::vector<float>& x)
      : w41(w.size() / 32),
        w50(w.size() / 32),
        w51(w.size() / 32),
        x8(x.size() / 32),
        x81(x.size() / 32) {
    const auto nw = static_cast<int64_t>(w.size());
    const auto nx = static_cast<int64_t>(x.size());
    quantize_row_q4_1_ref(w.data(), w41.data(), nw);
    quantize_row_q5_0_ref(w.data(), w50.data(), nw);
    quantize_row_q5_1_ref(w.data(), w51.data(), nw);
    quantize_row_q8_0_ref(x.data(), x8.data(), nx);
    quantize_row_q8_1_ref(x.data(), x81.data(), nx);
  }
  std::vector<block_q4_1> w41;
  std::vector<block_q5_0> w50;
  std::vector<block_q5_1> w51;
  std::vector<block_q8_0> x8;
  std::vector<block_q8_1> x81;
};

// Dequantize(quantize(x)) is within half a step of x, plus what the fp16 rounding of the
// scale and the min can add over the largest code.
template <typename Block, void (*quantize)(const float*, Block*, int64_t),
          void (*dequantize)(const Block*, float*, int64_t)>
void ExpectRoundTripWithinHalfAStep(int max_code, uint32_t seed) {
  const int64_t n = 1024;
  const std::vector<float> x = RandomVector(n, seed);
  std::vector<Block> q(n / 32);
  quantize(x.data(), q.data(), n);
  std::vector<float> y(n);
  dequantize(q.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const float d = std::fabs(fp16_to_fp32(q[i / 32].d));
    EXPECT_LE(std::fabs(x[i] - y[i]), 0.5f * d + max_code * d * 1e-3f + 4e-3f) << i;
  }
}

TEST(LegacyQuantsTest, RoundTripsWithinHalfAStep) {
  ExpectRoundTripWithinHalfAStep<block_q4_1, &quantize_row_q4_1_ref, &dequantize_row_q4_1>(15, 1);
  ExpectRoundTripWithinHalfAStep<block_q5_1, &quantize_row_q5_1_ref, &dequantize_row_q5_1>(31, 2);
}

TEST(LegacyQuantsTest, Q5_0RoundTripClipsOnlyTheTopCode) {
  const int64_t n = 1024;
  const std::vector<float> x = RandomVector(n, 3);
  std::vector<block_q5_0> q(n / 32);
  quantize_row_q5_0_ref(x.data(), q.data(), n);
  std::vector<float> y(n);
  dequantize_row_q5_0(q.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const float d = fp16_to_fp32(q[i / 32].d);
    // The largest magnitude maps to -16; +16 would need code 32 and is clipped to 31.
    const float steps = x[i] / d > 15.5f ? 1.0f : 0.5f;
    EXPECT_LE(std::fabs(x[i] - y[i]), steps * std::fabs(d) + 16 * std::fabs(d) * 1e-3f) << i;
  }
}

TEST(LegacyQuantsTest, FifthBitLayout) {
  block_q5_0 b{};
  b.d = fp32_to_fp16(1.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (j << 4));
  const uint32_t high = 0x80000001u;  // weights 0 and 31 get their fifth bit
  std::memcpy(b.qh, &high, sizeof(high));
  float y[32];
  dequantize_row_q5_0(&b, y, 32);
  EXPECT_FLOAT_EQ(y[0], 0.0f);     // (0 | 16) - 16
  EXPECT_FLOAT_EQ(y[1], -15.0f);   // 1 - 16
  EXPECT_FLOAT_EQ(y[16], -16.0f);  // high nibble of byte 0, no fifth bit
  EXPECT_FLOAT_EQ(y[31], 15.0f);   // (15 | 16) - 16
  block_q5_1 c{};
  c.d = fp32_to_fp16(0.5f);
  c.m = fp32_to_fp16(-2.0f);
  std::memcpy(c.qs, b.qs, sizeof(c.qs));
  std::memcpy(c.qh, b.qh, sizeof(c.qh));
  dequantize_row_q5_1(&c, y, 32);
  EXPECT_FLOAT_EQ(y[0], 6.0f);    // 16 * 0.5 - 2
  EXPECT_FLOAT_EQ(y[31], 13.5f);  // 31 * 0.5 - 2
}

TEST(LegacyQuantsTest, Q8_1KeepsTheScaledSum) {
  const std::vector<float> x = RandomVector(64, 4);
  block_q8_1 y[2];
  quantize_row_q8_1_ref(x.data(), y, 64);
  for (const block_q8_1& b : y) {
    int sum = 0;
    for (int8_t q : b.qs) sum += q;
    EXPECT_NEAR(fp16_to_fp32(b.s), sum * fp16_to_fp32(b.d),
                std::fabs(sum * fp16_to_fp32(b.d)) * 2e-3);
  }
}

TEST(LegacyQuantsTest, DotsAreCloseToTheFloatDot) {
  const int64_t n = 4096;
  const std::vector<float> w = RandomVector(n, 5);
  const std::vector<float> x = RandomVector(n, 6);
  const double exact = vec_dot_f32_ref(w.data(), x.data(), n);
  const double scale =
      std::sqrt(vec_dot_f32_ref(w.data(), w.data(), n) * vec_dot_f32_ref(x.data(), x.data(), n));
  const LegacyOperands q(w, x);
  EXPECT_LT(std::fabs(vec_dot_q4_1_q8_1_ref(q.w41.data(), q.x81.data(), n) - exact) / scale, 0.1);
  EXPECT_LT(std::fabs(vec_dot_q5_0_q8_0_ref(q.w50.data(), q.x8.data(), n) - exact) / scale, 0.05);
  EXPECT_LT(std::fabs(vec_dot_q5_1_q8_1_ref(q.w51.data(), q.x81.data(), n) - exact) / scale, 0.05);
}

// Every SIMD table (avx2, avx2+vnni, avx512: whichever this CPU runs) against the references.
class LegacySimdTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    for (const KernelTable* t : {Avx2Kernels(), AvxVnniKernels(), Avx512Kernels()}) {
      if (t != nullptr) tables_.push_back(t);
    }
    if (tables_.empty()) GTEST_SKIP() << "this CPU cannot run the AVX2 kernels";
  }
  std::vector<const KernelTable*> tables_;
};

TEST_P(LegacySimdTest, DotsMatchTheReferences) {
  const int64_t n = GetParam();
  const std::vector<float> w = RandomVector(n, 7);
  const std::vector<float> x = RandomVector(n, 8);
  const LegacyOperands q(w, x);
  for (const KernelTable* t : tables_) {
    EXPECT_NEAR(t->vec_dot_q4_1_q8_1(q.w41.data(), q.x81.data(), n),
                vec_dot_q4_1_q8_1_ref(q.w41.data(), q.x81.data(), n), DotTolerance(w, x))
        << t->isa;
    EXPECT_NEAR(t->vec_dot_q5_0_q8_0(q.w50.data(), q.x8.data(), n),
                vec_dot_q5_0_q8_0_ref(q.w50.data(), q.x8.data(), n), DotTolerance(w, x))
        << t->isa;
    EXPECT_NEAR(t->vec_dot_q5_1_q8_1(q.w51.data(), q.x81.data(), n),
                vec_dot_q5_1_q8_1_ref(q.w51.data(), q.x81.data(), n), DotTolerance(w, x))
        << t->isa;
  }
}

TEST_P(LegacySimdTest, ExtremeCodesDoNotSaturate) {
  // Every weight at its largest code against activations of +-127: maddubs's int16 pairs
  // reach 31 * 127 * 2, the most they ever hold.
  const int64_t n = GetParam();
  std::vector<block_q5_1> w(n / 32);
  std::vector<block_q8_1> x(n / 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    w[b].d = fp32_to_fp16(1.0f);
    w[b].m = fp32_to_fp16(0.0f);
    std::memset(w[b].qs, 0xFF, sizeof(w[b].qs));
    std::memset(w[b].qh, 0xFF, sizeof(w[b].qh));
    x[b].d = fp32_to_fp16(1.0f);
    x[b].s = fp32_to_fp16(0.0f);
    for (int j = 0; j < 32; ++j) x[b].qs[j] = static_cast<int8_t>(b % 2 == 0 ? 127 : -127);
  }
  for (const KernelTable* t : tables_) {
    EXPECT_EQ(t->vec_dot_q5_1_q8_1(w.data(), x.data(), n),
              vec_dot_q5_1_q8_1_ref(w.data(), x.data(), n))
        << t->isa;
  }
}

TEST_P(LegacySimdTest, Q8_1DiffersFromTheReferenceOnlyOnTies) {
  const int64_t n = GetParam();
  std::vector<float> x = RandomVector(n, 9);
  x[0] = 0.0f;
  std::vector<block_q8_1> ref(n / 32);
  quantize_row_q8_1_ref(x.data(), ref.data(), n);
  for (const KernelTable* t : tables_) {
    std::vector<block_q8_1> got(n / 32);
    t->quantize_row_q8_1(x.data(), got.data(), n);
    for (int64_t b = 0; b < n / 32; ++b) {
      EXPECT_EQ(got[b].d, ref[b].d) << t->isa;
      int sum = 0;
      for (int j = 0; j < 32; ++j) {
        EXPECT_LE(std::abs(got[b].qs[j] - ref[b].qs[j]), 1) << t->isa;
        sum += got[b].qs[j];
      }
      // s is d times this block's own sum (before d's fp16 rounding, as ggml computes it).
      const float amax = [&] {
        float m = 0;
        for (int j = 0; j < 32; ++j) m = std::fmax(m, std::fabs(x[b * 32 + j]));
        return m;
      }();
      EXPECT_EQ(got[b].s, fp32_to_fp16(amax / 127.0f * static_cast<float>(sum))) << t->isa;
    }
    // The same activations through Q8_0 give the same int8s and scale.
    std::vector<block_q8_0> q80(n / 32);
    t->quantize_row_q8_0(x.data(), q80.data(), n);
    for (int64_t b = 0; b < n / 32; ++b) {
      EXPECT_EQ(q80[b].d, got[b].d) << t->isa;
      EXPECT_EQ(std::memcmp(q80[b].qs, got[b].qs, 32), 0) << t->isa;
    }
  }
}

// The prefill GEMMs against the reference on shapes with and without whole tiles (9 rows, 50
// tokens): Q5_0 through the Q8_0-style tiles, Q4_1 and Q5_1 through the AVX-512 tiles (min
// terms added per block) or, on AVX2, through their dot.
TEST_P(LegacySimdTest, GemmMatchesTheReference) {
  const int64_t n = GetParam();
  const int64_t rows = 9;
  const int64_t tokens = 50;
  const std::vector<float> w = RandomVector(n * rows, 10);
  const std::vector<float> x = RandomVector(n * tokens, 11);
  const LegacyOperands q(w, x);
  struct Case {
    const char* name;
    GemmFn KernelTable::*gemm;
    GemmFn reference;
    const uint8_t* w;
    size_t ws;
    const uint8_t* x;
    size_t xs;
  };
  const auto bytes = [](const auto& v) { return reinterpret_cast<const uint8_t*>(v.data()); };
  const size_t nb = n / 32;
  const Case cases[] = {{"Q5_0", &KernelTable::gemm_q5_0, &gemm_q5_0_ref, bytes(q.w50),
                         nb * sizeof(block_q5_0), bytes(q.x8), nb * sizeof(block_q8_0)},
                        {"Q4_1", &KernelTable::gemm_q4_1, &gemm_q4_1_ref, bytes(q.w41),
                         nb * sizeof(block_q4_1), bytes(q.x81), nb * sizeof(block_q8_1)},
                        {"Q5_1", &KernelTable::gemm_q5_1, &gemm_q5_1_ref, bytes(q.w51),
                         nb * sizeof(block_q5_1), bytes(q.x81), nb * sizeof(block_q8_1)}};
  for (const Case& c : cases) {
    std::vector<float> ref(rows * tokens);
    c.reference(c.w, c.ws, c.x, c.xs, ref.data(), rows, n, rows, tokens);
    for (const KernelTable* t : tables_) {
      std::vector<float> y(rows * tokens);
      (t->*c.gemm)(c.w, c.ws, c.x, c.xs, y.data(), rows, n, rows, tokens);
      for (int64_t tk = 0; tk < tokens; ++tk) {
        for (int64_t r = 0; r < rows; ++r) {
          const std::vector<float> wr(w.begin() + r * n, w.begin() + (r + 1) * n);
          const std::vector<float> xr(x.begin() + tk * n, x.begin() + (tk + 1) * n);
          EXPECT_NEAR(y[tk * rows + r], ref[tk * rows + r], DotTolerance(wr, xr))
              << c.name << " " << t->isa << " row " << r << " token " << tk;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Lengths, LegacySimdTest, ::testing::Values(32, 64, 96, 576, 4096));

}  // namespace
}  // namespace agentry::kernels
