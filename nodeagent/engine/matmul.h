// nodeagent/engine/matmul.h — weight matrices straight from the GGUF mapping, multiplied
// by activations on the thread pool.
//
// A weight W of GGUF dims [in, out] is `out` rows of `in` elements in its file type. For
// a batch of activations X [n_tokens][in], MatMul computes Y[t][o] = W[o] · X[t]:
// activations are first converted to the weight type's dot type (F16 for F16, BF16 for
// BF16, Q8_0 for Q8_0 and Q4_0, Q8_K for the K-quants), then each thread takes a slice of rows and
// multiplies each row by every token, so a weight row is read from memory once per batch.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/thread_pool.h"

namespace agentry::engine {

struct Weight {
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;
  int64_t in = 0;   // elements per row (GGUF dims[0])
  int64_t out = 0;  // rows (GGUF dims[1])
  uint64_t row_bytes = 0;
};

// True when MatMul and DequantizeRow support `type`.
bool IsSupportedWeightType(GgmlType type);

// Binds `info` from `file` as a matrix (1-D tensors are one row). Types MatMul cannot use
// are InvalidArgument naming the tensor and its type.
StatusOr<Weight> BindWeight(const GgufFile& file, const GgufTensorInfo& info);

// Row `row` of `w` as floats (embedding lookup, norms and biases).
void DequantizeRow(const Weight& w, int64_t row, float* out);

// Reusable buffers for converted activations, so the decode loop allocates nothing.
struct MatMulScratch {
  std::vector<uint8_t> converted;
};

// y[t * w.out + o] = dot(w row o, x[t * w.in ...]) for t in [0, n_tokens).
void MatMul(const Weight& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool,
            MatMulScratch* scratch);

// The same over several sequences' rows at once (continuous batching): x and y hold
// `segments[0]` rows, then `segments[1]`, and so on, and each segment's outputs are bit for bit
// what MatMul of that segment alone gives. Every weight row is still read from memory once
// for all of them: a thread takes a slice of rows and multiplies it by each segment in turn,
// the longer segments in register-tiled blocks and the one-token segments (decode steps) one
// dot product each while the slice is in cache.
void MatMul(const Weight& w, const float* x, std::span<const int64_t> segments, float* y,
            ThreadPool* pool, MatMulScratch* scratch);

// Several weights applied to the same activations (a layer's Q, K and V; gate and up), each
// output bit for bit what MatMul of its weight gives: the activations are converted once and
// all the weights' rows share one parallel section, so a decode step wakes the pool once
// instead of once per weight. Weights whose activations convert differently (another dot
// type) simply run one MatMul each.
struct MatMulOutput {
  const Weight* w;
  float* y;
};
void MatMulShared(std::span<const MatMulOutput> outputs, const float* x,
                  std::span<const int64_t> segments, ThreadPool* pool, MatMulScratch* scratch);

}  // namespace agentry::engine
