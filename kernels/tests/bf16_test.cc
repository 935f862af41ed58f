// BF16 kernels: the conversion against an independent nearest-value rule, and every SIMD
// path against its scalar reference (bf16.h).
#include "kernels/cpu/bf16.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/cpu/cpu_features.h"
#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/kernels_internal.h"
#include "kernels/tests/kernel_test_support.h"

namespace agentry::kernels {
namespace {

using test_support::GemmCase;
using test_support::RandomVector;

// Floats that stress the rounding: exact ties either way, values just off a tie, the
// largest finite floats (which round to infinity), subnormals, infinities, zeros and NaNs
// with payloads below the 16 kept bits.
std::vector<float> EdgeFloats() {
  std::vector<uint32_t> bits = {0x3F808000, 0x3F818000, 0x3F808001, 0x3F817FFF, 0x7F7FFFFF,
                                0x7F7F7FFF, 0x7F7F8000, 0x00000001, 0x00008000, 0x00018000,
                                0x807FFFFF, 0x7F800000, 0xFF800000, 0x00000000, 0x80000000,
                                0x7F800001, 0xFFC00000, 0x7FBFFFFF, 0xFF800100, 0x3F800000};
  std::vector<float> v(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) v[i] = fp32_from_bits(bits[i]);
  return v;
}

// The rule stated without the bit trick: of the two BF16 values around x (x truncated, and
// one step further from zero), the nearer one; on a tie the one with an even last bit.
// The candidates widen exactly, so the distances are compared in double; a step past the
// largest finite value lands on infinity, which stands for 2^128 there (IEEE rounding).
double Bf16Value(uint16_t h) {
  if ((h & 0x7FFF) == 0x7F80) return (h & 0x8000) ? -std::ldexp(1.0, 128) : std::ldexp(1.0, 128);
  return bf16_to_fp32(h);
}

uint16_t NearestBf16(float x) {
  const uint32_t bits = fp32_to_bits(x);
  const uint16_t lo = static_cast<uint16_t>(bits >> 16);
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const double dlo = std::fabs(static_cast<double>(x) - Bf16Value(lo));
  const double dhi = std::fabs(static_cast<double>(x) - Bf16Value(hi));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) == 0 ? lo : hi;
}

TEST(Bf16ConvertTest, ReferenceRoundsToTheNearestValueTiesToEven) {
  std::vector<float> x = RandomVector(100000, 1);
  for (float& v : x) v *= 1000.0f;
  for (float v : EdgeFloats()) {
    if (!std::isnan(v) && !std::isinf(v)) x.push_back(v);
  }
  std::vector<uint16_t> y(x.size());
  convert_row_fp32_to_bf16_ref(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(y[i], NearestBf16(x[i])) << std::hexfloat << x[i];
  }
}

TEST(Bf16ConvertTest, SpecialValuesAsLlamaCpp) {
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(fp32_to_bf16(-0.0f), 0x8000);
  // More than half a step above the largest finite BF16: infinity, as IEEE rounding says.
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x7F7FFFFF)), 0x7F80);
  // A signalling NaN whose payload sits below the kept bits must stay a NaN, made quiet.
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x7F800001)), 0x7FC0);
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0xFF800100)), 0xFFC0);
  // Subnormals are rounded, not flushed to zero.
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x00018000)), 0x0002);
  EXPECT_EQ(fp32_to_bf16(fp32_from_bits(0x00008000)), 0x0000);
}

TEST(Bf16DotTest, ReferenceIsTheExactSumOfExactProducts) {
  // Small integers are exact in BF16 and their dot product is exact in float.
  std::vector<uint16_t> w, x;
  double want = 0;
  for (int i = 0; i < 100; ++i) {
    const float a = static_cast<float>(i % 17 - 8);
    const float b = static_cast<float>(i % 5 - 2) * 0.5f;
    w.push_back(fp32_to_bf16(a));
    x.push_back(fp32_to_bf16(b));
    want += static_cast<double>(a) * b;
  }
  EXPECT_EQ(vec_dot_bf16_ref(w.data(), x.data(), 100), static_cast<float>(want));
}

class Bf16SimdTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    simd_ = Avx2Kernels();
    if (simd_ == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX2 kernels";
  }
  const KernelTable* simd_ = nullptr;
};

TEST_P(Bf16SimdTest, ConvertIsBitIdentical) {
  const int64_t n = GetParam();
  std::vector<float> x = RandomVector(n, 2);
  // Scatter the edge values over the row so they meet the vector loop and the tail.
  const std::vector<float> edges = EdgeFloats();
  for (size_t i = 0; i < edges.size() && i < x.size(); ++i) x[(i * 7) % x.size()] = edges[i];
  std::vector<uint16_t> a(n), b(n);
  simd_->convert_row_fp32_to_bf16(x.data(), a.data(), n);
  convert_row_fp32_to_bf16_ref(x.data(), b.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(a[i], b[i]) << i << " " << std::hexfloat << x[i];
}

TEST_P(Bf16SimdTest, DotMatchesReference) {
  const int64_t n = GetParam();
  std::vector<float> wf = RandomVector(n, 3), xf = RandomVector(n, 4);
  std::vector<uint16_t> w(n), x(n);
  convert_row_fp32_to_bf16_ref(wf.data(), w.data(), n);
  convert_row_fp32_to_bf16_ref(xf.data(), x.data(), n);
  double mag = 0;
  for (int64_t i = 0; i < n; ++i) {
    mag += std::fabs(static_cast<double>(bf16_to_fp32(w[i])) * bf16_to_fp32(x[i]));
  }
  // Products are exact; float additions in another order cost at most ~n ulps of the sum
  // of magnitudes, far below this bound for these lengths.
  EXPECT_NEAR(simd_->vec_dot_bf16(w.data(), x.data(), n), vec_dot_bf16_ref(w.data(), x.data(), n),
              1e-5 * mag + 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Lengths, Bf16SimdTest,
                         ::testing::Values(1, 7, 8, 9, 31, 32, 33, 64, 96, 100, 576, 4096, 4131));

class Bf16GemmTest : public ::testing::TestWithParam<GemmCase> {
 protected:
  void SetUp() override {
    simd_ = Avx2Kernels();
    if (simd_ == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX2 kernels";
  }
  const KernelTable* simd_ = nullptr;
};

TEST_P(Bf16GemmTest, MatchesReferenceIncludingEdges) {
  const GemmCase c = GetParam();
  std::vector<float> wf = RandomVector(c.rows * c.n, 5), xf = RandomVector(c.tokens * c.n, 6);
  std::vector<uint16_t> w(wf.size()), x(xf.size());
  convert_row_fp32_to_bf16_ref(wf.data(), w.data(), static_cast<int64_t>(w.size()));
  convert_row_fp32_to_bf16_ref(xf.data(), x.data(), static_cast<int64_t>(x.size()));
  const int64_t ldy = c.rows + 3;  // a stride wider than the block, as in MatMul
  // -1 marks outputs that must stay unwritten (the columns past `rows`).
  std::vector<float> a(c.tokens * ldy, -1.0f), b(c.tokens * ldy, -1.0f);
  const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
  const auto* xb = reinterpret_cast<const uint8_t*>(x.data());
  const size_t stride = static_cast<size_t>(c.n) * 2;
  simd_->gemm_bf16(wb, stride, xb, stride, a.data(), ldy, c.n, c.rows, c.tokens);
  gemm_bf16_ref(wb, stride, xb, stride, b.data(), ldy, c.n, c.rows, c.tokens);
  const double tol = 1e-4 * std::sqrt(static_cast<double>(c.n));
  for (int64_t t = 0; t < c.tokens; ++t) {
    for (int64_t r = 0; r < ldy; ++r) {
      ASSERT_NEAR(a[t * ldy + r], b[t * ldy + r], tol) << "row " << r << " token " << t;
    }
    for (int64_t r = c.rows; r < ldy; ++r) ASSERT_EQ(a[t * ldy + r], -1.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Bf16GemmTest,
                         ::testing::Values(GemmCase{4, 3, 32}, GemmCase{8, 6, 64},
                                           GemmCase{5, 4, 96}, GemmCase{3, 2, 7},
                                           GemmCase{13, 11, 577}, GemmCase{64, 48, 256}));

// The 512-bit paths (simd_bf16_avx512.h), called directly so that each is tested on a CPU
// that has it whichever one the table picks.
struct Bf16Impl {
  const char* name;
  bool (*available)();
  float (*dot)(const uint16_t*, const uint16_t*, int64_t);
  GemmFn gemm;
};

bool HasAvx512() {
  const cpu::CpuFeatures& f = cpu::GetCpuFeatures();
  return Avx512Kernels() != nullptr && f.avx512f && f.avx512bw;
}
bool HasAvx512Bf16() { return HasAvx512() && cpu::GetCpuFeatures().avx512bf16; }

const Bf16Impl kBf16Impls[] = {
    {"avx512", &HasAvx512, &avx512::vec_dot_bf16, &avx512::gemm_bf16},
    {"avx512bf16", &HasAvx512Bf16, &avx512bf16::vec_dot_bf16, &avx512bf16::gemm_bf16},
};

class Bf16Avx512Test : public ::testing::TestWithParam<Bf16Impl> {
 protected:
  void SetUp() override {
    if (!GetParam().available()) GTEST_SKIP() << "this CPU cannot run " << GetParam().name;
  }
};

TEST_P(Bf16Avx512Test, DotMatchesReferenceOnEveryLength) {
  for (int64_t n : {1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 576, 4096, 4131}) {
    std::vector<float> wf = RandomVector(n, 7), xf = RandomVector(n, 8);
    std::vector<uint16_t> w(n), x(n);
    convert_row_fp32_to_bf16_ref(wf.data(), w.data(), n);
    convert_row_fp32_to_bf16_ref(xf.data(), x.data(), n);
    double mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      mag += std::fabs(static_cast<double>(bf16_to_fp32(w[i])) * bf16_to_fp32(x[i]));
    }
    EXPECT_NEAR(GetParam().dot(w.data(), x.data(), n), vec_dot_bf16_ref(w.data(), x.data(), n),
                1e-5 * mag + 1e-6)
        << n;
  }
}

TEST_P(Bf16Avx512Test, GemmMatchesReferenceAndGivesTheSameBitsAlone) {
  // Shapes with edges on both axes and a tail of k shorter than one step.
  for (const GemmCase& c : {GemmCase{4, 6, 64}, GemmCase{5, 7, 96}, GemmCase{3, 2, 7},
                            GemmCase{13, 11, 577}, GemmCase{64, 48, 256}}) {
    std::vector<float> wf = RandomVector(c.rows * c.n, 9), xf = RandomVector(c.tokens * c.n, 10);
    std::vector<uint16_t> w(wf.size()), x(xf.size());
    convert_row_fp32_to_bf16_ref(wf.data(), w.data(), static_cast<int64_t>(w.size()));
    convert_row_fp32_to_bf16_ref(xf.data(), x.data(), static_cast<int64_t>(x.size()));
    const int64_t ldy = c.rows + 3;
    std::vector<float> a(c.tokens * ldy, -1.0f), b(c.tokens * ldy, -1.0f);
    const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
    const auto* xb = reinterpret_cast<const uint8_t*>(x.data());
    const size_t stride = static_cast<size_t>(c.n) * 2;
    GetParam().gemm(wb, stride, xb, stride, a.data(), ldy, c.n, c.rows, c.tokens);
    gemm_bf16_ref(wb, stride, xb, stride, b.data(), ldy, c.n, c.rows, c.tokens);
    const double tol = 1e-4 * std::sqrt(static_cast<double>(c.n));
    for (int64_t t = 0; t < c.tokens; ++t) {
      for (int64_t r = 0; r < c.rows; ++r) {
        ASSERT_NEAR(a[t * ldy + r], b[t * ldy + r], tol) << "row " << r << " token " << t;
      }
      for (int64_t r = c.rows; r < ldy; ++r) ASSERT_EQ(a[t * ldy + r], -1.0f);
    }
    // An output's arithmetic does not depend on where its tile falls: one row and token at a
    // time gives the same bits.
    for (int64_t t = 0; t < c.tokens; t += 5) {
      for (int64_t r = 0; r < c.rows; r += 3) {
        float one = 0;
        GetParam().gemm(wb + r * stride, stride, xb + t * stride, stride, &one, 1, c.n, 1, 1);
        ASSERT_EQ(one, a[t * ldy + r]) << "row " << r << " token " << t;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, Bf16Avx512Test, ::testing::ValuesIn(kBf16Impls),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Bf16TableTest, Avx512TablePicksVdpbf16psWhereTheCpuHasIt) {
  const KernelTable* t = Avx512Kernels();
  if (t == nullptr) GTEST_SKIP() << "no AVX-512 table on this CPU";
  if (cpu::GetCpuFeatures().avx512bf16) {
    EXPECT_EQ(t->vec_dot_bf16, &avx512bf16::vec_dot_bf16);
    EXPECT_EQ(t->gemm_bf16, &avx512bf16::gemm_bf16);
  } else {
    EXPECT_EQ(t->vec_dot_bf16, &avx512::vec_dot_bf16);
    EXPECT_EQ(t->gemm_bf16, &avx512::gemm_bf16);
  }
}

}  // namespace
}  // namespace agentry::kernels
