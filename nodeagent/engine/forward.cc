// nodeagent/engine/forward.cc — see forward.h.
#include "nodeagent/engine/forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "kernels/cpu/kernels.h"

namespace agentry::engine {
namespace {

// out = x / sqrt(mean(x^2) + eps) * weight, per row of n.
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void AddBias(const Weight& bias, int64_t rows, int64_t n, std::vector<float>* tmp, float* y) {
  if (bias.data == nullptr) return;
  tmp->resize(n);
  DequantizeRow(bias, 0, tmp->data());
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += (*tmp)[i];
  }
}

template <typename T>
void Grow(std::vector<T>* v, size_t n) {
  if (v->size() < n) v->resize(n);
}

// Checks batch[i] against the batch's first sequence and the ones before it.
Status CheckSequence(std::span<const BatchSequence> batch, size_t i) {
  const BatchSequence& s = batch[i];
  if (s.context == nullptr) return InvalidArgumentError("no context");
  if (s.logits == nullptr) return InvalidArgumentError("nowhere to put the logits");
  for (size_t j = 0; j < i; ++j) {
    if (batch[j].context == s.context) {
      return InvalidArgumentError("the same context as sequence " + std::to_string(j));
    }
  }
  if (&s.context->model() != &batch[0].context->model()) {
    return InvalidArgumentError("a context of another model than sequence 0's");
  }
  const ModelParams& p = s.context->model().params();
  const KvCache& kv = s.context->kv_cache();
  const auto n = static_cast<int64_t>(s.tokens.size());
  if (n == 0) return InvalidArgumentError("no tokens to evaluate");
  AGENTRY_RETURN_IF_ERROR(KvCache::CheckType(p, kv.type()));
  for (int64_t t = 0; t < n; ++t) {
    if (s.tokens[t] < 0 || s.tokens[t] >= p.n_vocab) {
      return InvalidArgumentError("token " + std::to_string(t) + ": id " +
                                  std::to_string(s.tokens[t]) + " is outside the vocabulary of " +
                                  std::to_string(p.n_vocab));
    }
  }
  if (kv.size() + n > kv.n_ctx()) {
    return OutOfRangeError(std::to_string(n) + " tokens after " + std::to_string(kv.size()) +
                           " do not fit in the context of " + std::to_string(kv.n_ctx()) +
                           " tokens");
  }
  return OkStatus();
}

// One EvalBatch: the batch's rows (every sequence's tokens, one after another) through the
// layers.
class Pass {
 public:
  Pass(std::span<const BatchSequence> batch, ThreadPool* pool, ForwardBuffers* b)
      : batch_(batch),
        model_(batch[0].context->model()),
        p_(model_.params()),
        pool_(pool),
        b_(*b),
        n_seq_(static_cast<int64_t>(batch.size())) {}

  void Run();

 private:
  // Writes rows [r0, r1)'s K and V (after RoPE) into their sequences' caches.
  void StoreKv(int64_t layer, int64_t r0, int64_t r1);
  void Attention(int64_t layer);
  void AttentionQ8_0(int64_t layer);
  void Logits();
  // fn over ranges of the batch's rows: on the pool, or on this thread when the rows are few
  // (a decode step's), whose work costs less than waking the pool. Per-row work: the same
  // bits either way.
  void PerRow(const std::function<void(int64_t, int64_t)>& fn) const {
    constexpr int64_t kInlineRows = 8;
    if (rows_ <= kInlineRows) {
      fn(0, rows_);
    } else {
      pool_->ForRange(rows_, fn);
    }
  }
  KvCache& Cache(int64_t seq) const { return batch_[seq].context->kv_cache(); }
  int64_t Rows(int64_t seq) const { return static_cast<int64_t>(batch_[seq].tokens.size()); }

  std::span<const BatchSequence> batch_;
  const Model& model_;
  const ModelParams& p_;
  ThreadPool* pool_;
  ForwardBuffers& b_;
  const int64_t n_seq_;
  int64_t rows_ = 0;
};

void Pass::Run() {
  const ModelParams& p = p_;
  const int64_t d = p.n_embd;
  const int64_t dkv = p.n_embd_kv();
  b_.first_row.resize(n_seq_);
  b_.n_past.resize(n_seq_);
  b_.segments.resize(n_seq_);
  b_.row_seq.clear();
  b_.row_pos.clear();
  for (int64_t s = 0; s < n_seq_; ++s) {
    b_.first_row[s] = rows_;
    b_.n_past[s] = Cache(s).size();
    b_.segments[s] = Rows(s);
    for (int64_t t = 0; t < Rows(s); ++t) {
      b_.row_seq.push_back(s);
      b_.row_pos.push_back(b_.n_past[s] + t);
    }
    rows_ += Rows(s);
  }
  const int64_t n = rows_;
  Grow(&b_.x, n * d);
  Grow(&b_.xn, n * d);
  Grow(&b_.q, n * d);
  Grow(&b_.k, n * dkv);
  Grow(&b_.v, n * dkv);
  Grow(&b_.attn, n * d);
  Grow(&b_.gate, n * p.n_ff);
  Grow(&b_.up, n * p.n_ff);
  Grow(&b_.ffn, n * d);
  b_.norm_w.resize(d);
  float* const x = b_.x.data();
  float* const xn = b_.xn.data();
  float* const q = b_.q.data();
  float* const k = b_.k.data();
  float* const v = b_.v.data();
  float* const ffn = b_.ffn.data();
  const kernels::KernelTable& kern = kernels::Kernels();

  for (int64_t s = 0; s < n_seq_; ++s) {
    for (int64_t t = 0; t < Rows(s); ++t) {
      DequantizeRow(model_.token_embd(), batch_[s].tokens[t], &x[(b_.first_row[s] + t) * d]);
    }
  }

  // RoPE angles for each row's position; computed as ggml does (theta multiplied step by
  // step) so rounding matches.
  const int64_t half = p.n_rot / 2;
  Grow(&b_.rope_cos, n * half);
  Grow(&b_.rope_sin, n * half);
  const float theta_scale = std::pow(p.rope_freq_base, -2.0f / static_cast<float>(p.n_rot));
  for (int64_t r = 0; r < n; ++r) {
    float theta = static_cast<float>(b_.row_pos[r]) * p.rope_freq_scale;
    for (int64_t i = 0; i < half; ++i) {
      b_.rope_cos[r * half + i] = std::cos(theta);
      b_.rope_sin[r * half + i] = std::sin(theta);
      theta *= theta_scale;
    }
  }
  const auto matmul = [&](const Weight& w, const float* in, float* out) {
    MatMul(w, in, b_.segments, out, pool_, &b_.matmul);
  };
  for (int64_t il = 0; il < p.n_layer; ++il) {
    const LayerWeights& l = model_.layers()[il];
    DequantizeRow(l.attn_norm, 0, b_.norm_w.data());
    PerRow([&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        RmsNorm(&x[r * d], b_.norm_w.data(), d, p.rms_eps, &xn[r * d]);
      }
    });
    const MatMulOutput qkv[] = {{&l.wq, q}, {&l.wk, k}, {&l.wv, v}};
    MatMulShared(qkv, xn, b_.segments, pool_, &b_.matmul);
    AddBias(l.bq, n, d, &b_.bias, q);
    AddBias(l.bk, n, dkv, &b_.bias, k);
    AddBias(l.bv, n, dkv, &b_.bias, v);

    // RoPE on q and k, then K and V into the caches.
    PerRow([&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* cs = &b_.rope_cos[r * half];
        const float* sn = &b_.rope_sin[r * half];
        auto rotate = [&](float* head) {
          for (int64_t i = 0; i < half; ++i) {
            const int64_t a = p.rope_style == RopeStyle::kNormal ? 2 * i : i;
            const int64_t c = p.rope_style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
            const float x0 = head[a];
            const float x1 = head[c];
            head[a] = x0 * cs[i] - x1 * sn[i];
            head[c] = x0 * sn[i] + x1 * cs[i];
          }
        };
        for (int64_t h = 0; h < p.n_head; ++h) rotate(&q[r * d + h * p.head_dim]);
        for (int64_t h = 0; h < p.n_head_kv; ++h) rotate(&k[r * dkv + h * p.head_dim]);
      }
      StoreKv(il, r0, r1);
    });
    // Every context of a model has the same cache type today (the daemon's option), but
    // nothing here needs it: each attention pass takes the sequences of its type.
    Attention(il);
    AttentionQ8_0(il);
    matmul(l.wo, b_.attn.data(), ffn);
    DequantizeRow(l.ffn_norm, 0, b_.norm_w.data());
    PerRow([&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * d; i < r1 * d; ++i) x[i] += ffn[i];
      for (int64_t r = r0; r < r1; ++r) {
        RmsNorm(&x[r * d], b_.norm_w.data(), d, p.rms_eps, &xn[r * d]);
      }
    });
    const MatMulOutput gate_up[] = {{&l.ffn_gate, b_.gate.data()}, {&l.ffn_up, b_.up.data()}};
    MatMulShared(gate_up, xn, b_.segments, pool_, &b_.matmul);
    PerRow([&](int64_t r0, int64_t r1) {  // SiLU(gate) * up
      kern.silu_mul_f32(&b_.gate[r0 * p.n_ff], &b_.up[r0 * p.n_ff], (r1 - r0) * p.n_ff);
    });
    matmul(l.ffn_down, b_.gate.data(), ffn);
    PerRow([&](int64_t r0, int64_t r1) {
      for (int64_t i = r0 * d; i < r1 * d; ++i) x[i] += ffn[i];
    });
  }
  for (int64_t s = 0; s < n_seq_; ++s) Cache(s).set_size(b_.n_past[s] + Rows(s));
  Logits();
}

// Each sequence's logits rows: its last token's, or all of them.
void Pass::Logits() {
  const int64_t d = p_.n_embd;
  b_.logit_rows.resize(n_seq_);
  DequantizeRow(model_.output_norm(), 0, b_.norm_w.data());
  int64_t out_rows = 0;
  for (int64_t s = 0; s < n_seq_; ++s) {
    const int64_t rows = batch_[s].all_logits ? Rows(s) : 1;
    const int64_t first = b_.first_row[s] + Rows(s) - rows;
    for (int64_t t = 0; t < rows; ++t) {
      RmsNorm(&b_.x[(first + t) * d], b_.norm_w.data(), d, p_.rms_eps, &b_.xn[(out_rows + t) * d]);
    }
    b_.logit_rows[s] = rows;
    out_rows += rows;
  }
  const int64_t n_vocab = p_.n_vocab;
  if (n_seq_ == 1) {  // straight into the caller's vector
    batch_[0].logits->resize(out_rows * n_vocab);
    MatMul(model_.output(), b_.xn.data(), b_.logit_rows, batch_[0].logits->data(), pool_,
           &b_.matmul);
    return;
  }
  Grow(&b_.logits, out_rows * n_vocab);
  MatMul(model_.output(), b_.xn.data(), b_.logit_rows, b_.logits.data(), pool_, &b_.matmul);
  const float* from = b_.logits.data();
  for (int64_t s = 0; s < n_seq_; ++s) {
    const int64_t values = b_.logit_rows[s] * n_vocab;
    batch_[s].logits->assign(from, from + values);
    from += values;
  }
}

void Pass::StoreKv(int64_t layer, int64_t r0, int64_t r1) {
  const int64_t dkv = p_.n_embd_kv();
  const kernels::KernelTable& k = kernels::Kernels();
  for (int64_t r = r0; r < r1; ++r) {
    KvCache& kv = Cache(b_.row_seq[r]);
    const int64_t pos = b_.row_pos[r];
    float* kr = &b_.k[r * dkv];
    float* vr = &b_.v[r * dkv];
    if (kv.type() == KvCacheType::kQ8_0) {
      // As llama.cpp with a quantized cache: rotate (blocks never straddle heads, since the
      // block sizes divide the head size), then quantize with the activation quantizer.
      if (kv.k_rotation() > 0) kernels::hadamard_rotate(kr, dkv, kv.k_rotation());
      if (kv.v_rotation() > 0) kernels::hadamard_rotate(vr, dkv, kv.v_rotation());
      k.quantize_row_q8_0(kr, reinterpret_cast<kernels::block_q8_0*>(kv.k_row(layer, pos)), dkv);
      k.quantize_row_q8_0(vr, reinterpret_cast<kernels::block_q8_0*>(kv.v_row(layer, pos)), dkv);
      continue;
    }
    k.convert_row_fp32_to_fp16(kr, reinterpret_cast<uint16_t*>(kv.k_row(layer, pos)), dkv);
    k.convert_row_fp32_to_fp16(vr, reinterpret_cast<uint16_t*>(kv.v_row(layer, pos)), dkv);
  }
}

// Attention over F16 caches, for the sequences that have one.
void Pass::Attention(int64_t layer) {
  const ModelParams& p = p_;
  const int64_t d = p.n_embd;
  const int64_t dkv = p.n_embd_kv();
  const int64_t hd = p.head_dim;
  const int64_t group = p.n_head / p.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const kernels::KernelTable& k = kernels::Kernels();
  // One work item is one head of one chunk of a sequence's tokens: its scores are one
  // register-tiled block (keys x tokens) and its output another (probabilities x values).
  // Chunks start at fixed tokens of their sequence, so the tiles, and the bits, depend on
  // neither the thread count nor the other sequences of the batch.
  constexpr int64_t kChunk = 48;
  std::vector<ForwardBuffers::Chunk>& chunks = b_.chunks;
  chunks.clear();
  for (int64_t s = 0; s < n_seq_; ++s) {
    if (Cache(s).type() != KvCacheType::kF16) continue;
    for (int64_t t0 = 0; t0 < Rows(s); t0 += kChunk) {
      chunks.push_back({s, t0, std::min(kChunk, Rows(s) - t0)});
    }
  }
  if (chunks.empty()) return;
  // Q is rounded to F16 to meet the F16 keys, as in llama.cpp's K·Q product.
  Grow(&b_.q16, rows_ * d);
  for (const ForwardBuffers::Chunk& c : chunks) {
    for (int64_t t = 0; t < c.nt; ++t) {
      const int64_t r = b_.first_row[c.seq] + c.t0 + t;
      k.convert_row_fp32_to_fp16(&b_.q[r * d], &b_.q16[r * d], d);
    }
  }
  // Work items. A chunk of several tokens gives one item per query head. A chunk of one
  // token (a decode step) gives one per KV head, with all the query heads that share it
  // (GQA): their queries are the columns of one block against the cached keys, and their
  // probabilities the rows of one block against the cached values, so each key and value
  // is read once for the group instead of once per head. Which items a chunk gives depends
  // only on its own token count, so neither the batch nor the thread count changes bits.
  std::vector<ForwardBuffers::AttentionItem>& items = b_.attention_items;
  items.clear();
  for (int64_t ci = 0; ci < static_cast<int64_t>(chunks.size()); ++ci) {
    const int64_t heads_per_item = chunks[ci].nt == 1 ? group : 1;
    for (int64_t h = 0; h < p.n_head; h += heads_per_item) items.push_back({ci, h, heads_per_item});
  }
  const auto work = static_cast<int64_t>(items.size());
  const size_t key_stride = dkv * sizeof(uint16_t);
  b_.attention.resize(pool_->size());
  pool_->Run([&](int thread, int n_threads) {
    ForwardBuffers::Attention& scratch = b_.attention[thread];
    // Round robin: later chunks see more keys, so contiguous ranges of items would give
    // the last thread the most work.
    for (int64_t item = thread; item < work; item += n_threads) {
      const ForwardBuffers::AttentionItem& it = items[item];
      const int64_t h = it.head0;
      const int64_t kvh = h / group;
      const ForwardBuffers::Chunk& c = chunks[it.chunk];
      const KvCache& kv = Cache(c.seq);
      const uint8_t* keys = kv.k_row(layer, 0);
      const auto* values = reinterpret_cast<const uint16_t*>(kv.v_row(layer, 0));
      const int64_t n_past = b_.n_past[c.seq];
      const int64_t row0 = b_.first_row[c.seq] + c.t0;
      const int64_t nt = c.nt;
      // The block's columns: the chunk's tokens of one head (d apart), or the heads of one
      // token (hd apart, as they lie in its row).
      const int64_t cols = nt * it.heads;
      const int64_t col_stride = it.heads > 1 ? hd : d;
      // Causal: token t0 + j sees keys [0, n_past + t0 + j]; the block computes scores up
      // to the chunk's last token for all and each row uses its own prefix.
      const int64_t n_keys = n_past + c.t0 + nt;
      scratch.scores.resize(cols * n_keys);
      scratch.probs16.resize(cols * n_keys);
      k.gemm_f16(keys + kvh * hd * sizeof(uint16_t), key_stride,
                 reinterpret_cast<const uint8_t*>(&b_.q16[row0 * d + h * hd]),
                 col_stride * sizeof(uint16_t), scratch.scores.data(), n_keys, hd, n_keys, cols);
      for (int64_t j = 0; j < cols; ++j) {
        float* row = &scratch.scores[j * n_keys];
        const int64_t n_kv = n_past + c.t0 + (it.heads > 1 ? 0 : j) + 1;
        k.soft_max_f32(row, n_kv, scale);
        // Probabilities meet the F16 values as F16, as in llama.cpp's V·KQ product.
        k.convert_row_fp32_to_fp16(row, &scratch.probs16[j * n_keys], n_kv);
      }
      float* out = &b_.attn[row0 * d + h * hd];
      for (int64_t j = 0; j < cols; ++j) {
        std::fill(out + j * col_stride, out + j * col_stride + hd, 0.0f);
      }
      // The keys every token of the chunk sees, as one block; then each token's remaining
      // keys, continuing the same order of terms (each output adds key after key).
      const int64_t common = n_past + c.t0 + 1;
      const uint16_t* v_head = values + kvh * hd;
      k.axpy_block_f16(out, col_stride, scratch.probs16.data(), n_keys, v_head, dkv, common, hd,
                       cols);
      for (int64_t j = 1; j < nt; ++j) {
        k.axpy_block_f16(out + j * d, d, &scratch.probs16[j * n_keys + common], n_keys,
                         v_head + common * dkv, dkv, j, hd, 1);
      }
    }
  });
}

// Attention over Q8_0 caches, for the sequences that have one, as llama.cpp computes it with
// `-ctk q8_0 -ctv q8_0`. llama.cpp refuses a quantized V cache without flash attention
// ("quantized V cache requires flash_attn", llama-context.cpp), so the reference here is its
// CPU flash-attention kernel (ggml_compute_forward_flash_attn_ext_f16_one_chunk), step for
// step: the (rotated) query quantized to Q8_0 meets each key in a Q8_0 x Q8_0 dot; an online
// softmax keeps the running maximum M and sum S, rescaling the F32 accumulator when M grows;
// each value row is dequantized and added with weight exp(s - M); the sum is divided by S at
// the end and rotated back when the values were rotated.
void Pass::AttentionQ8_0(int64_t layer) {
  const ModelParams& p = p_;
  const int64_t d = p.n_embd;
  const int64_t group = p.n_head / p.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  const kernels::KernelTable& k = kernels::Kernels();
  const int64_t head_blocks = p.head_dim / kernels::kQK8_0;
  std::vector<int64_t>& rows = b_.q8_rows;
  rows.clear();
  for (int64_t r = 0; r < rows_; ++r) {
    if (Cache(b_.row_seq[r]).type() == KvCacheType::kQ8_0) rows.push_back(r);
  }
  if (rows.empty()) return;
  const auto work = static_cast<int64_t>(rows.size()) * p.n_head;
  b_.attention.resize(pool_->size());
  pool_->Run([&](int thread, int n_threads) {
    int64_t begin = 0;
    int64_t end = 0;
    ThreadPool::Split(work, thread, n_threads, &begin, &end);
    ForwardBuffers::Attention& scratch = b_.attention[thread];
    std::vector<kernels::block_q8_0>& q8 = scratch.q8;
    std::vector<float>& out = scratch.out;
    q8.resize(head_blocks);
    out.resize(p.head_dim);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = rows[item / p.n_head];
      const int64_t h = item % p.n_head;
      const int64_t kvh = h / group;
      const KvCache& kv = Cache(b_.row_seq[r]);
      const int64_t n_kv = b_.row_pos[r] + 1;    // causal: this token and everything before
      float* q = &b_.q[r * d + h * p.head_dim];  // this item's own slice: rotated in place
      if (kv.k_rotation() > 0) kernels::hadamard_rotate(q, p.head_dim, kv.k_rotation());
      k.quantize_row_q8_0(q, q8.data(), p.head_dim);
      std::fill(out.begin(), out.end(), 0.0f);
      float max = -INFINITY;
      float sum = 0.0f;
      for (int64_t s = 0; s < n_kv; ++s) {
        const auto* key = reinterpret_cast<const kernels::block_q8_0*>(kv.k_row(layer, s));
        const float score =
            k.vec_dot_q8_0_q8_0(key + kvh * head_blocks, q8.data(), p.head_dim) * scale;
        float rescale = 1.0f;  // for the sums so far, when the maximum grows
        float weight = 1.0f;   // exp(score - max)
        if (score > max) {
          rescale = std::exp(max - score);
          max = score;
          for (float& o : out) o *= rescale;
        } else {
          weight = std::exp(score - max);
        }
        const auto* value = reinterpret_cast<const kernels::block_q8_0*>(kv.v_row(layer, s));
        k.axpy_q8_0(out.data(), weight, value + kvh * head_blocks, p.head_dim);
        sum = sum * rescale + weight;
      }
      const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
      for (float& o : out) o *= inv;
      if (kv.v_rotation() > 0) kernels::hadamard_rotate(out.data(), p.head_dim, kv.v_rotation());
      std::memcpy(&b_.attn[r * d + h * p.head_dim], out.data(), p.head_dim * sizeof(float));
    }
  });
}

}  // namespace

Status EvalBatch(std::span<const BatchSequence> batch, ThreadPool* pool, ForwardBuffers* buffers) {
  if (batch.empty()) return InvalidArgumentError("no sequences to evaluate");
  for (size_t i = 0; i < batch.size(); ++i) {
    Status s = CheckSequence(batch, i);
    if (!s.ok() && batch.size() > 1) s = s.WithPrefix("sequence " + std::to_string(i));
    AGENTRY_RETURN_IF_ERROR(s);
  }
  Pass(batch, pool, buffers).Run();
  return OkStatus();
}

}  // namespace agentry::engine
