// train/transformer.h — forward and backward pass of the llama-architecture model that
// `agentry train` learns, on the engine's thread pool and kernels.
//
// A batch is a stream of whole conversations packed back to back. Each token attends only
// to earlier tokens of its own conversation and takes its RoPE position from that
// conversation's start, so a packed batch computes exactly what the engine computes for
// each conversation alone. The loss is the mean cross-entropy over the positions that have
// a target (the assistant's tokens); logits are computed only at those positions.
//
// Every matrix product is a block of axpys (kernels' axpy_block_f32): each output is a chain
// of fused multiply-adds in a fixed order, so a step gives the same bits for any number of
// threads and on every kernel table (AVX2, AVX-512 and scalar alike), as does the softmax.
// A model therefore trains to the same bits on any x86 CPU, and the model measured in
// docs/agent-model.md is the one every machine reproduces. The forward products run over
// transposed operands, which the step makes first:
//   Y = X·Wᵀ       as Y[t] = sum over i of X[t][i] Wᵀ[i]    (Wᵀ: the weights, transposed)
//   S = Q·Kᵀ       as S[t] = sum over d of Q[t][d] Kᵀ[d]    (Kᵀ: the keys, transposed)
// and the backward products over the operands as stored:
//   dX = dY·W      as dX[t] = sum over o of dY[t][o] W[o]
//   dW = dYᵀ·X     as dW[o] = sum over t of dY[t][o] X[t]
//
//   Transformer model(config, &pool);
//   double loss = model.Step(batch, params.data(), grads.data());  // grads overwritten
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "train/model_config.h"

#include "kernels/cpu/kernels.h"
#include "nodeagent/engine/thread_pool.h"

namespace agentry::train {

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;  // position within the token's conversation
  std::vector<int32_t> doc_begin;  // index in `tokens` of the conversation's first token
  std::vector<int32_t> targets;    // the token to predict after this one, or -1: no loss

  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
  int64_t n_targets() const;
  // Appends one conversation; `loss[i]` says whether tokens[i + 1] is learned.
  void Append(const std::vector<int32_t>& conversation, const std::vector<uint8_t>& loss);
};

class Transformer {
 public:
  // `kernels` defaults to the table this CPU runs fastest; every table gives the same bits.
  Transformer(const ModelConfig& config, engine::ThreadPool* pool,
              const kernels::KernelTable& kernels = kernels::Kernels());

  // Mean cross-entropy over the batch's targets (0 when it has none). With `grads`
  // non-null, also writes d loss / d params there (the whole vector is overwritten).
  // Token ids must be < vocab (the batcher guarantees it).
  double Step(const Batch& batch, const float* params, float* grads);

  const ModelConfig& config() const { return config_; }
  const ParameterLayout& layout() const { return layout_; }

 private:
  struct LayerCache {
    std::vector<float> x_in;     // [T][D] the layer's input (residual stream)
    std::vector<float> rstd1;    // [T]
    std::vector<float> xn1;      // [T][D] normed input
    std::vector<float> q, k, v;  // [T][D], [T][Dkv], [T][Dkv], q and k after RoPE
    std::vector<float> probs;    // attention probabilities, a square per (conversation, head)
    std::vector<float> attn;     // [T][D] heads' outputs, concatenated
    std::vector<float> x_mid;    // [T][D] after the attention residual
    std::vector<float> rstd2;
    std::vector<float> xn2;
    std::vector<float> gate, up, act;  // [T][F] gate and up projections, SiLU(gate) * up
    std::vector<float> exp_neg_gate;   // [T][F] e^-gate, which the backward pass reuses
  };

  void Forward(const Batch& batch, const float* params);
  double Loss(const Batch& batch, bool want_grad);  // after Forward
  void Backward(const Batch& batch, const float* params, float* grads);

  // Queries [q0, q1) of conversation `doc` (transformer.cc: the attention squares).
  struct AttnBlock {
    int64_t doc, q0, q1;
  };
  // docs_, square_offset_ and attn_blocks_ (ForTasks runs the blocks) for the batch.
  void PlanAttention(const Batch& batch);
  // Conversation `doc`: its first token, its length, its squares' row stride (padded), and
  // where its first head's square starts in probs (head h's is h * len * ld after it).
  struct DocSquares {
    int64_t begin, len, ld, offset;
  };
  DocSquares Squares(int64_t doc) const;
  // fn(task) for every task < n, each thread taking the next task when it finishes one: for
  // pieces of work that differ in cost, or threads that differ in speed (two vCPUs of a busy
  // host can), where a split fixed in advance leaves one thread waiting. Every task's result
  // is the same whichever thread runs it.
  void ForTasks(int64_t n, const std::function<void(int64_t)>& fn);
  // Over the conversations and blocks PlanAttention laid out for the batch.
  void AttentionForward(LayerCache* c);
  void AttentionBackward(const LayerCache& c, const float* d_attn, float* dq, float* dk, float* dv);
  void RmsNormForward(const float* x, const float* w, float* rstd, float* out);
  // dx = (or +=, with accumulate) the gradient through y = x * rstd * w; dw = the gain's.
  void RmsNormBackward(const float* x, const float* w, const float* rstd, const float* dy,
                       float* dx, float* dw, bool accumulate);
  // cos and sin of every token's RoPE angles, [n][head_dim / 2], for Rope.
  void RopeTable(const Batch& batch);
  // Rotates each head of x [n][n_heads * head_dim] by the table's angles (back, if inverse).
  void Rope(float* x, int64_t n_heads, bool inverse);

  // wt_ = every weight matrix of params, transposed, at the matrix's own offset.
  void TransposeWeights(const float* params);
  // y[T][out] = x[T][in] · W[out][in]ᵀ, from w_t = Wᵀ [in][out] (in wt_).
  void Linear(const float* w_t, int64_t in, int64_t out, const float* x, int64_t n, float* y);
  // Rows r < rows of y (ldy apart, n wide) += sum over s < n_x of a[r * a_row + s * a_step]
  // times row s of x (ldx apart), zeroed first when asked: axpy_block_f32 with the rows
  // split across the pool.
  void AxpyRows(float* y, int64_t ldy, const float* a, int64_t a_row, int64_t a_step,
                const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t rows, bool zero_first);
  // dx[T][in] (= or +=) dy[T][out] · W[out][in]
  void LinearBackwardInput(const float* w, int64_t in, int64_t out, const float* dy, int64_t n,
                           float* dx, bool accumulate);
  // dw[out][in] += dy[T][out]ᵀ · x[T][in]
  void LinearBackwardWeight(const float* dy, const float* x, int64_t in, int64_t out, int64_t n,
                            float* dw);

  const ModelConfig config_;
  const ParameterLayout layout_;
  engine::ThreadPool* pool_;
  const kernels::KernelTable& kt_;

  std::vector<float> wt_;   // the weight matrices transposed (TransposeWeights)
  std::vector<float> kvt_;  // one layer's keys (forward) or values (backward), [Dkv][kvt_ld_]
  int64_t kvt_ld_ = 0;

  int64_t n_ = 0;                       // tokens in the current batch
  std::vector<int64_t> docs_;           // each conversation's first token, then n_
  std::vector<int64_t> square_offset_;  // start of each conversation's squares in probs
  std::vector<AttnBlock> attn_blocks_;
  std::vector<float> rope_cos_, rope_sin_;
  std::vector<LayerCache> layers_;
  std::vector<float> x_final_, rstd_final_, xf_;  // final norm input, its rstd, output
  std::vector<int32_t> loss_rows_;                // batch positions that have a target
  std::vector<float> xf_loss_;                    // xf at those positions [N][D]
  std::vector<float> logits_;                     // [N][logits_ld_], then d loss / d logits
  std::vector<float> embd_t_;                     // the token embedding transposed, [D][logits_ld_]
  int64_t logits_ld_ = 0;                         // the vocabulary, padded (UnaliasedStride)
  std::vector<double> row_loss_;                  // per target position, for a fixed-order sum
  // Backward scratch.
  std::vector<float> dx_, dbig_, dq_, dk_, dv_, dattn_, dxf_rows_, dxf_, dact_, dgate_, dup_, dxn_;
};

}  // namespace agentry::train
