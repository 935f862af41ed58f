#include "common/cpu/cpu_features.h"

#include <cpuid.h>

#include <cstdint>
#include <cstring>

namespace agentry::cpu {
namespace {

struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs CpuId(uint32_t leaf, uint32_t subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

uint64_t XGetBv() {
  uint32_t eax = 0;
  uint32_t edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

bool Bit(uint32_t reg, int bit) { return (reg >> bit) & 1u; }

CpuFeatures Detect() {
  CpuFeatures f;
  const uint32_t max_leaf = static_cast<uint32_t>(__get_cpuid_max(0, nullptr));
  if (max_leaf == 0) return f;

  Regs v = CpuId(0, 0);
  char vendor[13] = {};
  std::memcpy(vendor + 0, &v.ebx, 4);
  std::memcpy(vendor + 4, &v.edx, 4);
  std::memcpy(vendor + 8, &v.ecx, 4);
  f.vendor = vendor;

  const Regs l1 = CpuId(1, 0);
  f.sse42 = Bit(l1.ecx, 20);
  const bool osxsave = Bit(l1.ecx, 27);
  // XCR0: bits 1-2 = SSE and AVX state; bits 5-7 = AVX-512 opmask and ZMM state.
  const uint64_t xcr0 = osxsave ? XGetBv() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;

  f.avx = os_avx && Bit(l1.ecx, 28);
  f.fma = f.avx && Bit(l1.ecx, 12);
  f.f16c = f.avx && Bit(l1.ecx, 29);

  if (max_leaf >= 7) {
    const Regs l7 = CpuId(7, 0);
    f.avx2 = f.avx && Bit(l7.ebx, 5);
    f.avx512f = os_avx512 && Bit(l7.ebx, 16);
    f.avx512bw = f.avx512f && Bit(l7.ebx, 30);
    f.avx512dq = f.avx512f && Bit(l7.ebx, 17);
    f.avx512vl = f.avx512f && Bit(l7.ebx, 31);
    f.avx512vnni = f.avx512f && Bit(l7.ecx, 11);
    const Regs l7_1 = CpuId(7, 1);
    f.avx512bf16 = f.avx512f && Bit(l7_1.eax, 5);
    f.avx_vnni = f.avx && Bit(l7_1.eax, 4);
  }

  if (static_cast<uint32_t>(__get_cpuid_max(0x80000000, nullptr)) >= 0x80000004u) {
    char brand[49] = {};
    for (size_t i = 0; i < 3; ++i) {
      const Regs b = CpuId(0x80000002u + static_cast<uint32_t>(i), 0);
      std::memcpy(brand + i * 16 + 0, &b.eax, 4);
      std::memcpy(brand + i * 16 + 4, &b.ebx, 4);
      std::memcpy(brand + i * 16 + 8, &b.ecx, 4);
      std::memcpy(brand + i * 16 + 12, &b.edx, 4);
    }
    f.brand = brand;
    while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
    while (!f.brand.empty() && f.brand.front() == ' ') f.brand.erase(0, 1);
  }
  return f;
}

}  // namespace

std::string CpuFeatures::ToString() const {
  std::string out;
  auto add = [&out](bool has, const char* name) {
    if (!has) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add(sse42, "sse4_2");
  add(avx, "avx");
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512dq, "avx512dq");
  add(avx512vl, "avx512vl");
  add(avx512vnni, "avx512_vnni");
  add(avx512bf16, "avx512_bf16");
  add(avx_vnni, "avx_vnni");
  return out;
}

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures features = Detect();
  return features;
}

}  // namespace agentry::cpu
