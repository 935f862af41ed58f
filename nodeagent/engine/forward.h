// nodeagent/engine/forward.h — the forward pass, over a batch of sequences at once.
//
//   ForwardBuffers buffers;
//   std::vector<float> logits_a, logits_b;
//   const int32_t next_a = ..., next_b = ...;
//   std::vector<BatchSequence> step = {{&context_a, {&next_a, 1}, false, &logits_a},
//                                      {&context_b, {&next_b, 1}, false, &logits_b}};
//   Status s = EvalBatch(step, &pool, &buffers);
//
// Continuous batching. The node daemon runs one decode step of every session on a model (a
// token each) and a chunk of a prefill as one pass: the linears multiply all the batch's rows
// at once, so each weight is read from memory once per step instead of once per session and
// the pool's threads wake once per operation; RoPE, the KV writes and attention use each
// sequence's own cache and positions.
//
// The same bits as alone. Each sequence's logits are bit for bit those of Context::Eval of the
// same tokens on its own: the per-row steps (norms, RoPE, SiLU, residuals) see only their row,
// MatMul computes each sequence's rows as it would for that sequence alone (its segments), and
// attention reads only the sequence's own cache. So a session's tokens never depend on which
// other sessions share its steps, and tests can demand identity.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/quants.h"
#include "nodeagent/engine/context.h"
#include "nodeagent/engine/matmul.h"
#include "nodeagent/engine/thread_pool.h"

namespace agentry::engine {

// One sequence's part of a batch: the tokens appended to its context's KV cache, and where
// its logits go (n_vocab values for the last token, or for every token in order when
// `all_logits`).
struct BatchSequence {
  Context* context = nullptr;
  std::span<const int32_t> tokens;
  bool all_logits = false;
  std::vector<float>* logits = nullptr;
};

// A batch's activations, [rows][...] with the sequences' rows one after another; kept between
// calls (they only grow) so the decode loop allocates nothing.
struct ForwardBuffers {
  std::vector<float> x, xn, q, k, v, attn, gate, up, ffn;
  std::vector<float> rope_cos, rope_sin;  // per row, its position's angles
  std::vector<float> norm_w;              // one norm weight vector, dequantized
  std::vector<float> bias;                // one attention bias, dequantized
  std::vector<uint16_t> q16;              // q rounded to F16 for the K·Q product
  std::vector<float> logits;              // a batch's logits rows, before they are handed out
  std::vector<int64_t> first_row, n_past, segments, logit_rows;  // per sequence
  std::vector<int64_t> row_seq, row_pos;  // per row: its sequence, its position there
  struct Chunk {
    int64_t seq, t0, nt;  // tokens [t0, t0 + nt) of sequence `seq`
  };
  std::vector<Chunk> chunks;  // attention over F16 caches: the sequences' chunks of tokens
  struct AttentionItem {
    int64_t chunk, head0, heads;  // query heads [head0, head0 + heads) of chunks[chunk]
  };
  std::vector<AttentionItem> attention_items;  // attention over F16 caches: the work items
  std::vector<int64_t> q8_rows;                // attention over Q8_0 caches: the rows
  MatMulScratch matmul;
  struct Attention {
    std::vector<float> scores;            // one work item's [tokens or heads][keys]
    std::vector<uint16_t> probs16;        // the same, softmaxed and rounded to F16
    std::vector<float> out;               // Q8_0 cache: one head's output
    std::vector<kernels::block_q8_0> q8;  // Q8_0 cache: the query, quantized
  };
  std::vector<Attention> attention;  // one per pool thread
};

// Appends each sequence's tokens to its context and fills its logits. Every sequence is checked
// before anything runs, so an error leaves every cache as it was: InvalidArgument for an empty
// batch or sequence, a context named twice, contexts of different models, a token id outside
// the vocabulary or a cache type the model's heads do not suit (KvCache::CheckType);
// OutOfRange when a sequence's tokens do not fit in its context. With more than one sequence
// the message starts "sequence i: ".
Status EvalBatch(std::span<const BatchSequence> batch, ThreadPool* pool, ForwardBuffers* buffers);

}  // namespace agentry::engine
