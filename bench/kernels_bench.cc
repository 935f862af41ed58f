// bench/kernels_bench.cc — the prefill GEMM and decode dot of every kernel table this CPU
// can run, on the shapes of the 143M benchmark model (bench/engine-vs-llamacpp): one
// MatMul chunk of 48 tokens against 576 x 576 (attention), 1536 x 576 (FFN up/gate) and
// 576 x 1536 (FFN down) weights. Also the node daemon's batched decode tiles (dots_q8_0)
// for 1, 8 and 48 tokens (one session, a step of eight, a prefill chunk), on the same shapes,
// against the prefill gemm_q8_0 given the same 8 tokens (gemm8_q8_0) and 48 (gemm_q8_0). Reports
// multiply-adds per second ("MAC/s") per table, so tables compare side by side in one run; use CPU
// time on a busy machine. peak/vpdpbusd/avx512 (CPUs with AVX512-VNNI) is the instruction alone,
// the ceiling of the Q8_0 tiles' MAC/s on this CPU.
//
//   build/default/bench/kernels_bench --benchmark_filter=gemm_q4_0
//   build/default/bench/kernels_bench --benchmark_filter='dots_q8_0|gemm8_q8_0'
//   build/default/bench/kernels_bench --benchmark_filter='peak|dots_q8_0/avx512'
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/quants.h"

namespace agentry::kernels {
namespace {

constexpr int64_t kTokens = 48;  // MatMul's token chunk

enum class Format { kF32, kF16, kQ8_0, kQ4_0 };

size_t RowBytes(Format f, int64_t n) {
  switch (f) {
    case Format::kF32:
      return n * sizeof(float);
    case Format::kF16:
      return n * sizeof(uint16_t);
    case Format::kQ8_0:
      return n / kQK8_0 * sizeof(block_q8_0);
    case Format::kQ4_0:
      return n / kQK4_0 * sizeof(block_q4_0);
  }
  return 0;
}

// Activations in the weight format's dot type.
size_t XRowBytes(Format f, int64_t n) {
  return f == Format::kQ4_0 ? RowBytes(Format::kQ8_0, n) : RowBytes(f, n);
}

void Fill(Format f, const std::vector<float>& v, int64_t n, uint8_t* out) {
  const int64_t rows = static_cast<int64_t>(v.size()) / n;
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = v.data() + r * n;
    uint8_t* dst = out + r * RowBytes(f, n);
    switch (f) {
      case Format::kF32:
        std::memcpy(dst, src, n * sizeof(float));
        break;
      case Format::kF16:
        convert_row_fp32_to_fp16_ref(src, reinterpret_cast<uint16_t*>(dst), n);
        break;
      case Format::kQ8_0:
        quantize_row_q8_0_ref(src, reinterpret_cast<block_q8_0*>(dst), n);
        break;
      case Format::kQ4_0:
        quantize_row_q4_0_ref(src, reinterpret_cast<block_q4_0*>(dst), n);
        break;
    }
  }
}

std::vector<float> Normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

GemmFn GemmOf(const KernelTable& k, Format f) {
  switch (f) {
    case Format::kF32:
      return k.gemm_f32;
    case Format::kF16:
      return k.gemm_f16;
    case Format::kQ8_0:
      return k.gemm_q8_0;
    case Format::kQ4_0:
      return k.gemm_q4_0;
  }
  return nullptr;
}

float DotOf(const KernelTable& k, Format f, const uint8_t* w, const uint8_t* x, int64_t n) {
  switch (f) {
    case Format::kF32:
      return k.vec_dot_f32(reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(x), n);
    case Format::kF16:
      return k.vec_dot_f16(reinterpret_cast<const uint16_t*>(w),
                           reinterpret_cast<const uint16_t*>(x), n);
    case Format::kQ8_0:
      return k.vec_dot_q8_0_q8_0(reinterpret_cast<const block_q8_0*>(w),
                                 reinterpret_cast<const block_q8_0*>(x), n);
    case Format::kQ4_0:
      return k.vec_dot_q4_0_q8_0(reinterpret_cast<const block_q4_0*>(w),
                                 reinterpret_cast<const block_q8_0*>(x), n);
  }
  return 0.0f;
}

struct Operands {
  std::vector<uint8_t> w;
  std::vector<uint8_t> x;
  std::vector<float> y;
};

Operands Make(Format f, int64_t rows, int64_t n, int64_t tokens) {
  Operands o;
  o.w.resize(rows * RowBytes(f, n));
  Fill(f, Normal(rows * n, 1), n, o.w.data());
  const Format xf = f == Format::kQ4_0 ? Format::kQ8_0 : f;
  o.x.resize(tokens * XRowBytes(f, n));
  Fill(xf, Normal(tokens * n, 2), n, o.x.data());
  o.y.resize(tokens * rows);
  return o;
}

// `gemm` (a GemmFn over f's weights and activations) on `tokens` tokens.
void BM_GemmFn(benchmark::State& state, GemmFn gemm, Format f, int64_t rows, int64_t n,
               int64_t tokens) {
  Operands o = Make(f, rows, n, tokens);
  for (auto _ : state) {
    gemm(o.w.data(), RowBytes(f, n), o.x.data(), XRowBytes(f, n), o.y.data(), rows, n, rows,
         tokens);
    benchmark::DoNotOptimize(o.y.data());
    benchmark::ClobberMemory();
  }
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(rows * n * tokens),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Gemm(benchmark::State& state, const KernelTable* k, Format f, int64_t rows, int64_t n) {
  BM_GemmFn(state, GemmOf(*k, f), f, rows, n, kTokens);
}

void BM_Dot(benchmark::State& state, const KernelTable* k, Format f, int64_t rows, int64_t n) {
  Operands o = Make(f, rows, n, 1);
  for (auto _ : state) {
    for (int64_t r = 0; r < rows; ++r) {
      o.y[r] = DotOf(*k, f, o.w.data() + r * RowBytes(f, n), o.x.data(), n);
    }
    benchmark::DoNotOptimize(o.y.data());
    benchmark::ClobberMemory();
  }
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(rows * n),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// This CPU's vpdpbusd throughput: twelve independent 512-bit accumulators (more than the
// instruction's latency times its issue rate), nothing else in the loop. The dots_q8_0 rows
// divided by this say how far the decode tiles are from the integer multiply-add limit; each
// vpdpbusd is 64 multiply-adds (16 lanes of 4 bytes), as in the tiles. Inline assembly, so
// that this file needs no AVX-512 flags; registered only where the avx512 table runs.
void BM_VpdpbusdPeak(benchmark::State& state) {
  constexpr int64_t kRounds = 1000;
  constexpr int64_t kPerRound = 12;
  for (auto _ : state) {
    int64_t rounds = kRounds;
    __asm__ volatile(
        "vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n\t"
        "vpxord %%zmm2, %%zmm2, %%zmm2\n\tvpxord %%zmm3, %%zmm3, %%zmm3\n\t"
        "vpxord %%zmm4, %%zmm4, %%zmm4\n\tvpxord %%zmm5, %%zmm5, %%zmm5\n\t"
        "vpxord %%zmm6, %%zmm6, %%zmm6\n\tvpxord %%zmm7, %%zmm7, %%zmm7\n\t"
        "vpxord %%zmm8, %%zmm8, %%zmm8\n\tvpxord %%zmm9, %%zmm9, %%zmm9\n\t"
        "vpxord %%zmm10, %%zmm10, %%zmm10\n\tvpxord %%zmm11, %%zmm11, %%zmm11\n\t"
        "vpternlogd $0xff, %%zmm12, %%zmm12, %%zmm12\n\t"
        "vpternlogd $0xff, %%zmm13, %%zmm13, %%zmm13\n\t"
        "1:\n\t"
        "vpdpbusd %%zmm12, %%zmm13, %%zmm0\n\tvpdpbusd %%zmm12, %%zmm13, %%zmm1\n\t"
        "vpdpbusd %%zmm12, %%zmm13, %%zmm2\n\tvpdpbusd %%zmm12, %%zmm13, %%zmm3\n\t"
        "vpdpbusd %%zmm12, %%zmm13, %%zmm4\n\tvpdpbusd %%zmm12, %%zmm13, %%zmm5\n\t"
        "vpdpbusd %%zmm12, %%zmm13, %%zmm6\n\tvpdpbusd %%zmm12, %%zmm13, %%zmm7\n\t"
        "vpdpbusd %%zmm12, %%zmm13, %%zmm8\n\tvpdpbusd %%zmm12, %%zmm13, %%zmm9\n\t"
        "vpdpbusd %%zmm12, %%zmm13, %%zmm10\n\tvpdpbusd %%zmm12, %%zmm13, %%zmm11\n\t"
        "dec %0\n\t"
        "jnz 1b\n\t"
        "vzeroupper"
        : "+r"(rounds)
        :
        : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13");
  }
  state.counters["MAC/s"] = benchmark::Counter(static_cast<double>(kRounds * kPerRound * 64),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void RegisterAll() {
  if (Avx512Kernels() != nullptr)
    benchmark::RegisterBenchmark("peak/vpdpbusd/avx512", BM_VpdpbusdPeak);
  const KernelTable* tables[] = {&ScalarKernels(), Avx2Kernels(), AvxVnniKernels(),
                                 Avx512Kernels()};
  const std::pair<Format, const char*> formats[] = {{Format::kF32, "f32"},
                                                    {Format::kF16, "f16"},
                                                    {Format::kQ8_0, "q8_0"},
                                                    {Format::kQ4_0, "q4_0"}};
  const std::pair<int64_t, int64_t> shapes[] = {{576, 576}, {1536, 576}, {576, 1536}};
  for (const KernelTable* k : tables) {
    if (k == nullptr || std::strcmp(k->isa, "scalar") == 0) continue;  // scalar: minutes
    for (const auto& [f, fname] : formats) {
      for (const auto& [rows, n] : shapes) {
        const std::string shape = std::to_string(rows) + "x" + std::to_string(n);
        benchmark::RegisterBenchmark(
            ("gemm_" + std::string(fname) + "/" + k->isa + "/" + shape).c_str(),
            [k, f = f, rows = rows, n = n](benchmark::State& s) { BM_Gemm(s, k, f, rows, n); });
        benchmark::RegisterBenchmark(
            ("dot_" + std::string(fname) + "/" + k->isa + "/" + shape).c_str(),
            [k, f = f, rows = rows, n = n](benchmark::State& s) { BM_Dot(s, k, f, rows, n); });
      }
    }
    for (const auto& [rows, n] : shapes) {
      const std::string shape = std::to_string(rows) + "x" + std::to_string(n);
      for (const int64_t tokens : {int64_t{1}, int64_t{8}, kTokens}) {
        benchmark::RegisterBenchmark(
            ("dots_q8_0/" + std::string(k->isa) + "/" + shape + "/" + std::to_string(tokens))
                .c_str(),
            [k, rows = rows, n = n, tokens](benchmark::State& s) {
              BM_GemmFn(s, k->dots_q8_0, Format::kQ8_0, rows, n, tokens);
            });
      }
      benchmark::RegisterBenchmark(("gemm8_q8_0/" + std::string(k->isa) + "/" + shape).c_str(),
                                   [k, rows = rows, n = n](benchmark::State& s) {
                                     BM_GemmFn(s, k->gemm_q8_0, Format::kQ8_0, rows, n, 8);
                                   });
    }
  }
}

}  // namespace
}  // namespace agentry::kernels

int main(int argc, char** argv) {
  agentry::kernels::RegisterAll();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
