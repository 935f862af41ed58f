// common/cpu/cpu_features.h — what this CPU (and the OS) lets us run, from CPUID.
//
// Kernels choose their SIMD path at run time from these flags, never from compile flags:
// machines of one kind differ (one has AVX-512, the next only AVX2). A feature counts only
// when the OS also saves its register state (XGETBV), as the kernel's /proc/cpuinfo does.
#pragma once

#include <string>

namespace agentry::cpu {

struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avx_vnni = false;
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ...
  std::string brand;   // "AMD EPYC 9R14 96-Core Processor"

  // Space-separated names of the features present, in the order above (/proc/cpuinfo names).
  std::string ToString() const;
};

// Detected once, then cached; thread-safe.
const CpuFeatures& GetCpuFeatures();

}  // namespace agentry::cpu
