#include "nodeagent/engine/matmul.h"

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
  pool->Run([&](int thread, int n_threads) {
    int64_t begin = 0;
    int64_t end = 0;
    ThreadPool::Split(w.out, thread, n_threads, &begin, &end);
    for (int64_t o = begin; o < end; ++o) {
      const uint8_t* row = w.data + static_cast<uint64_t>(o) * w.row_bytes;
      for (int64_t t = 0; t < n_tokens; ++t) {
        const uint8_t* xt = xb + static_cast<uint64_t>(t) * x_row_bytes;
        float v = 0;
        switch (w.type) {
          case GgmlType::kF32:
            v = k.vec_dot_f32(reinterpret_cast<const float*>(row),
                              reinterpret_cast<const float*>(xt), w.in);
            break;
          case GgmlType::kF16:
            v = k.vec_dot_f16(reinterpret_cast<const uint16_t*>(row),
                              reinterpret_cast<const uint16_t*>(xt), w.in);
            break;
          case GgmlType::kQ8_0:
            v = k.vec_dot_q8_0_q8_0(reinterpret_cast<const block_q8_0*>(row),
                                    reinterpret_cast<const block_q8_0*>(xt), w.in);
            break;
          case GgmlType::kQ4_0:
            v = k.vec_dot_q4_0_q8_0(reinterpret_cast<const block_q4_0*>(row),
                                    reinterpret_cast<const block_q8_0*>(xt), w.in);
            break;
          default:
            break;
        }
        y[t * w.out + o] = v;
      }
    }
  });
}

}  // namespace agentry::engine
