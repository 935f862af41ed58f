#include "nodeagent/engine/matmul.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kBF16:
      return true;
    default:
      return false;
  }
}

namespace {

// What activations become before they meet a weight type (llama.cpp's vec_dot_type).
enum class DotType { kF32, kF16, kQ8_0, kQ8_1, kQ8_K, kBF16 };

DotType DotTypeOf(GgmlType type) {
  switch (type) {
    case GgmlType::kF16:
      return DotType::kF16;
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0:
      return DotType::kQ8_0;
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1:
      return DotType::kQ8_1;
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return DotType::kQ8_K;
    case GgmlType::kBF16:
      return DotType::kBF16;
    default:
      return DotType::kF32;
  }
}

uint64_t ActivationRowBytes(DotType type, int64_t n) {
  switch (type) {
    case DotType::kF16:
    case DotType::kBF16:
      return static_cast<uint64_t>(n) * sizeof(uint16_t);
    case DotType::kQ8_0:
      return static_cast<uint64_t>(n / kernels::kQK8_0) * sizeof(block_q8_0);
    case DotType::kQ8_1:
      return static_cast<uint64_t>(n / kernels::kQK8_0) * sizeof(kernels::block_q8_1);
    case DotType::kQ8_K:
      return static_cast<uint64_t>(n / kernels::kQK_K) * sizeof(kernels::block_q8_K);
    case DotType::kF32:
      break;
  }
  return static_cast<uint64_t>(n) * sizeof(float);
}

void ConvertRow(DotType type, const kernels::KernelTable& k, const float* x, int64_t n,
                uint8_t* out) {
  switch (type) {
    case DotType::kF16:
      k.convert_row_fp32_to_fp16(x, reinterpret_cast<uint16_t*>(out), n);
      return;
    case DotType::kQ8_0:
      k.quantize_row_q8_0(x, reinterpret_cast<block_q8_0*>(out), n);
      return;
    case DotType::kQ8_1:
      k.quantize_row_q8_1(x, reinterpret_cast<kernels::block_q8_1*>(out), n);
      return;
    case DotType::kQ8_K:
      k.quantize_row_q8_K(x, reinterpret_cast<kernels::block_q8_K*>(out), n);
      return;
    case DotType::kBF16:
      k.convert_row_fp32_to_bf16(x, reinterpret_cast<uint16_t*>(out), n);
      return;
    case DotType::kF32:
      return;
  }
}

float Dot(GgmlType type, const kernels::KernelTable& k, const uint8_t* w, const uint8_t* x,
          int64_t n) {
  switch (type) {
    case GgmlType::kF32:
      return k.vec_dot_f32(reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(x), n);
    case GgmlType::kF16:
      return k.vec_dot_f16(reinterpret_cast<const uint16_t*>(w),
                           reinterpret_cast<const uint16_t*>(x), n);
    case GgmlType::kQ8_0:
      return k.vec_dot_q8_0_q8_0(reinterpret_cast<const block_q8_0*>(w),
                                 reinterpret_cast<const block_q8_0*>(x), n);
    case GgmlType::kQ4_0:
      return k.vec_dot_q4_0_q8_0(reinterpret_cast<const block_q4_0*>(w),
                                 reinterpret_cast<const block_q8_0*>(x), n);
    case GgmlType::kQ4_1:
      return k.vec_dot_q4_1_q8_1(reinterpret_cast<const kernels::block_q4_1*>(w),
                                 reinterpret_cast<const kernels::block_q8_1*>(x), n);
    case GgmlType::kQ5_0:
      return k.vec_dot_q5_0_q8_0(reinterpret_cast<const kernels::block_q5_0*>(w),
                                 reinterpret_cast<const block_q8_0*>(x), n);
    case GgmlType::kQ5_1:
      return k.vec_dot_q5_1_q8_1(reinterpret_cast<const kernels::block_q5_1*>(w),
                                 reinterpret_cast<const kernels::block_q8_1*>(x), n);
    case GgmlType::kQ4_K:
      return k.vec_dot_q4_K_q8_K(reinterpret_cast<const kernels::block_q4_K*>(w),
                                 reinterpret_cast<const kernels::block_q8_K*>(x), n);
    case GgmlType::kQ5_K:
      return k.vec_dot_q5_K_q8_K(reinterpret_cast<const kernels::block_q5_K*>(w),
                                 reinterpret_cast<const kernels::block_q8_K*>(x), n);
    case GgmlType::kQ6_K:
      return k.vec_dot_q6_K_q8_K(reinterpret_cast<const kernels::block_q6_K*>(w),
                                 reinterpret_cast<const kernels::block_q8_K*>(x), n);
    case GgmlType::kBF16:
      return k.vec_dot_bf16(reinterpret_cast<const uint16_t*>(w),
                            reinterpret_cast<const uint16_t*>(x), n);
    default:
      return 0.0f;  // BindWeight refuses other types
  }
}

kernels::GemmFn GemmOf(GgmlType type, const kernels::KernelTable& k) {
  switch (type) {
    case GgmlType::kF16:
      return k.gemm_f16;
    case GgmlType::kQ8_0:
      return k.gemm_q8_0;
    case GgmlType::kQ4_0:
      return k.gemm_q4_0;
    case GgmlType::kQ4_1:
      return k.gemm_q4_1;
    case GgmlType::kQ5_0:
      return k.gemm_q5_0;
    case GgmlType::kQ5_1:
      return k.gemm_q5_1;
    case GgmlType::kQ4_K:
      return k.gemm_q4_K;
    case GgmlType::kQ5_K:
      return k.gemm_q5_K;
    case GgmlType::kQ6_K:
      return k.gemm_q6_K;
    case GgmlType::kBF16:
      return k.gemm_bf16;
    default:
      return k.gemm_f32;
  }
}

// The longest segment that takes `type`'s decode path instead of its gemm. Q8_0's decode
// tiles (kernels.h's dots_q8_0) beat its gemm at 8 tokens on every table (bench/kernels_bench:
// dots_q8_0/ISA/SHAPE/8 against gemm8_q8_0/ISA/SHAPE), and the AVX-512 gemm's tiles are 16
// tokens wide, so a segment of two paid for sixteen: a step in which eight sessions began
// their turns with last turn's sampled token and the next cost several decode steps. A
// segment's length alone decides its path, so its bits never depend on the other segments
// of its step. Other types: one token.
int64_t DecodeSegmentTokens(GgmlType type) { return type == GgmlType::kQ8_0 ? 8 : 1; }

// Calls fn(first_token, run) for each run of consecutive segments of at most `longest`
// tokens each: consecutive rows of the activations and of the outputs, `run` of them.
template <typename Fn>
void ForEachDecodeRun(std::span<const int64_t> segments, int64_t longest, Fn fn) {
  int64_t first = 0;
  for (size_t i = 0; i < segments.size();) {
    if (segments[i] > longest) {
      first += segments[i++];
      continue;
    }
    int64_t run = 0;
    while (i < segments.size() && segments[i] <= longest) run += segments[i++];
    fn(first, run);
    first += run;
  }
}

// Several one-token segments at once, each output bit for bit the type's vec_dot (kernels.h):
// the K-quant gemms, which equal their vec_dot on every table. Null for the other types, whose
// gemms sum in another order on some table (engine forward_test found Q5_0 on AVX2, Q4_1 and
// Q5_1 on AVX-512): their tokens take one vec_dot each. Q8_0 has its own decode tiles (MatMul).
kernels::GemmFn DecodeBatchOf(GgmlType type, const kernels::KernelTable& k) {
  switch (type) {
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return GemmOf(type, k);
    default:
      return nullptr;
  }
}

}  // namespace

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
    case GgmlType::kQ4_1:
      kernels::dequantize_row_q4_1(reinterpret_cast<const kernels::block_q4_1*>(p), out, w.in);
      return;
    case GgmlType::kQ5_0:
      kernels::dequantize_row_q5_0(reinterpret_cast<const kernels::block_q5_0*>(p), out, w.in);
      return;
    case GgmlType::kQ5_1:
      kernels::dequantize_row_q5_1(reinterpret_cast<const kernels::block_q5_1*>(p), out, w.in);
      return;
    case GgmlType::kQ4_K:
      kernels::dequantize_row_q4_K(reinterpret_cast<const kernels::block_q4_K*>(p), out, w.in);
      return;
    case GgmlType::kQ5_K:
      kernels::dequantize_row_q5_K(reinterpret_cast<const kernels::block_q5_K*>(p), out, w.in);
      return;
    case GgmlType::kQ6_K:
      kernels::dequantize_row_q6_K(reinterpret_cast<const kernels::block_q6_K*>(p), out, w.in);
      return;
    case GgmlType::kBF16:
      kernels::dequantize_row_bf16(reinterpret_cast<const uint16_t*>(p), out, w.in);
      return;
    default:
      // The belief: BindWeight refuses every type IsSupportedWeightType does not list, and
      // each listed type has a case above. Leaving `out` unwritten would be silent garbage.
      std::fprintf(stderr, "agentry engine: DequantizeRow: no case for type %u\n",
                   static_cast<unsigned>(w.type));
      std::abort();
  }
}

void MatMul(const Weight& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool,
            MatMulScratch* scratch) {
  const int64_t one[] = {n_tokens};
  MatMul(w, x, one, y, pool, scratch);
}

namespace {

// The activations converted once to `dot_type` (llama.cpp's vec_dot_type), in `buffer`; F32
// ones are used as they are.
const uint8_t* ConvertActivations(DotType dot_type, const float* x, int64_t n_tokens, int64_t in,
                                  ThreadPool* pool, std::vector<uint8_t>* buffer) {
  if (dot_type == DotType::kF32) return reinterpret_cast<const uint8_t*>(x);
  const kernels::KernelTable& k = kernels::Kernels();
  const uint64_t x_row_bytes = ActivationRowBytes(dot_type, in);
  buffer->resize(x_row_bytes * n_tokens);
  uint8_t* converted = buffer->data();
  auto convert = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      ConvertRow(dot_type, k, x + t * in, in, converted + t * x_row_bytes);
    }
  };
  // A decode step's few rows (a batch's one token per session) convert in less time than
  // waking the pool takes.
  constexpr int64_t kInlineValues = 16 << 10;
  if (n_tokens * in <= kInlineValues) {
    convert(0, n_tokens);
  } else {
    pool->Run([&](int thread, int n_threads) {
      int64_t t0 = 0;
      int64_t t1 = 0;
      ThreadPool::Split(n_tokens, thread, n_threads, &t0, &t1);
      convert(t0, t1);
    });
  }
  return converted;
}

// Rows [r0, r1) of y = w · x for every segment: one thread's share of a MatMul. Threads own
// whole groups of kGemmRows rows, a segment longer than DecodeSegmentTokens goes through the
// gemm in chunks of whole kGemmTokens groups from its first token, and the shorter ones
// through the decode path, so every dot product is computed the same way whatever the thread
// count and whatever the other segments.
void MultiplyRows(const Weight& w, const uint8_t* xb, std::span<const int64_t> segments, float* y,
                  int64_t r0, int64_t r1) {
  if (r0 >= r1) return;
  const kernels::KernelTable& k = kernels::Kernels();
  const uint64_t x_row_bytes = ActivationRowBytes(DotTypeOf(w.type), w.in);
  const kernels::GemmFn gemm = GemmOf(w.type, k);
  constexpr int64_t kTokenChunk = 16 * kernels::kGemmTokens;  // activations stay in L2
  const uint8_t* rows = w.data + static_cast<uint64_t>(r0) * w.row_bytes;
  const int64_t decode_tokens = DecodeSegmentTokens(w.type);
  int64_t first = 0;  // the segment's first token
  bool any_decode = false;
  for (int64_t n : segments) {
    any_decode |= n <= decode_tokens;
    for (int64_t t0 = 0; n > decode_tokens && t0 < n; t0 += kTokenChunk) {
      const int64_t nt = std::min(kTokenChunk, n - t0);
      const int64_t t = first + t0;
      gemm(rows, w.row_bytes, xb + static_cast<uint64_t>(t) * x_row_bytes, x_row_bytes,
           y + t * w.out + r0, w.out, w.in, r1 - r0, nt);
    }
    first += n;
  }
  if (!any_decode) return;
  if (w.type == GgmlType::kQ8_0) {
    // The Q8_0 decode tiles stream each block of 16 rows once for all of a run's tokens
    // (kernels.h), so they take the thread's rows whole; a token alone goes through them
    // too, as its bits must be those it gets in a batch, and so does a short segment.
    ForEachDecodeRun(segments, decode_tokens, [&](int64_t first_token, int64_t run) {
      k.dots_q8_0(rows, w.row_bytes, xb + static_cast<uint64_t>(first_token) * x_row_bytes,
                  x_row_bytes, y + first_token * w.out + r0, w.out, w.in, r1 - r0, run);
    });
    return;
  }
  // One-token segments meet the rows a block at a time, the block small enough to stay in L1
  // while every such token passes over it; whole groups of kGemmRows, so the tiles' pairs of
  // rows do not leave one over per block.
  constexpr uint64_t kDecodeBlockBytes = 16 << 10;
  const kernels::GemmFn decode_batch = DecodeBatchOf(w.type, k);
  const int64_t block_rows =
      std::max<int64_t>(
          1, static_cast<int64_t>(kDecodeBlockBytes / w.row_bytes) / kernels::kGemmRows) *
      kernels::kGemmRows;
  for (int64_t b0 = r0; b0 < r1; b0 += block_rows) {
    const int64_t b1 = std::min(r1, b0 + block_rows);
    const uint8_t* block = w.data + static_cast<uint64_t>(b0) * w.row_bytes;
    ForEachDecodeRun(segments, decode_tokens, [&](int64_t first_token, int64_t run) {
      const uint8_t* xt = xb + static_cast<uint64_t>(first_token) * x_row_bytes;
      float* yt = y + first_token * w.out;
      if (decode_batch != nullptr && run > 1) {  // one token alone: vec_dot is faster
        decode_batch(block, w.row_bytes, xt, x_row_bytes, yt + b0, w.out, w.in, b1 - b0, run);
        return;
      }
      for (int64_t j = 0; j < run; ++j) {
        for (int64_t o = b0; o < b1; ++o) {
          yt[j * w.out + o] =
              Dot(w.type, k, block + (o - b0) * w.row_bytes, xt + j * x_row_bytes, w.in);
        }
      }
    });
  }
}

// This thread's whole groups of kGemmRows rows of w.
void ThreadRows(const Weight& w, int thread, int n_threads, int64_t* r0, int64_t* r1) {
  const int64_t n_groups = (w.out + kernels::kGemmRows - 1) / kernels::kGemmRows;
  int64_t g0 = 0;
  int64_t g1 = 0;
  ThreadPool::Split(n_groups, thread, n_threads, &g0, &g1);
  *r0 = g0 * kernels::kGemmRows;
  *r1 = std::min(w.out, g1 * kernels::kGemmRows);
}

int64_t TokenCount(std::span<const int64_t> segments) {
  int64_t n = 0;
  for (int64_t s : segments) n += s;
  return n;
}

}  // namespace

void MatMul(const Weight& w, const float* x, std::span<const int64_t> segments, float* y,
            ThreadPool* pool, MatMulScratch* scratch) {
  const MatMulOutput one[] = {{&w, y}};
  MatMulShared(one, x, segments, pool, scratch);
}

void MatMulShared(std::span<const MatMulOutput> outputs, const float* x,
                  std::span<const int64_t> segments, ThreadPool* pool, MatMulScratch* scratch) {
  if (outputs.empty()) return;
  const Weight& first = *outputs[0].w;
  for (const MatMulOutput& o : outputs) {
    if (o.w->in != first.in || DotTypeOf(o.w->type) != DotTypeOf(first.type)) {
      // Activations of another dot type: each weight on its own.
      for (const MatMulOutput& each : outputs) {
        MatMulShared({&each, 1}, x, segments, pool, scratch);
      }
      return;
    }
  }
  const uint8_t* xb = ConvertActivations(DotTypeOf(first.type), x, TokenCount(segments), first.in,
                                         pool, &scratch->converted);
  pool->Run([&](int thread, int n_threads) {
    for (const MatMulOutput& o : outputs) {
      int64_t r0 = 0;
      int64_t r1 = 0;
      ThreadRows(*o.w, thread, n_threads, &r0, &r1);
      MultiplyRows(*o.w, xb, segments, o.y, r0, r1);
    }
  });
}

}  // namespace agentry::engine
