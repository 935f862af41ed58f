#include "nodeagent/engine/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/fp16.h"
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

void AddBias(const Weight& bias, int64_t n_tokens, int64_t n, std::vector<float>* tmp, float* y) {
  if (bias.data == nullptr) return;
  tmp->resize(n);
  DequantizeRow(bias, 0, tmp->data());
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += (*tmp)[i];
  }
}

}  // namespace

Context::Context(const Model& model, int64_t n_ctx, ThreadPool* pool, KvCacheType cache_type)
    : model_(model), pool_(pool), kv_(model.params(), n_ctx, cache_type) {}

Status Context::Eval(const std::vector<int32_t>& tokens, bool all_logits,
                     std::vector<float>* logits) {
  const ModelParams& p = model_.params();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_past = kv_.size();
  if (n == 0) return InvalidArgumentError("no tokens to evaluate");
  AGENTRY_RETURN_IF_ERROR(KvCache::CheckType(p, kv_.type()));
  for (int64_t t = 0; t < n; ++t) {
    if (tokens[t] < 0 || tokens[t] >= p.n_vocab) {
      return InvalidArgumentError("token " + std::to_string(t) + ": id " +
                                  std::to_string(tokens[t]) + " is outside the vocabulary of " +
                                  std::to_string(p.n_vocab));
    }
  }
  if (n_past + n > kv_.n_ctx()) {
    return OutOfRangeError(std::to_string(n) + " tokens after " + std::to_string(n_past) +
                           " do not fit in the context of " + std::to_string(kv_.n_ctx()) +
                           " tokens");
  }
  const int64_t d = p.n_embd;
  const int64_t dkv = p.n_embd_kv();
  x_.resize(n * d);
  xn_.resize(n * d);
  q_.resize(n * d);
  k_.resize(n * dkv);
  v_.resize(n * dkv);
  attn_.resize(n * d);
  gate_.resize(n * p.n_ff);
  up_.resize(n * p.n_ff);
  ffn_.resize(n * d);
  std::vector<float>& norm_w = norm_w_;
  norm_w.resize(d);
  const kernels::KernelTable& kern = kernels::Kernels();

  for (int64_t t = 0; t < n; ++t) DequantizeRow(model_.token_embd(), tokens[t], &x_[t * d]);

  // RoPE angles for the new positions; computed as ggml does (theta multiplied step by
  // step) so rounding matches.
  const int64_t half = p.n_rot / 2;
  rope_cos_.resize(n * half);
  rope_sin_.resize(n * half);
  const float theta_scale = std::pow(p.rope_freq_base, -2.0f / static_cast<float>(p.n_rot));
  for (int64_t t = 0; t < n; ++t) {
    float theta = static_cast<float>(n_past + t) * p.rope_freq_scale;
    for (int64_t i = 0; i < half; ++i) {
      rope_cos_[t * half + i] = std::cos(theta);
      rope_sin_[t * half + i] = std::sin(theta);
      theta *= theta_scale;
    }
  }
  for (int64_t il = 0; il < p.n_layer; ++il) {
    const LayerWeights& l = model_.layers()[il];
    DequantizeRow(l.attn_norm, 0, norm_w.data());
    pool_->ForRange(n, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        RmsNorm(&x_[t * d], norm_w.data(), d, p.rms_eps, &xn_[t * d]);
      }
    });
    MatMul(l.wq, xn_.data(), n, q_.data(), pool_, &scratch_);
    MatMul(l.wk, xn_.data(), n, k_.data(), pool_, &scratch_);
    MatMul(l.wv, xn_.data(), n, v_.data(), pool_, &scratch_);
    AddBias(l.bq, n, d, &bias_, q_.data());
    AddBias(l.bk, n, dkv, &bias_, k_.data());
    AddBias(l.bv, n, dkv, &bias_, v_.data());

    // RoPE on q and k, then K and V into the cache.
    pool_->ForRange(n, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const float* cs = &rope_cos_[t * half];
        const float* sn = &rope_sin_[t * half];
        auto rotate = [&](float* head) {
          for (int64_t i = 0; i < half; ++i) {
            const int64_t a = p.rope_style == RopeStyle::kNormal ? 2 * i : i;
            const int64_t b = p.rope_style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
            const float x0 = head[a];
            const float x1 = head[b];
            head[a] = x0 * cs[i] - x1 * sn[i];
            head[b] = x0 * sn[i] + x1 * cs[i];
          }
        };
        for (int64_t h = 0; h < p.n_head; ++h) rotate(&q_[t * d + h * p.head_dim]);
        for (int64_t h = 0; h < p.n_head_kv; ++h) rotate(&k_[t * dkv + h * p.head_dim]);
      }
      StoreKv(il, n_past, t0, t1);
    });
    if (kv_.type() == KvCacheType::kQ8_0) {
      AttentionQ8_0(il, n, n_past);
    } else {
      Attention(il, n, n_past);
    }
    MatMul(l.wo, attn_.data(), n, ffn_.data(), pool_, &scratch_);
    DequantizeRow(l.ffn_norm, 0, norm_w.data());
    pool_->ForRange(n, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * d; i < t1 * d; ++i) x_[i] += ffn_[i];
      for (int64_t t = t0; t < t1; ++t) {
        RmsNorm(&x_[t * d], norm_w.data(), d, p.rms_eps, &xn_[t * d]);
      }
    });
    MatMul(l.ffn_gate, xn_.data(), n, gate_.data(), pool_, &scratch_);
    MatMul(l.ffn_up, xn_.data(), n, up_.data(), pool_, &scratch_);
    pool_->ForRange(n, [&](int64_t t0, int64_t t1) {  // SiLU(gate) * up
      kern.silu_mul_f32(&gate_[t0 * p.n_ff], &up_[t0 * p.n_ff], (t1 - t0) * p.n_ff);
    });
    MatMul(l.ffn_down, gate_.data(), n, ffn_.data(), pool_, &scratch_);
    pool_->ForRange(n, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * d; i < t1 * d; ++i) x_[i] += ffn_[i];
    });
  }
  kv_.set_size(n_past + n);

  // Logits for the last token, or all.
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  DequantizeRow(model_.output_norm(), 0, norm_w.data());
  for (int64_t t = 0; t < rows; ++t) {
    RmsNorm(&x_[(first + t) * d], norm_w.data(), d, p.rms_eps, &xn_[t * d]);
  }
  logits->resize(rows * p.n_vocab);
  MatMul(model_.output(), xn_.data(), rows, logits->data(), pool_, &scratch_);
  return OkStatus();
}

void Context::StoreKv(int64_t layer, int64_t n_past, int64_t t0, int64_t t1) {
  const int64_t dkv = model_.params().n_embd_kv();
  const kernels::KernelTable& k = kernels::Kernels();
  for (int64_t t = t0; t < t1; ++t) {
    float* kr = &k_[t * dkv];
    float* vr = &v_[t * dkv];
    if (kv_.type() == KvCacheType::kQ8_0) {
      // As llama.cpp with a quantized cache: rotate (blocks never straddle heads, since the
      // block sizes divide the head size), then quantize with the activation quantizer.
      if (kv_.k_rotation() > 0) kernels::hadamard_rotate(kr, dkv, kv_.k_rotation());
      if (kv_.v_rotation() > 0) kernels::hadamard_rotate(vr, dkv, kv_.v_rotation());
      k.quantize_row_q8_0(kr, reinterpret_cast<kernels::block_q8_0*>(kv_.k_row(layer, n_past + t)),
                          dkv);
      k.quantize_row_q8_0(vr, reinterpret_cast<kernels::block_q8_0*>(kv_.v_row(layer, n_past + t)),
                          dkv);
      continue;
    }
    k.convert_row_fp32_to_fp16(kr, reinterpret_cast<uint16_t*>(kv_.k_row(layer, n_past + t)), dkv);
    k.convert_row_fp32_to_fp16(vr, reinterpret_cast<uint16_t*>(kv_.v_row(layer, n_past + t)), dkv);
  }
}

void Context::Attention(int64_t layer, int64_t n_tokens, int64_t n_past) {
  const ModelParams& p = model_.params();
  const int64_t d = p.n_embd;
  const int64_t dkv = p.n_embd_kv();
  const int64_t hd = p.head_dim;
  const int64_t group = p.n_head / p.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const kernels::KernelTable& k = kernels::Kernels();
  // Q is rounded to F16 to meet the F16 keys, as in llama.cpp's K·Q product.
  q16_.resize(n_tokens * d);
  for (int64_t t = 0; t < n_tokens; ++t) {
    k.convert_row_fp32_to_fp16(&q_[t * d], &q16_[t * d], d);
  }
  // One work item is one head and a chunk of tokens: its scores are one register-tiled
  // block (keys x tokens) and its output another (probabilities x values). Chunks start at
  // fixed tokens, so the tiles, and the bits, do not depend on the thread count.
  constexpr int64_t kChunk = 48;
  const int64_t n_chunks = (n_tokens + kChunk - 1) / kChunk;
  const int64_t work = n_chunks * p.n_head;
  const uint8_t* keys = kv_.k_row(layer, 0);
  const auto* values = reinterpret_cast<const uint16_t*>(kv_.v_row(layer, 0));
  const size_t key_stride = dkv * sizeof(uint16_t);
  attention_scratch_.resize(pool_->size());
  pool_->Run([&](int thread, int n_threads) {
    // Buffers kept across calls: the decode loop allocates nothing here.
    AttentionScratch& scratch = attention_scratch_[thread];
    // Round robin: later chunks see more keys, so contiguous ranges of items would give
    // the last thread the most work.
    for (int64_t item = thread; item < work; item += n_threads) {
      const int64_t h = item % p.n_head;
      const int64_t kvh = h / group;
      const int64_t t0 = item / p.n_head * kChunk;
      const int64_t nt = std::min(kChunk, n_tokens - t0);
      // Causal: token t0 + j sees keys [0, n_past + t0 + j]; the block computes scores up
      // to the chunk's last token for all and each row uses its own prefix.
      const int64_t n_keys = n_past + t0 + nt;
      scratch.scores.resize(nt * n_keys);
      scratch.probs16.resize(nt * n_keys);
      k.gemm_f16(keys + kvh * hd * sizeof(uint16_t), key_stride,
                 reinterpret_cast<const uint8_t*>(&q16_[t0 * d + h * hd]), d * sizeof(uint16_t),
                 scratch.scores.data(), n_keys, hd, n_keys, nt);
      for (int64_t j = 0; j < nt; ++j) {
        float* row = &scratch.scores[j * n_keys];
        const int64_t n_kv = n_past + t0 + j + 1;
        k.soft_max_f32(row, n_kv, scale);
        // Probabilities meet the F16 values as F16, as in llama.cpp's V·KQ product.
        k.convert_row_fp32_to_fp16(row, &scratch.probs16[j * n_keys], n_kv);
      }
      float* out = &attn_[t0 * d + h * hd];
      for (int64_t j = 0; j < nt; ++j) std::fill(out + j * d, out + j * d + hd, 0.0f);
      // The keys every token of the chunk sees, as one block; then each token's remaining
      // keys, continuing the same order of terms (each output adds key after key).
      const int64_t common = n_past + t0 + 1;
      const uint16_t* v_head = values + kvh * hd;
      k.axpy_block_f16(out, d, scratch.probs16.data(), n_keys, v_head, dkv, common, hd, nt);
      for (int64_t j = 1; j < nt; ++j) {
        k.axpy_block_f16(out + j * d, d, &scratch.probs16[j * n_keys + common], n_keys,
                         v_head + common * dkv, dkv, j, hd, 1);
      }
    }
  });
}

// Attention over a Q8_0 cache, as llama.cpp computes it with `-ctk q8_0 -ctv q8_0`. llama.cpp
// refuses a quantized V cache without flash attention ("quantized V cache requires
// flash_attn", llama-context.cpp), so the reference here is its CPU flash-attention kernel
// (ggml_compute_forward_flash_attn_ext_f16_one_chunk), step for step: the (rotated) query
// quantized to Q8_0 meets each key in a Q8_0 x Q8_0 dot; an online softmax keeps the
// running maximum M and sum S, rescaling the F32 accumulator when M grows; each value row
// is dequantized and added with weight exp(s - M); the sum is divided by S at the end and
// rotated back when the values were rotated.
void Context::AttentionQ8_0(int64_t layer, int64_t n_tokens, int64_t n_past) {
  const ModelParams& p = model_.params();
  const int64_t d = p.n_embd;
  const int64_t group = p.n_head / p.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  const kernels::KernelTable& k = kernels::Kernels();
  const int64_t head_blocks = p.head_dim / kernels::kQK8_0;
  const int64_t work = n_tokens * p.n_head;
  attention_scratch_.resize(pool_->size());
  pool_->Run([&](int thread, int n_threads) {
    int64_t begin = 0;
    int64_t end = 0;
    ThreadPool::Split(work, thread, n_threads, &begin, &end);
    AttentionScratch& scratch = attention_scratch_[thread];
    std::vector<kernels::block_q8_0>& q8 = scratch.q8;
    std::vector<float>& out = scratch.out;
    q8.resize(head_blocks);
    out.resize(p.head_dim);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / p.n_head;
      const int64_t h = item % p.n_head;
      const int64_t kvh = h / group;
      const int64_t n_kv = n_past + t + 1;     // causal: this token and everything before
      float* q = &q_[t * d + h * p.head_dim];  // this item's own slice: rotated in place
      if (kv_.k_rotation() > 0) kernels::hadamard_rotate(q, p.head_dim, kv_.k_rotation());
      k.quantize_row_q8_0(q, q8.data(), p.head_dim);
      std::fill(out.begin(), out.end(), 0.0f);
      float max = -INFINITY;
      float sum = 0.0f;
      for (int64_t s = 0; s < n_kv; ++s) {
        const auto* key = reinterpret_cast<const kernels::block_q8_0*>(kv_.k_row(layer, s));
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
        const auto* value = reinterpret_cast<const kernels::block_q8_0*>(kv_.v_row(layer, s));
        k.axpy_q8_0(out.data(), weight, value + kvh * head_blocks, p.head_dim);
        sum = sum * rescale + weight;
      }
      const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;
      for (float& o : out) o *= inv;
      if (kv_.v_rotation() > 0) kernels::hadamard_rotate(out.data(), p.head_dim, kv_.v_rotation());
      std::memcpy(&attn_[t * d + h * p.head_dim], out.data(), p.head_dim * sizeof(float));
    }
  });
}

}  // namespace agentry::engine
