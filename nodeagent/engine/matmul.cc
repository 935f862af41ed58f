#include "nodeagent/engine/matmul.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/fp16.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/quants.h"

namespace agentry::engine {

using kernels::block_q4_0;
using kernels::block_q8_0;

bool IsSupportedWeightType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
      return true;
    default:
      return false;
  }
}

StatusOr<Weight> BindWeight(const GgufFile& file, const GgufTensorInfo& info) {
  if (!IsSupportedWeightType(info.type)) {
    return InvalidArgumentError(std::string(info.name) + ": weight type " +
                                GgmlTypeDescribe(static_cast<uint32_t>(info.type)) +
                                " is not supported by the engine yet");
  }
  if (info.n_dims > 2) {
    return InvalidArgumentError(std::string(info.name) + ": expected a matrix, got " +
                                std::to_string(info.n_dims) + " dimensions");
  }
  Weight w;
  w.type = info.type;
  w.data = file.TensorData(info);
  w.in = static_cast<int64_t>(info.dims[0]);
  w.out = static_cast<int64_t>(info.dims[1]);
  w.row_bytes = info.n_bytes / static_cast<uint64_t>(w.out);
  return w;
}

void DequantizeRow(const Weight& w, int64_t row, float* out) {
  const uint8_t* p = w.data + static_cast<uint64_t>(row) * w.row_bytes;
  switch (w.type) {
    case GgmlType::kF32:
      std::memcpy(out, p, w.in * sizeof(float));
      return;
    case GgmlType::kF16:
      kernels::dequantize_row_fp16(reinterpret_cast<const uint16_t*>(p), out, w.in);
      return;
    case GgmlType::kQ8_0:
      kernels::dequantize_row_q8_0(reinterpret_cast<const block_q8_0*>(p), out, w.in);
      return;
    case GgmlType::kQ4_0:
      kernels::dequantize_row_q4_0(reinterpret_cast<const block_q4_0*>(p), out, w.in);
      return;
    default:
      return;  // BindWeight refuses other types
  }
}

void MatMul(const Weight& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool,
            MatMulScratch* scratch) {
  const kernels::KernelTable& k = kernels::Kernels();
  // Convert the activations once to the dot type of the weight.
  const void* xc = x;
  uint64_t x_row_bytes = static_cast<uint64_t>(w.in) * sizeof(float);
  if (w.type == GgmlType::kF16) {
    x_row_bytes = static_cast<uint64_t>(w.in) * sizeof(uint16_t);
    scratch->converted.resize(x_row_bytes * n_tokens);
    for (int64_t t = 0; t < n_tokens; ++t) {
      k.convert_row_fp32_to_fp16(
          x + t * w.in, reinterpret_cast<uint16_t*>(scratch->converted.data() + t * x_row_bytes),
          w.in);
    }
    xc = scratch->converted.data();
  } else if (w.type == GgmlType::kQ8_0 || w.type == GgmlType::kQ4_0) {
    x_row_bytes = static_cast<uint64_t>(w.in / kernels::kQK8_0) * sizeof(block_q8_0);
    scratch->converted.resize(x_row_bytes * n_tokens);
    for (int64_t t = 0; t < n_tokens; ++t) {
      k.quantize_row_q8_0(
          x + t * w.in, reinterpret_cast<block_q8_0*>(scratch->converted.data() + t * x_row_bytes),
          w.in);
    }
    xc = scratch->converted.data();
  }
  const auto* xb = static_cast<const uint8_t*>(xc);
  if (n_tokens > 1) {
    // Prefill: register-tiled blocks. Threads own whole groups of kGemmRows rows and tokens
    // go in chunks of whole kGemmTokens groups, so every dot product is computed the same
    // way whatever the thread count.
    kernels::GemmFn gemm = k.gemm_f32;
    if (w.type == GgmlType::kF16) gemm = k.gemm_f16;
    if (w.type == GgmlType::kQ8_0) gemm = k.gemm_q8_0;
    if (w.type == GgmlType::kQ4_0) gemm = k.gemm_q4_0;
    const int64_t n_groups = (w.out + kernels::kGemmRows - 1) / kernels::kGemmRows;
    constexpr int64_t kTokenChunk = 16 * kernels::kGemmTokens;  // activations stay in L2
    pool->Run([&](int thread, int n_threads) {
      int64_t g0 = 0;
      int64_t g1 = 0;
      ThreadPool::Split(n_groups, thread, n_threads, &g0, &g1);
      const int64_t r0 = g0 * kernels::kGemmRows;
      const int64_t r1 = std::min(w.out, g1 * kernels::kGemmRows);
      if (r0 >= r1) return;
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
        const int64_t nt = std::min(kTokenChunk, n_tokens - t0);
        gemm(w.data + static_cast<uint64_t>(r0) * w.row_bytes, w.row_bytes,
             xb + static_cast<uint64_t>(t0) * x_row_bytes, x_row_bytes, y + t0 * w.out + r0, w.out,
             w.in, r1 - r0, nt);
      }
    });
    return;
  }
  // Decode: one token, one dot product per row.
  pool->Run([&](int thread, int n_threads) {
    int64_t begin = 0;
    int64_t end = 0;
    ThreadPool::Split(w.out, thread, n_threads, &begin, &end);
    for (int64_t o = begin; o < end; ++o) {
      const uint8_t* row = w.data + static_cast<uint64_t>(o) * w.row_bytes;
      float v = 0;
      switch (w.type) {
        case GgmlType::kF32:
          v = k.vec_dot_f32(reinterpret_cast<const float*>(row), reinterpret_cast<const float*>(xb),
                            w.in);
          break;
        case GgmlType::kF16:
          v = k.vec_dot_f16(reinterpret_cast<const uint16_t*>(row),
                            reinterpret_cast<const uint16_t*>(xb), w.in);
          break;
        case GgmlType::kQ8_0:
          v = k.vec_dot_q8_0_q8_0(reinterpret_cast<const block_q8_0*>(row),
                                  reinterpret_cast<const block_q8_0*>(xb), w.in);
          break;
        case GgmlType::kQ4_0:
          v = k.vec_dot_q4_0_q8_0(reinterpret_cast<const block_q4_0*>(row),
                                  reinterpret_cast<const block_q8_0*>(xb), w.in);
          break;
        default:
          break;
      }
      y[o] = v;
    }
  });
}

}  // namespace agentry::engine
