// Attention kernels for a Q8_0 KV cache (attention.h): the Q8_0 axpy against dequantize +
// axpy and its AVX2 path against the reference; the Hadamard rotation against the dense
// matrix llama.cpp builds, and the properties attention relies on.
#include "kernels/cpu/attention.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/tests/kernel_test_support.h"

namespace agentry::kernels {
namespace {

using test_support::RandomVector;

TEST(AxpyQ8_0Test, ReferenceAddsTheDequantizedRow) {
  const int64_t n = 96;
  std::vector<float> x = RandomVector(n, 1);
  std::vector<block_q8_0> q(n / 32);
  quantize_row_q8_0_ref(x.data(), q.data(), n);
  std::vector<float> dq(n);
  dequantize_row_q8_0(q.data(), dq.data(), n);
  std::vector<float> y = RandomVector(n, 2);
  std::vector<float> want = y;
  for (int64_t i = 0; i < n; ++i) want[i] += 0.25f * dq[i];  // 0.25: exact products
  axpy_q8_0_ref(y.data(), 0.25f, q.data(), n);
  EXPECT_EQ(y, want);
}

class AxpyQ8_0SimdTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(AxpyQ8_0SimdTest, MatchesReference) {
  const KernelTable* simd = Avx2Kernels();
  if (simd == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX2 kernels";
  const int64_t n = GetParam();
  std::vector<float> x = RandomVector(n, 3);
  std::vector<block_q8_0> q(n / 32);
  quantize_row_q8_0_ref(x.data(), q.data(), n);
  const std::vector<float> y0 = RandomVector(n, 4);
  std::vector<float> a = y0, b = y0;
  simd->axpy_q8_0(a.data(), 0.37f, q.data(), n);
  axpy_q8_0_ref(b.data(), 0.37f, q.data(), n);
  // The SIMD path fuses the multiply-add (one rounding fewer): an ulp or so apart.
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 1e-6f * (1 + std::fabs(b[i]))) << i;
}

INSTANTIATE_TEST_SUITE_P(Lengths, AxpyQ8_0SimdTest, ::testing::Values(32, 64, 96, 128, 576));

// The dense orthonormal Walsh-Hadamard matrix, built as llama.cpp's ggml_gen_hadamard does:
// 1/sqrt(n) in the corner, then each quadrant doubling (the lower right one negated).
std::vector<double> DenseHadamard(int64_t n) {
  std::vector<double> h(n * n);
  h[0] = 1.0 / std::sqrt(static_cast<double>(n));
  for (int64_t s = 1; s < n; s *= 2) {
    for (int64_t i = 0; i < s; ++i) {
      for (int64_t j = 0; j < s; ++j) {
        const double v = h[i * n + j];
        h[(i + s) * n + j] = v;
        h[i * n + j + s] = v;
        h[(i + s) * n + j + s] = -v;
      }
    }
  }
  return h;
}

class HadamardTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(HadamardTest, EqualsTheDenseMatrixPerBlock) {
  const int64_t block = GetParam();
  const int64_t n = 3 * block;
  const std::vector<float> x = RandomVector(n, 5);
  std::vector<float> y = x;
  hadamard_rotate(y.data(), n, block);
  const std::vector<double> h = DenseHadamard(block);
  for (int64_t b = 0; b < n; b += block) {
    for (int64_t i = 0; i < block; ++i) {
      double want = 0;
      for (int64_t j = 0; j < block; ++j) want += h[i * block + j] * x[b + j];
      // log2(block) rounded adds of values of norm ~1: a few 1e-7.
      ASSERT_NEAR(y[b + i], want, 1e-5) << b << " " << i;
    }
  }
}

TEST_P(HadamardTest, IsItsOwnInverseAndKeepsDotProducts) {
  const int64_t block = GetParam();
  const int64_t n = 2 * block;
  const std::vector<float> k = RandomVector(n, 6), q = RandomVector(n, 7);
  std::vector<float> hk = k, hq = q;
  hadamard_rotate(hk.data(), n, block);
  hadamard_rotate(hq.data(), n, block);
  double dot = 0, hdot = 0;
  for (int64_t i = 0; i < n; ++i) {
    dot += static_cast<double>(k[i]) * q[i];
    hdot += static_cast<double>(hk[i]) * hq[i];
  }
  EXPECT_NEAR(hdot, dot, 1e-4);
  hadamard_rotate(hk.data(), n, block);
  for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(hk[i], k[i], 1e-5) << i;
}

TEST(HadamardRotateTest, SpreadsAnOutlierOverTheBlockAndStaysInIt) {
  std::vector<float> x(128, 0.0f);
  x[70] = 8.0f;  // one outlier in the second block of 64
  hadamard_rotate(x.data(), 128, 64);
  for (int64_t i = 0; i < 64; ++i) EXPECT_EQ(x[i], 0.0f) << i;
  for (int64_t i = 64; i < 128; ++i) EXPECT_FLOAT_EQ(std::fabs(x[i]), 1.0f) << i;  // 8 / sqrt(64)
}

INSTANTIATE_TEST_SUITE_P(Blocks, HadamardTest, ::testing::Values(64, 128, 256));

}  // namespace
}  // namespace agentry::kernels
