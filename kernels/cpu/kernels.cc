#include "kernels/cpu/kernels.h"

#include <cstdlib>
#include <cstring>

#include "common/cpu/cpu_features.h"
#include "kernels/cpu/kernels_internal.h"

namespace agentry::kernels {

const KernelTable& ScalarKernels() {
  static const KernelTable table = {
      "scalar",
      &vec_dot_f32_ref,
      &vec_dot_f16_ref,
      &vec_dot_q8_0_q8_0_ref,
      &vec_dot_q4_0_q8_0_ref,
      &convert_row_fp32_to_fp16_ref,
      &quantize_row_q8_0_ref,
      &axpy_f16_ref,
      &gemm_f32_ref,
      &gemm_f16_ref,
      &gemm_q8_0_ref,
      &gemm_q4_0_ref,
      &quantize_row_q8_K_ref,
      &vec_dot_q4_K_q8_K_ref,
      &vec_dot_q5_K_q8_K_ref,
      &vec_dot_q6_K_q8_K_ref,
      &gemm_q4_K_ref,
      &gemm_q5_K_ref,
      &gemm_q6_K_ref,
      &convert_row_fp32_to_bf16_ref,
      &vec_dot_bf16_ref,
      &gemm_bf16_ref,
      &axpy_q8_0_ref,
      &soft_max_f32_ref,
      &silu_mul_f32_ref,
      &axpy_block_f16_ref,
      &quantize_row_q8_1_ref,
      &vec_dot_q4_1_q8_1_ref,
      &vec_dot_q5_0_q8_0_ref,
      &vec_dot_q5_1_q8_1_ref,
      &gemm_q4_1_ref,
      &gemm_q5_0_ref,
      &gemm_q5_1_ref,
      &axpy_block_f32_ref,
      &dots_q8_0_ref,
  };
  return table;
}

const KernelTable* Avx2Kernels() {
  const cpu::CpuFeatures& f = cpu::GetCpuFeatures();
  if (!(f.avx2 && f.fma && f.f16c)) return nullptr;
  static const KernelTable table = {
      "avx2",
      &avx2::vec_dot_f32,
      &avx2::vec_dot_f16,
      &avx2::vec_dot_q8_0_q8_0,
      &avx2::vec_dot_q4_0_q8_0,
      &avx2::convert_row_fp32_to_fp16,
      &avx2::quantize_row_q8_0,
      &avx2::axpy_f16,
      &avx2::gemm_f32,
      &avx2::gemm_f16,
      &avx2::gemm_q8_0,
      &avx2::gemm_q4_0,
      &avx2::quantize_row_q8_K,
      &avx2::vec_dot_q4_K_q8_K,
      &avx2::vec_dot_q5_K_q8_K,
      &avx2::vec_dot_q6_K_q8_K,
      &avx2::gemm_q4_K,
      &avx2::gemm_q5_K,
      &avx2::gemm_q6_K,
      &avx2::convert_row_fp32_to_bf16,
      &avx2::vec_dot_bf16,
      &avx2::gemm_bf16,
      &avx2::axpy_q8_0,
      &avx2::soft_max_f32,
      &avx2::silu_mul_f32,
      &avx2::axpy_block_f16,
      &avx2::quantize_row_q8_1,
      &avx2::vec_dot_q4_1_q8_1,
      &avx2::vec_dot_q5_0_q8_0,
      &avx2::vec_dot_q5_1_q8_1,
      &avx2::gemm_q4_1,
      &avx2::gemm_q5_0,
      &avx2::gemm_q5_1,
      &avx2::axpy_block_f32,
      &avx2::dots_q8_0,
  };
  return &table;
}

const KernelTable* AvxVnniKernels() {
  const KernelTable* avx2 = Avx2Kernels();
  if (avx2 == nullptr || !cpu::GetCpuFeatures().avx_vnni) return nullptr;
  static const KernelTable table = [avx2] {
    KernelTable t = *avx2;
    t.isa = "avx2+vnni";
    t.vec_dot_q8_0_q8_0 = &avxvnni::vec_dot_q8_0_q8_0;
    t.vec_dot_q4_0_q8_0 = &avxvnni::vec_dot_q4_0_q8_0;
    t.dots_q8_0 = &avxvnni::dots_q8_0;
    t.vec_dot_q4_K_q8_K = &avxvnni::vec_dot_q4_K_q8_K;
    t.vec_dot_q5_K_q8_K = &avxvnni::vec_dot_q5_K_q8_K;
    t.vec_dot_q6_K_q8_K = &avxvnni::vec_dot_q6_K_q8_K;
    t.gemm_q4_K = &avxvnni::gemm_q4_K;
    t.gemm_q5_K = &avxvnni::gemm_q5_K;
    t.gemm_q6_K = &avxvnni::gemm_q6_K;
    return t;
  }();
  return &table;
}

const KernelTable* Avx512Kernels() {
  const cpu::CpuFeatures& f = cpu::GetCpuFeatures();
  const KernelTable* vnni = AvxVnniKernels();
  const KernelTable* base = vnni != nullptr ? vnni : Avx2Kernels();
  // DQ for the float conversions and extracts; every AVX512-VNNI CPU has it.
  if (base == nullptr || !(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni)) {
    return nullptr;
  }
  static const KernelTable table = [base, &f] {
    // The BF16 activation conversion and the Q8_0-cache axpy stay on 256-bit kernels.
    KernelTable t = *base;
    t.isa = "avx512";
    t.vec_dot_f32 = &avx512::vec_dot_f32;
    t.vec_dot_f16 = &avx512::vec_dot_f16;
    t.vec_dot_q8_0_q8_0 = &avx512::vec_dot_q8_0_q8_0;
    t.vec_dot_q4_0_q8_0 = &avx512::vec_dot_q4_0_q8_0;
    t.dots_q8_0 = &avx512::dots_q8_0;
    t.convert_row_fp32_to_fp16 = &avx512::convert_row_fp32_to_fp16;
    t.quantize_row_q8_0 = &avx512::quantize_row_q8_0;
    t.axpy_f16 = &avx512::axpy_f16;
    t.gemm_f32 = &avx512::gemm_f32;
    t.gemm_f16 = &avx512::gemm_f16;
    t.gemm_q8_0 = &avx512::gemm_q8_0;
    t.gemm_q4_0 = &avx512::gemm_q4_0;
    t.gemm_q5_0 = &avx512::gemm_q5_0;
    t.gemm_q4_1 = &avx512::gemm_q4_1;
    t.gemm_q5_1 = &avx512::gemm_q5_1;
    t.vec_dot_q5_0_q8_0 = &avx512::vec_dot_q5_0_q8_0;
    t.vec_dot_q4_1_q8_1 = &avx512::vec_dot_q4_1_q8_1;
    t.vec_dot_q5_1_q8_1 = &avx512::vec_dot_q5_1_q8_1;
    t.soft_max_f32 = &avx512::soft_max_f32;
    t.silu_mul_f32 = &avx512::silu_mul_f32;
    t.axpy_block_f16 = &avx512::axpy_block_f16;
    t.axpy_block_f32 = &avx512::axpy_block_f32;
    t.vec_dot_q4_K_q8_K = &avx512::vec_dot_q4_K_q8_K;
    t.vec_dot_q5_K_q8_K = &avx512::vec_dot_q5_K_q8_K;
    t.vec_dot_q6_K_q8_K = &avx512::vec_dot_q6_K_q8_K;
    t.gemm_q4_K = &avx512::gemm_q4_K;
    t.gemm_q5_K = &avx512::gemm_q5_K;
    t.gemm_q6_K = &avx512::gemm_q6_K;
    // vdpbf16ps where the CPU has it, as llama.cpp's build for such CPUs uses it.
    t.vec_dot_bf16 = f.avx512bf16 ? &avx512bf16::vec_dot_bf16 : &avx512::vec_dot_bf16;
    t.gemm_bf16 = f.avx512bf16 ? &avx512bf16::gemm_bf16 : &avx512::gemm_bf16;
    return t;
  }();
  return &table;
}

const KernelTable& Kernels() {
  static const KernelTable* chosen = [] {
    // AGENTRY_KERNELS names a table to force; one this CPU cannot run is ignored.
    const char* force = std::getenv("AGENTRY_KERNELS");
    if (force != nullptr) {
      if (std::strcmp(force, "scalar") == 0) return &ScalarKernels();
      const KernelTable* forced = nullptr;
      if (std::strcmp(force, "avx2") == 0) forced = Avx2Kernels();
      if (std::strcmp(force, "avx2+vnni") == 0) forced = AvxVnniKernels();
      if (std::strcmp(force, "avx512") == 0) forced = Avx512Kernels();
      if (forced != nullptr) return forced;
    }
    if (const KernelTable* avx512 = Avx512Kernels()) return avx512;
    if (const KernelTable* vnni = AvxVnniKernels()) return vnni;
    const KernelTable* avx2 = Avx2Kernels();
    return avx2 != nullptr ? avx2 : &ScalarKernels();
  }();
  return *chosen;
}

}  // namespace agentry::kernels
