// The softmax, SiLU and axpy-block kernels of every SIMD table against the scalar
// references in ops.h (and the F16 axpy blocks against the table's own axpy_f16).
#include "kernels/cpu/ops.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/tests/kernel_test_support.h"

namespace agentry::kernels {
namespace {

using test_support::RandomVector;

std::vector<uint16_t> ToF16(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  convert_row_fp32_to_fp16_ref(v.data(), h.data(), static_cast<int64_t>(v.size()));
  return h;
}

const KernelTable* TableNamed(const std::string& isa) {
  if (isa == "avx2") return Avx2Kernels();
  if (isa == "avx512") return Avx512Kernels();
  return nullptr;
}

class OpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    k_ = TableNamed(GetParam());
    if (k_ == nullptr) GTEST_SKIP() << "this CPU cannot run the " << GetParam() << " kernels";
  }
  const KernelTable* k_ = nullptr;
};

// The scalar exponential that mirrors the SIMD ones: within 1 ulp of the exact value over
// every exponent a float can reach, and the edges (overflow, underflow, NaN).
TEST(ExpRefTest, WithinOneUlpOfTheExactValue) {
  for (int i = 0; i < 276000; ++i) {
    const float x = -103.9f + 0.0007f * static_cast<float>(i);  // to 89.3
    if (x >= 88.72f) break;
    const double exact = std::exp(static_cast<double>(x));
    const float got = exp_f32_ref(x);
    const double ulp =
        std::nextafter(static_cast<float>(exact), INFINITY) - static_cast<float>(exact);
    ASSERT_LE(std::fabs(got - exact), ulp) << "x " << x;
  }
  EXPECT_EQ(exp_f32_ref(0.0f), 1.0f);
  EXPECT_EQ(exp_f32_ref(88.8f), INFINITY);
  EXPECT_EQ(exp_f32_ref(-104.5f), 0.0f);
  EXPECT_EQ(exp_f32_ref(-INFINITY), 0.0f);
  EXPECT_TRUE(std::isnan(exp_f32_ref(NAN)));
}

void ExpectSameBits(const std::vector<float>& got, const std::vector<float>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
        << what << " i " << i << ": " << got[i] << " vs " << want[i];
  }
}

// SiLU over a dense sweep, with up = 1 and with random up: the same exponential and the
// same division, so the same bits as the reference.
TEST_P(OpsTest, SiluMulIsTheReferenceBitForBit) {
  std::vector<float> g;
  for (int i = -8000; i <= 8000; ++i) g.push_back(0.0137f * static_cast<float>(i));  // +-110
  g.insert(g.end(), {0.0f, -0.0f, 1e-30f, -1e-30f, 88.7f, -88.7f, 87.4f, -87.4f, 103.9f, -103.9f});
  const int64_t n = static_cast<int64_t>(g.size());
  std::vector<float> ones(n, 1.0f), up = RandomVector(n, 1);
  for (const std::vector<float>* u : {&ones, &up}) {
    std::vector<float> a = g, b = g;
    k_->silu_mul_f32(a.data(), u->data(), n);
    silu_mul_f32_ref(b.data(), u->data(), n);
    ExpectSameBits(a, b, u == &ones ? "up = 1" : "random up");
  }
}

// Every length from 1 to 70 (all tails), and long rows; wide and narrow score ranges. The
// bits equal the reference's, so every table (and the trainer that uses it) agrees.
TEST_P(OpsTest, SoftMaxIsTheReferenceBitForBit) {
  for (int64_t n = 1; n <= 1100; n += (n < 70 ? 1 : 517)) {
    for (float spread : {1.0f, 30.0f}) {
      std::vector<float> a = RandomVector(n, static_cast<uint32_t>(n), spread), b = a;
      k_->soft_max_f32(a.data(), n, 0.125f);
      soft_max_f32_ref(b.data(), n, 0.125f);
      ExpectSameBits(a, b, "n " + std::to_string(n));
      double sum = 0;
      for (float v : a) sum += v;
      EXPECT_NEAR(sum, 1.0, 1e-5) << n;
    }
  }
  // Scores far below the maximum underflow to zero, as exp does.
  std::vector<float> x = {0.0f, -2000.0f, 3.0f};
  k_->soft_max_f32(x.data(), 3, 1.0f);
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_NEAR(x[0] + x[2], 1.0f, 1e-6f);
}

struct AxpyCase {
  int64_t n;       // values per row (head size)
  int64_t n_x;     // keys
  int64_t tokens;  // probability rows
};

TEST_P(OpsTest, AxpyBlockIsTheTablesAxpyInOrder) {
  const AxpyCase cases[] = {{64, 1, 1},  {64, 63, 6}, {64, 64, 7},  {64, 65, 13}, {128, 200, 5},
                            {80, 70, 3}, {96, 9, 2},  {100, 17, 4}, {7, 5, 3}};
  for (const AxpyCase& c : cases) {
    const int64_t ldy = c.n + 5, lda = c.n_x + 3, ldx = c.n + 16;
    const std::vector<uint16_t> a = ToF16(RandomVector(c.tokens * lda, 2, 0.1f));
    const std::vector<uint16_t> x = ToF16(RandomVector(c.n_x * ldx, 3));
    const std::vector<float> y0 = RandomVector(c.tokens * ldy, 4);
    std::vector<float> got = y0, ref = y0, loop = y0;
    k_->axpy_block_f16(got.data(), ldy, a.data(), lda, x.data(), ldx, c.n_x, c.n, c.tokens);
    axpy_block_f16_ref(ref.data(), ldy, a.data(), lda, x.data(), ldx, c.n_x, c.n, c.tokens);
    for (int64_t t = 0; t < c.tokens; ++t) {
      for (int64_t s = 0; s < c.n_x; ++s) {
        k_->axpy_f16(loop.data() + t * ldy, fp16_to_fp32(a[t * lda + s]), x.data() + s * ldx, c.n);
      }
    }
    const std::string shape =
        std::to_string(c.n) + "x" + std::to_string(c.n_x) + "x" + std::to_string(c.tokens);
    for (int64_t t = 0; t < c.tokens; ++t) {
      for (int64_t i = 0; i < ldy; ++i) {
        const int64_t at = t * ldy + i;
        if (i >= c.n) {  // outside the block: untouched
          ASSERT_EQ(got[at], y0[at]) << shape << " token " << t << " column " << i;
          continue;
        }
        ASSERT_NEAR(got[at], ref[at], 1e-5f * (1 + std::fabs(ref[at]))) << shape;
        // The same fused multiply-adds in the same order as the table's own axpy_f16 (on
        // AVX2, whole vectors: its axpy_f16 leaves the tail to the compiler's contraction).
        if (GetParam() == "avx512" || i < c.n / 8 * 8) {
          ASSERT_EQ(got[at], loop[at]) << shape << " token " << t << " column " << i;
        }
      }
    }
  }
}

// The F32 blocks compute each output as the reference does, one fused multiply-add a term
// in order of s, so they agree bit for bit; columns outside the block stay untouched. The
// coefficients are read as rows (a_step 1, attention) and transposed (lda 1, the weight
// gradients' dYᵀ), including key counts past the kernels' blocks of 256 keys.
TEST_P(OpsTest, AxpyBlockF32IsTheReferenceBitForBit) {
  const AxpyCase cases[] = {{32, 1, 1},    {32, 63, 6},   {32, 64, 7},    {64, 65, 13},
                            {128, 200, 5}, {80, 70, 3},   {96, 9, 2},     {100, 17, 4},
                            {7, 5, 3},     {32, 1000, 2}, {128, 600, 20}, {352, 513, 7}};
  for (const AxpyCase& c : cases) {
    for (const bool transposed : {false, true}) {
      const int64_t ldy = c.n + 5, ldx = c.n + 16;
      // Rows: a[t][s] in rows of n_x + 3. Transposed: a[s][t] in rows of tokens + 3.
      const int64_t lda = transposed ? 1 : c.n_x + 3;
      const int64_t a_step = transposed ? c.tokens + 3 : 1;
      const std::vector<float> a = RandomVector((c.tokens + 3) * (c.n_x + 3), 5, 0.1f);
      const std::vector<float> x = RandomVector(c.n_x * ldx, 6);
      const std::vector<float> y0 = RandomVector(c.tokens * ldy, 7);
      std::vector<float> got = y0, ref = y0;
      k_->axpy_block_f32(got.data(), ldy, a.data(), lda, a_step, x.data(), ldx, c.n_x, c.n,
                         c.tokens);
      axpy_block_f32_ref(ref.data(), ldy, a.data(), lda, a_step, x.data(), ldx, c.n_x, c.n,
                         c.tokens);
      const std::string shape = std::to_string(c.n) + "x" + std::to_string(c.n_x) + "x" +
                                std::to_string(c.tokens) + (transposed ? " transposed" : "");
      for (int64_t at = 0; at < c.tokens * ldy; ++at) {
        ASSERT_EQ(got[at], at % ldy < c.n ? ref[at] : y0[at]) << shape << " element " << at;
      }
      // The reference itself: each output is the sum it should be (a check on the strides).
      for (int64_t t = 0; t < c.tokens; ++t) {
        const int64_t i = (t * 7) % c.n;
        double sum = y0[t * ldy + i];
        for (int64_t s = 0; s < c.n_x; ++s) sum += double{a[t * lda + s * a_step]} * x[s * ldx + i];
        ASSERT_NEAR(ref[t * ldy + i], sum, 1e-4 * (1.0 + std::fabs(sum))) << shape;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, OpsTest, ::testing::Values("avx2", "avx512"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace agentry::kernels
