// kernels/tests/kernel_test_support.h — what the kernel tests share: random inputs from a
// fixed seed (every run, and every table, sees the same vectors), the rounding bound for a
// float dot product, and the shape of a gemm case.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <random>
#include <vector>

namespace agentry::kernels::test_support {

// Normally distributed floats, the same for the same seed.
inline std::vector<float> RandomVector(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// A float dot product may differ from the double-accumulating references by rounding only:
// a relative bound on the sum of |products|.
inline double DotTolerance(const std::vector<float>& w, const std::vector<float>& x) {
  double mag = 0;
  for (size_t i = 0; i < w.size(); ++i) mag += std::fabs(static_cast<double>(w[i]) * x[i]);
  return 1e-5 * mag + 1e-6;
}

// A copy of `n` bytes at `p`: the gemm kernels take rows as raw bytes of any format.
inline std::vector<uint8_t> AsBytes(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  return std::vector<uint8_t>(b, b + n);
}

// One gemm call's shape: `rows` weight rows times `tokens` activations of length `n`.
struct GemmCase {
  int64_t rows;
  int64_t tokens;
  int64_t n;
};

inline void PrintTo(const GemmCase& c, std::ostream* os) {
  *os << c.rows << "x" << c.tokens << "x" << c.n;
}

}  // namespace agentry::kernels::test_support
