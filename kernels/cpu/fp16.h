// kernels/cpu/fp16.h — IEEE half (F16) and bfloat16 (BF16) conversions, scalar reference.
//
// Bit-exact, round-to-nearest-even, NaN and infinity preserved, subnormals handled. SIMD
// paths are tested against these: F16 uses the F16C unit; BF16 (dot_bf16_avx2.cc) does the
// same integer rounding eight lanes at a time rather than AVX512-BF16's vcvtneps2bf16,
// which flushes subnormals to zero where llama.cpp's conversion (ggml_cpu_fp32_to_bf16,
// scalar) keeps them.
#pragma once

#include <cstdint>
#include <cstring>

namespace agentry::kernels {
// Internal linkage: scalar and SIMD files (built for different instruction sets) include
// this, and an out-of-line copy built with -mavx512f must never serve the scalar callers.
namespace {

inline uint32_t fp32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline float fp32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) return fp32_from_bits(sign | 0x7F800000 | (mant << 13));  // inf, NaN
  if (exp != 0) return fp32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in float.
  const float magnitude = static_cast<float>(mant) * (1.0f / 16777216.0f);
  return sign ? -magnitude : magnitude;
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = fp32_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t exp = (bits >> 23) & 0xFF;
  uint32_t mant = bits & 0x7FFFFF;
  if (exp == 0xFF) return sign | 0x7C00 | (mant ? 0x200 : 0);  // inf; NaN stays a quiet NaN
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return sign | 0x7C00;  // overflow to infinity
  if (e <= 0) {
    if (e < -10) return sign;  // below half the smallest subnormal: zero
    mant |= 0x800000;          // the implicit bit
    const uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1))) ++half;
    return sign | static_cast<uint16_t>(half);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // a carry may reach infinity
  return sign | static_cast<uint16_t>(half);
}

inline float bf16_to_fp32(uint16_t h) { return fp32_from_bits(static_cast<uint32_t>(h) << 16); }

inline uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = fp32_to_bits(f);
  if ((bits & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  return static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

}  // namespace
}  // namespace agentry::kernels
