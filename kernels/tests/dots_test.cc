// dots_q8_0 (batched decode) on every table against dots_q8_0_ref: equal bit for bit for every
// row and token, whatever rows and tokens share a call; the reference near the exact dot.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/quants.h"
#include "kernels/tests/kernel_test_support.h"

namespace agentry::kernels {
namespace {

using test_support::RandomVector;

class DotsTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(DotsTest, EveryOutputIsTheReferencesWhateverTheCallsShape) {
  const int64_t n = GetParam();
  const int64_t rows = 37;    // tiles of 16 rows (AVX-512) or groups of 8 (AVX2), and 5 left
  const int64_t tokens = 19;  // tiles of 8 (AVX-512) or 4 (AVX2) tokens, and what is left
  std::vector<block_q8_0> w(rows * n / kQK8_0);
  std::vector<block_q8_0> x(tokens * n / kQK8_0);
  quantize_row_q8_0_ref(RandomVector(rows * n, 21).data(), w.data(), rows * n);
  quantize_row_q8_0_ref(RandomVector(tokens * n, 22).data(), x.data(), tokens * n);
  // Extreme codes too: -128 and 127 in the weights, where the bias and sign tricks could
  // overflow if they were wrong.
  w[0].qs[0] = -128;
  w[0].qs[1] = 127;
  x[0].qs[0] = -127;
  const size_t row_bytes = n / kQK8_0 * sizeof(block_q8_0);
  const auto* wb = reinterpret_cast<const uint8_t*>(w.data());
  const auto* xb = reinterpret_cast<const uint8_t*>(x.data());
  std::vector<float> want(tokens * rows);
  dots_q8_0_ref(wb, row_bytes, xb, row_bytes, want.data(), rows, n, rows, tokens);
  // The reference's order of float operations is its own; its value is the dot product's.
  for (int64_t tk = 0; tk < tokens; ++tk) {
    for (int64_t r = 0; r < rows; ++r) {
      const float exact = vec_dot_q8_0_q8_0_ref(&w[r * n / kQK8_0], &x[tk * n / kQK8_0], n);
      EXPECT_NEAR(want[tk * rows + r], exact, 1e-5f * std::sqrt(static_cast<float>(n)));
    }
  }
  std::vector<const KernelTable*> tables = {&ScalarKernels()};
  for (const KernelTable* t : {Avx2Kernels(), AvxVnniKernels(), Avx512Kernels()}) {
    if (t != nullptr) tables.push_back(t);
  }
  for (const KernelTable* t : tables) {
    for (int64_t row_block : {int64_t{1}, int64_t{7}, int64_t{16}, rows}) {  // rows per call
      for (int64_t batch : {int64_t{1}, int64_t{2}, int64_t{5}, int64_t{8}, tokens}) {
        std::vector<float> y(tokens * rows);
        for (int64_t r0 = 0; r0 < rows; r0 += row_block) {
          const int64_t nr = std::min(row_block, rows - r0);
          for (int64_t t0 = 0; t0 < tokens; t0 += batch) {
            const int64_t nt = std::min(batch, tokens - t0);
            t->dots_q8_0(wb + r0 * row_bytes, row_bytes, xb + t0 * row_bytes, row_bytes,
                         &y[t0 * rows + r0], rows, n, nr, nt);
          }
        }
        for (int64_t i = 0; i < tokens * rows; ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want[i]))
              << t->isa << " n " << n << ", " << row_block << " rows and " << batch
              << " tokens a call: row " << i % rows << " token " << i / rows << ": " << y[i]
              << " != " << want[i];
        }
      }
    }
  }
}

// 1 to 7 blocks, and model-sized rows.
INSTANTIATE_TEST_SUITE_P(Lengths, DotsTest,
                         ::testing::Values(32, 64, 96, 128, 160, 192, 224, 1024, 4096 + 96));

}  // namespace
}  // namespace agentry::kernels
