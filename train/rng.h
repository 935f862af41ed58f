// train/rng.h — a small deterministic generator for training: the same seed gives the same
// numbers with every compiler and standard library (<random>'s distributions do not).
#pragma once

#include <cmath>
#include <cstdint>

namespace agentry::train {

// splitmix64: one step of a 64-bit mixing function; also a good hash of a counter.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(SplitMix64(seed)) {}

  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ull;
    return SplitMix64(state_);
  }
  // Uniform in [0, 1) with 24 bits.
  float Uniform() { return static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f); }
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  // Standard normal (Box-Muller, one value per call).
  float Normal() {
    const double u1 = (static_cast<double>(Next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    const double u2 = static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0);
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }

 private:
  uint64_t state_;
};

}  // namespace agentry::train
