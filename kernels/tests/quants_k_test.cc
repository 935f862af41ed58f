// K-quant references: the dot products agree with dequantize-then-multiply, on random
// blocks (every byte pattern is a valid K-quant block).
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/quants.h"

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
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
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

TEST(QuantsKTest, Avx2Q4_KMatchesTheReference) {
  const KernelTable* avx2 = Avx2Kernels();
  if (avx2 == nullptr) GTEST_SKIP() << "this CPU cannot run the AVX2 kernels";
  for (int blocks : {1, 3, 8}) {
    auto w = RandomBlocks<block_q4_K>(blocks, 40 + blocks);
    TameScales(&w);
    const int64_t n = static_cast<int64_t>(blocks) * kQK_K;
    const std::vector<float> x = RandomFloats(n, 50 + blocks);
    std::vector<block_q8_K> xq(blocks);
    quantize_row_q8_K_ref(x.data(), xq.data(), n);
    const float want = vec_dot_q4_K_q8_K_ref(w.data(), xq.data(), n);
    EXPECT_NEAR(avx2->vec_dot_q4_K_q8_K(w.data(), xq.data(), n), want,
                1e-5f * std::fabs(want) + 1e-4f)
        << blocks;
  }
}

}  // namespace
}  // namespace agentry::kernels
