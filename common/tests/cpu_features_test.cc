#include "common/cpu/cpu_features.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace agentry::cpu {
namespace {

// The kernel's view: the "flags" line of the first processor in /proc/cpuinfo.
std::set<std::string> KernelFlags() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      std::istringstream words(line.substr(line.find(':') + 1));
      std::set<std::string> flags;
      for (std::string w; words >> w;) flags.insert(w);
      return flags;
    }
  }
  return {};
}

TEST(CpuFeaturesTest, AgreesWithTheKernel) {
  const std::set<std::string> kernel = KernelFlags();
  if (kernel.empty()) GTEST_SKIP() << "no flags line in /proc/cpuinfo on this machine";
  const CpuFeatures& f = GetCpuFeatures();
  // The kernel lists a feature only when it supports its state too, as we do.
  EXPECT_EQ(f.sse42, kernel.count("sse4_2") == 1);
  EXPECT_EQ(f.avx, kernel.count("avx") == 1);
  EXPECT_EQ(f.avx2, kernel.count("avx2") == 1);
  EXPECT_EQ(f.fma, kernel.count("fma") == 1);
  EXPECT_EQ(f.f16c, kernel.count("f16c") == 1);
  EXPECT_EQ(f.avx512f, kernel.count("avx512f") == 1);
  EXPECT_EQ(f.avx512bw, kernel.count("avx512bw") == 1);
  EXPECT_EQ(f.avx512dq, kernel.count("avx512dq") == 1);
  EXPECT_EQ(f.avx512vl, kernel.count("avx512vl") == 1);
  EXPECT_EQ(f.avx512vnni, kernel.count("avx512_vnni") == 1);
  EXPECT_EQ(f.avx512bf16, kernel.count("avx512_bf16") == 1);
}

TEST(CpuFeaturesTest, ImpliedFeaturesAreConsistent) {
  const CpuFeatures& f = GetCpuFeatures();
  EXPECT_TRUE(!f.avx2 || f.avx);
  EXPECT_TRUE(!f.avx512bw || f.avx512f);
  EXPECT_TRUE(!f.avx512dq || f.avx512f);
  EXPECT_TRUE(!f.avx512f || f.avx2);
  EXPECT_FALSE(f.vendor.empty());
  EXPECT_EQ(&f, &GetCpuFeatures());  // cached
}

TEST(CpuFeaturesTest, ToStringUsesKernelNames) {
  CpuFeatures f;
  f.avx2 = true;
  f.avx512vnni = true;
  EXPECT_EQ(f.ToString(), "avx2 avx512_vnni");
}

}  // namespace
}  // namespace agentry::cpu
