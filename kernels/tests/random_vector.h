// kernels/tests/random_vector.h — the kernel tests' random inputs: normally distributed
// floats from a fixed seed, so every run (and every table) sees the same vectors.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace agentry::kernels::test_support {

inline std::vector<float> RandomVector(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace agentry::kernels::test_support
