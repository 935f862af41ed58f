// train/transformer.cc — see transformer.h. The backward pass mirrors the forward pass step
// by step, in reverse; each step's comment names the forward step it differentiates.
#include "train/transformer.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "kernels/cpu/kernels.h"

namespace agentry::train {

int64_t Batch::n_targets() const {
  int64_t n = 0;
  for (int32_t t : targets) n += t >= 0 ? 1 : 0;
  return n;
}

void Batch::Append(const std::vector<int32_t>& conversation, const std::vector<uint8_t>& loss) {
  const auto begin = static_cast<int32_t>(tokens.size());
  for (size_t i = 0; i < conversation.size(); ++i) {
    tokens.push_back(conversation[i]);
    positions.push_back(static_cast<int32_t>(i));
    doc_begin.push_back(begin);
    const bool learn = i + 1 < conversation.size() && i < loss.size() && loss[i] != 0;
    targets.push_back(learn ? conversation[i + 1] : -1);
  }
}

Transformer::Transformer(const ModelConfig& config, engine::ThreadPool* pool,
                         const kernels::KernelTable& kernels)
    : config_(config), layout_(ParameterLayout::For(config)), pool_(pool), kt_(kernels) {}

// y[c * ldy + r] = x[r * ldx + c] for r < rows, c < cols: columns split across the pool, rows
// a block at a time so the block's source lines stay in cache while its columns are read.
static void Transpose(engine::ThreadPool* pool, const float* x, int64_t ldx, int64_t rows,
                      int64_t cols, float* y, int64_t ldy) {
  constexpr int64_t kRowBlock = 64;
  pool->ForRange(cols, [&](int64_t c0, int64_t c1) {
    for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
      const int64_t r1 = std::min(rows, r0 + kRowBlock);
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t r = r0; r < r1; ++r) y[c * ldy + r] = x[r * ldx + c];
      }
    }
  });
}

void Transformer::TransposeWeights(const float* params) {
  wt_.resize(static_cast<size_t>(layout_.total()));
  for (const TensorSlot& t : layout_.tensors()) {
    if (t.dims.size() != 2) continue;  // gains
    const auto in = static_cast<int64_t>(t.dims[0]);
    const auto out = static_cast<int64_t>(t.dims[1]);
    Transpose(pool_, params + t.offset, in, out, in, wt_.data() + t.offset, out);
  }
}

void Transformer::Linear(const float* w_t, int64_t in, int64_t out, const float* x, int64_t n,
                         float* y) {
  // y[t] = sum over i of x[t][i] Wᵀ[i]: rows of Wᵀ scaled by the row of x.
  AxpyRows(y, out, x, in, 1, w_t, out, in, out, n, true);
}

// The backward products are axpy blocks (kernels.h): each output row is a sum of input rows
// scaled by coefficients, accumulated in registers a tile at a time. Threads take groups of
// kRowGroup output rows, a multiple of every table's tile height, so no tile is cut short
// except at the end; each output is the same fused multiply-adds in the same order whatever
// the thread count.
constexpr int64_t kRowGroup = 6;

void Transformer::AxpyRows(float* y, int64_t ldy, const float* a, int64_t a_row, int64_t a_step,
                           const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t rows,
                           bool zero_first) {
  pool_->ForRange((rows + kRowGroup - 1) / kRowGroup, [&](int64_t g0, int64_t g1) {
    const int64_t r0 = g0 * kRowGroup;
    const int64_t r1 = std::min(rows, g1 * kRowGroup);
    if (zero_first) {
      for (int64_t r = r0; r < r1; ++r) std::fill(y + r * ldy, y + r * ldy + n, 0.0f);
    }
    kt_.axpy_block_f32(y + r0 * ldy, ldy, a + r0 * a_row, a_row, a_step, x, ldx, n_x, n, r1 - r0);
  });
}

void Transformer::LinearBackwardInput(const float* w, int64_t in, int64_t out, const float* dy,
                                      int64_t n, float* dx, bool accumulate) {
  // dx[t] (+)= sum over o of dy[t][o] W[o]: rows of W scaled by the row of dy.
  AxpyRows(dx, in, dy, out, 1, w, in, out, in, n, !accumulate);
}

void Transformer::LinearBackwardWeight(const float* dy, const float* x, int64_t in, int64_t out,
                                       int64_t n, float* dw) {
  // dw[o] += sum over t of dy[t][o] x[t]: rows of x scaled by a column of dy, which the
  // kernel reads in place (a_row 1, a_step out) instead of from a transposed copy.
  AxpyRows(dw, in, dy, 1, out, x, in, n, in, out, false);
}

void Transformer::RmsNormForward(const float* x, const float* w, float* rstd, float* out) {
  const int64_t d = config_.dim;
  const float eps = config_.rms_eps;
  pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xr = x + t * d;
      double sum = 0.0;
      for (int64_t i = 0; i < d; ++i) sum += static_cast<double>(xr[i]) * xr[i];
      const float r = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(d)) + eps);
      rstd[t] = r;
      float* o = out + t * d;
      for (int64_t i = 0; i < d; ++i) o[i] = xr[i] * r * w[i];
    }
  });
}

void Transformer::RmsNormBackward(const float* x, const float* w, const float* rstd,
                                  const float* dy, float* dx, float* dw, bool accumulate) {
  // y_i = x_i r w_i with r = (mean x² + eps)^-1/2:
  //   dx_i = r w_i dy_i - x_i r³ (sum_k dy_k w_k x_k) / D,   dw_i = sum_t dy_i x_i r.
  const int64_t d = config_.dim;
  pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xr = x + t * d;
      const float* g = dy + t * d;
      const float r = rstd[t];
      double dot = 0.0;
      for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(g[i]) * w[i] * xr[i];
      const float k = static_cast<float>(dot / static_cast<double>(d)) * r * r * r;
      float* o = dx + t * d;
      for (int64_t i = 0; i < d; ++i) {
        const float v = r * w[i] * g[i] - xr[i] * k;
        o[i] = accumulate ? o[i] + v : v;
      }
    }
  });
  // The gain's gradient sums over tokens; one thread per dimension keeps the order fixed.
  pool_->ForRange(d, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      double sum = 0.0;
      for (int64_t t = 0; t < n_; ++t)
        sum += static_cast<double>(dy[t * d + i]) * x[t * d + i] * rstd[t];
      dw[i] = static_cast<float>(sum);
    }
  });
}

void Transformer::RopeTable(const Batch& batch) {
  // Adjacent pairs rotated by pos * base^(-2i / head_dim), with the angles computed as the
  // engine computes them (context.cc), so training and inference rotate alike. One table per
  // batch serves every layer, forward and backward.
  const int64_t half = config_.head_dim() / 2;
  const float theta_scale =
      std::pow(config_.rope_base, -2.0f / static_cast<float>(config_.head_dim()));
  rope_cos_.resize(static_cast<size_t>(n_ * half));
  rope_sin_.resize(static_cast<size_t>(n_ * half));
  pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float theta = static_cast<float>(batch.positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        rope_cos_[t * half + i] = std::cos(theta);
        rope_sin_[t * half + i] = std::sin(theta);
        theta *= theta_scale;
      }
    }
  });
}

void Transformer::Rope(float* x, int64_t n_heads, bool inverse) {
  const int64_t hd = config_.head_dim();
  const int64_t half = hd / 2;
  const int64_t width = n_heads * hd;
  const float sign = inverse ? -1.0f : 1.0f;
  pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* cs = rope_cos_.data() + t * half;
      const float* sn = rope_sin_.data() + t * half;
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + t * width + h * hd;
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[2 * i];
          const float b = v[2 * i + 1];
          const float s = sign * sn[i];
          v[2 * i] = a * cs[i] - b * s;
          v[2 * i + 1] = a * s + b * cs[i];
        }
      }
    }
  });
}

// The scores of `tokens` query rows [q, q + tokens * hd) (consecutive heads sharing one KV
// head) against `len` keys given transposed (k_t[d * ldk + j] is dimension d of key j):
// y[h * ldy + j] = q_h · k_j, as a block of axpys over the keys' dimensions.
static void DotRows(const kernels::KernelTable& kt, const float* k_t, int64_t ldk, int64_t len,
                    const float* q, int64_t tokens, int64_t hd, float* y, int64_t ldy) {
  for (int64_t h = 0; h < tokens; ++h) std::fill(y + h * ldy, y + h * ldy + len, 0.0f);
  kt.axpy_block_f32(y, ldy, q, hd, 1, k_t, ldk, hd, len, tokens);
}

void Transformer::ForTokensByKeys(const std::function<void(int64_t, int64_t)>& fn) {
  // A token's attention costs in proportion to the keys it sees (row_offset_ counts them), and
  // long conversations cluster, so equal token counts would leave one thread waiting.
  const int64_t total = row_offset_[n_];
  pool_->Run([&](int thread, int n_threads) {
    const auto first_token = [&](int k) {
      const int64_t work = total * k / n_threads;
      return static_cast<int64_t>(
          std::lower_bound(row_offset_.begin(), row_offset_.begin() + n_, work) -
          row_offset_.begin());
    };
    const int64_t t0 = first_token(thread);
    const int64_t t1 = thread + 1 == n_threads ? n_ : first_token(thread + 1);
    if (t0 < t1) fn(t0, t1);
  });
}

void Transformer::AttentionForward(const Batch& batch, LayerCache* c) {
  const int64_t hd = config_.head_dim();
  const int64_t heads = config_.heads;
  const int64_t group = config_.heads / config_.kv_heads;
  const int64_t d = config_.dim;
  const int64_t dkv = config_.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const kernels::KernelTable& kt = kt_;
  c->probs.resize(static_cast<size_t>(row_offset_[n_] * heads));
  c->attn.assign(static_cast<size_t>(n_ * d), 0.0f);
  kvt_.resize(static_cast<size_t>(dkv * n_));
  Transpose(pool_, c->k.data(), dkv, n_, dkv, kvt_.data(), n_);
  ForTokensByKeys([&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t begin = batch.doc_begin[t];
      const int64_t len = t - begin + 1;
      // The heads of one KV head together: their scores, then their outputs, one kernel
      // call each over all `len` keys.
      for (int64_t g = 0; g < config_.kv_heads; ++g) {
        const float* q = c->q.data() + t * d + g * group * hd;
        const float* k_t = kvt_.data() + g * hd * n_ + begin;
        const float* v = c->v.data() + begin * dkv + g * hd;
        float* p = c->probs.data() + row_offset_[t] * heads + g * group * len;
        DotRows(kt, k_t, n_, len, q, group, hd, p, len);
        for (int64_t h = 0; h < group; ++h) kt.soft_max_f32(p + h * len, len, scale);
        kt.axpy_block_f32(c->attn.data() + t * d + g * group * hd, hd, p, len, 1, v, dkv, len, hd,
                          group);
      }
    }
  });
}

void Transformer::AttentionBackward(const Batch& batch, const LayerCache& c, const float* d_attn,
                                    float* dq, float* dk, float* dv) {
  // Per query row: dP_j = dO·V_j, dS_j = P_j (dP_j - sum_k P_k dP_k), dQ = scale sum_j dS_j K_j.
  // Then per key row, in a second pass so each output has one writer:
  //   dK_j = scale sum_t dS_tj Q_t,  dV_j = sum_t P_tj dO_t  over the queries t >= j of its
  //   conversation and the heads sharing its KV head.
  const int64_t hd = config_.head_dim();
  const int64_t heads = config_.heads;
  const int64_t group = config_.heads / config_.kv_heads;
  const int64_t d = config_.dim;
  const int64_t dkv = config_.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const kernels::KernelTable& kt = kt_;
  dbig_.resize(c.probs.size());
  kvt_.resize(static_cast<size_t>(dkv * n_));
  Transpose(pool_, c.v.data(), dkv, n_, dkv, kvt_.data(), n_);
  float* ds_all = dbig_.data();
  ForTokensByKeys([&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t begin = batch.doc_begin[t];
      const int64_t len = t - begin + 1;
      for (int64_t g = 0; g < config_.kv_heads; ++g) {
        const float* go = d_attn + t * d + g * group * hd;
        const float* k = c.k.data() + begin * dkv + g * hd;
        const float* v_t = kvt_.data() + g * hd * n_ + begin;
        float* ds = ds_all + row_offset_[t] * heads + g * group * len;
        DotRows(kt, v_t, n_, len, go, group, hd, ds, len);
        for (int64_t h = 0; h < group; ++h) {
          const float* p = c.probs.data() + row_offset_[t] * heads + (g * group + h) * len;
          float* dsh = ds + h * len;
          double pdp = 0.0;
          for (int64_t j = 0; j < len; ++j) pdp += static_cast<double>(p[j]) * dsh[j];
          const auto sum = static_cast<float>(pdp);
          for (int64_t j = 0; j < len; ++j) dsh[j] = p[j] * (dsh[j] - sum) * scale;
        }
        float* out = dq + t * d + g * group * hd;
        std::fill(out, out + group * hd, 0.0f);
        kt.axpy_block_f32(out, hd, ds, len, 1, k, dkv, len, hd, group);
      }
    }
  });
  // Tasks are (conversation, KV head) pairs, each the only writer of its rows of dK and dV.
  // Within a task the keys go kKeyBlock at a time: their coefficients (dS and P of every
  // later query, zero where a query cannot see the key) are gathered into rows, and one
  // axpy block per head sums the query (dO) rows into all kKeyBlock outputs, which stay in
  // registers while the rows stream past. (Adding into every key row for each query instead
  // was 60 % of a training step: a long conversation's key rows do not fit in L1.)
  constexpr int64_t kKeyBlock = 6;
  std::vector<int64_t> docs;
  int64_t longest = 0;
  for (int64_t t = 0; t < n_; ++t) {
    if (batch.doc_begin[t] == t) docs.push_back(t);
    longest = std::max(longest, t - batch.doc_begin[t] + 1);
  }
  const auto n_docs = static_cast<int64_t>(docs.size());
  docs.push_back(n_);
  // Longest conversations first (their work grows with the square of their length), so the
  // last tasks taken are short and the threads finish together.
  std::vector<int64_t> order(static_cast<size_t>(n_docs));
  for (int64_t i = 0; i < n_docs; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return docs[a + 1] - docs[a] > docs[b + 1] - docs[b];
  });
  const int64_t n_tasks = n_docs * config_.kv_heads;
  std::atomic<int64_t> next{0};
  pool_->Run([&](int, int) {
    std::vector<float> coef_k(static_cast<size_t>(kKeyBlock * longest));
    std::vector<float> coef_v(coef_k.size());
    for (int64_t task = next++; task < n_tasks; task = next++) {
      const int64_t doc = order[task / config_.kv_heads];
      const int64_t g = task % config_.kv_heads;
      const int64_t begin = docs[doc];
      const int64_t end = docs[doc + 1];
      for (int64_t j0 = 0; j0 < end - begin; j0 += kKeyBlock) {
        const int64_t nj = std::min(kKeyBlock, end - begin - j0);
        const int64_t n_q = end - begin - j0;  // queries that see a key of the block: t >= j0
        // The block's output rows: consecutive keys, dkv apart.
        float* out_k = dk + (begin + j0) * dkv + g * hd;
        float* out_v = dv + (begin + j0) * dkv + g * hd;
        for (int64_t b = 0; b < nj; ++b) {
          std::fill(out_k + b * dkv, out_k + b * dkv + hd, 0.0f);
          std::fill(out_v + b * dkv, out_v + b * dkv + hd, 0.0f);
        }
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          for (int64_t s = 0; s < n_q; ++s) {
            const int64_t t = begin + j0 + s;
            const int64_t len = j0 + s + 1;
            const float* p = c.probs.data() + row_offset_[t] * heads + h * len + j0;
            const float* ds = ds_all + row_offset_[t] * heads + h * len + j0;
            for (int64_t b = 0; b < nj; ++b) {
              coef_k[b * n_q + s] = b <= s ? ds[b] : 0.0f;
              coef_v[b * n_q + s] = b <= s ? p[b] : 0.0f;
            }
          }
          const int64_t first = (begin + j0) * d + h * hd;
          kt.axpy_block_f32(out_k, dkv, coef_k.data(), n_q, 1, c.q.data() + first, d, n_q, hd, nj);
          kt.axpy_block_f32(out_v, dkv, coef_v.data(), n_q, 1, d_attn + first, d, n_q, hd, nj);
        }
      }
    }
  });
}

void Transformer::Forward(const Batch& batch, const float* params) {
  const ModelConfig& m = config_;
  const int64_t d = m.dim;
  const int64_t f = m.ff;
  n_ = batch.size();
  row_offset_.resize(static_cast<size_t>(n_ + 1));
  row_offset_[0] = 0;
  for (int64_t t = 0; t < n_; ++t)
    row_offset_[t + 1] = row_offset_[t] + (t - batch.doc_begin[t] + 1);
  layers_.resize(static_cast<size_t>(m.layers));
  RopeTable(batch);
  TransposeWeights(params);
  const float* wt = wt_.data();
  const auto size = [&](int64_t width) { return static_cast<size_t>(n_ * width); };

  std::vector<float>* x = &layers_[0].x_in;
  x->resize(size(d));
  const float* embd = params + layout_.token_embd();
  for (int64_t t = 0; t < n_; ++t) {
    std::memcpy(x->data() + t * d, embd + static_cast<int64_t>(batch.tokens[t]) * d,
                sizeof(float) * d);
  }
  for (int64_t l = 0; l < m.layers; ++l) {
    LayerCache& c = layers_[l];
    const LayerOffsets& o = layout_.layer(l);
    c.rstd1.resize(size(1));
    c.xn1.resize(size(d));
    RmsNormForward(c.x_in.data(), params + o.attn_norm, c.rstd1.data(), c.xn1.data());
    c.q.resize(size(d));
    c.k.resize(size(m.kv_dim()));
    c.v.resize(size(m.kv_dim()));
    Linear(wt + o.wq, d, d, c.xn1.data(), n_, c.q.data());
    Linear(wt + o.wk, d, m.kv_dim(), c.xn1.data(), n_, c.k.data());
    Linear(wt + o.wv, d, m.kv_dim(), c.xn1.data(), n_, c.v.data());
    Rope(c.q.data(), m.heads, false);
    Rope(c.k.data(), m.kv_heads, false);
    AttentionForward(batch, &c);
    c.x_mid.resize(size(d));
    Linear(wt + o.wo, d, d, c.attn.data(), n_, c.x_mid.data());
    pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * d; i < t1 * d; ++i) c.x_mid[i] += c.x_in[i];
    });
    c.rstd2.resize(size(1));
    c.xn2.resize(size(d));
    RmsNormForward(c.x_mid.data(), params + o.ffn_norm, c.rstd2.data(), c.xn2.data());
    c.gate.resize(size(f));
    c.up.resize(size(f));
    c.act.resize(size(f));
    Linear(wt + o.gate, d, f, c.xn2.data(), n_, c.gate.data());
    Linear(wt + o.up, d, f, c.xn2.data(), n_, c.up.data());
    pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * f; i < t1 * f; ++i) {
        const float g = c.gate[i];
        c.act[i] = g / (1.0f + std::exp(-g)) * c.up[i];
      }
    });
    std::vector<float>* next = l + 1 < m.layers ? &layers_[l + 1].x_in : &x_final_;
    next->resize(size(d));
    Linear(wt + o.down, f, d, c.act.data(), n_, next->data());
    pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * d; i < t1 * d; ++i) (*next)[i] += c.x_mid[i];
    });
  }
  rstd_final_.resize(size(1));
  xf_.resize(size(d));
  RmsNormForward(x_final_.data(), params + layout_.output_norm(), rstd_final_.data(), xf_.data());
}

double Transformer::Loss(const Batch& batch, bool want_grad) {
  const int64_t d = config_.dim;
  const int64_t vocab = config_.vocab;
  loss_rows_.clear();
  for (int64_t t = 0; t < n_; ++t) {
    if (batch.targets[t] >= 0) loss_rows_.push_back(static_cast<int32_t>(t));
  }
  const auto rows = static_cast<int64_t>(loss_rows_.size());
  if (rows == 0) return 0.0;
  xf_loss_.resize(static_cast<size_t>(rows * d));
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(xf_loss_.data() + r * d, xf_.data() + loss_rows_[r] * d, sizeof(float) * d);
  }
  // Tied output: logits = xf · token_embdᵀ.
  logits_.resize(static_cast<size_t>(rows * vocab));
  Linear(wt_.data() + layout_.token_embd(), d, vocab, xf_loss_.data(), rows, logits_.data());
  row_loss_.resize(static_cast<size_t>(rows));
  const float inv_rows = 1.0f / static_cast<float>(rows);
  const kernels::KernelTable& kt = kt_;
  pool_->ForRange(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* z = logits_.data() + r * vocab;
      const int32_t target = batch.targets[loss_rows_[r]];
      // -log softmax(z)[target] = (max - z_target) + log S with S = sum exp(z - max); the
      // softmax gives 1/S as the probability of the largest logit, so no second pass of exps
      // is needed even when the target's own probability underflows.
      int64_t argmax = 0;
      for (int64_t i = 1; i < vocab; ++i) argmax = z[i] > z[argmax] ? i : argmax;
      const float gap = z[argmax] - z[target];
      kt.soft_max_f32(z, vocab, 1.0f);
      const double loss = static_cast<double>(gap) - std::log(static_cast<double>(z[argmax]));
      row_loss_[r] = loss;
      if (want_grad) {  // d loss / d z = (softmax - onehot) / rows, in place
        for (int64_t i = 0; i < vocab; ++i) z[i] *= inv_rows;
        z[target] -= inv_rows;
      }
    }
  });
  double total = 0.0;
  for (double l : row_loss_) total += l;
  return total / static_cast<double>(rows);
}

void Transformer::Backward(const Batch& batch, const float* params, float* grads) {
  const ModelConfig& m = config_;
  const int64_t d = m.dim;
  const int64_t f = m.ff;
  const int64_t dkv = m.kv_dim();
  const auto size = [&](int64_t width) { return static_cast<size_t>(n_ * width); };
  std::fill(grads, grads + layout_.total(), 0.0f);
  const auto rows = static_cast<int64_t>(loss_rows_.size());
  if (rows == 0) return;
  float* g_embd = grads + layout_.token_embd();

  // logits = xf · Eᵀ: dE = dlogitsᵀ · xf, dxf = dlogits · E (scattered back to the batch).
  LinearBackwardWeight(logits_.data(), xf_loss_.data(), d, m.vocab, rows, g_embd);
  dxf_rows_.resize(static_cast<size_t>(rows * d));
  LinearBackwardInput(params + layout_.token_embd(), d, m.vocab, logits_.data(), rows,
                      dxf_rows_.data(), false);
  dxf_.assign(size(d), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dxf_.data() + loss_rows_[r] * d, dxf_rows_.data() + r * d, sizeof(float) * d);
  }
  // Final norm.
  dx_.resize(size(d));
  RmsNormBackward(x_final_.data(), params + layout_.output_norm(), rstd_final_.data(), dxf_.data(),
                  dx_.data(), grads + layout_.output_norm(), false);

  // Scratch kept from step to step: fresh buffers of this size would be new pages each step,
  // and faulting them in cost a tenth of the step.
  dact_.resize(size(f));
  dgate_.resize(size(f));
  dup_.resize(size(f));
  dxn_.resize(size(d));
  float* dact = dact_.data();
  float* dgate = dgate_.data();
  float* dup = dup_.data();
  float* dxn = dxn_.data();
  dq_.resize(size(d));
  dk_.resize(size(dkv));
  dv_.resize(size(dkv));
  dattn_.resize(size(d));
  for (int64_t l = m.layers - 1; l >= 0; --l) {
    const LayerCache& c = layers_[l];
    const LayerOffsets& o = layout_.layer(l);
    // out = x_mid + act · Wdownᵀ
    LinearBackwardInput(params + o.down, f, d, dx_.data(), n_, dact, false);
    LinearBackwardWeight(dx_.data(), c.act.data(), f, d, n_, grads + o.down);
    // act = SiLU(gate) * up
    pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * f; i < t1 * f; ++i) {
        const float g = c.gate[i];
        const float s = 1.0f / (1.0f + std::exp(-g));
        dup[i] = dact[i] * g * s;
        dgate[i] = dact[i] * c.up[i] * s * (1.0f + g * (1.0f - s));
      }
    });
    // gate = xn2 · Wgateᵀ, up = xn2 · Wupᵀ
    LinearBackwardInput(params + o.gate, d, f, dgate, n_, dxn, false);
    LinearBackwardInput(params + o.up, d, f, dup, n_, dxn, true);
    LinearBackwardWeight(dgate, c.xn2.data(), d, f, n_, grads + o.gate);
    LinearBackwardWeight(dup, c.xn2.data(), d, f, n_, grads + o.up);
    // xn2 = RMSNorm(x_mid); x_mid also flows straight to the output.
    RmsNormBackward(c.x_mid.data(), params + o.ffn_norm, c.rstd2.data(), dxn, dx_.data(),
                    grads + o.ffn_norm, true);
    // x_mid = x_in + attn · Woᵀ
    LinearBackwardInput(params + o.wo, d, d, dx_.data(), n_, dattn_.data(), false);
    LinearBackwardWeight(dx_.data(), c.attn.data(), d, d, n_, grads + o.wo);
    // attention, then RoPE (a rotation: its gradient rotates back)
    AttentionBackward(batch, c, dattn_.data(), dq_.data(), dk_.data(), dv_.data());
    Rope(dq_.data(), m.heads, true);
    Rope(dk_.data(), m.kv_heads, true);
    // q, k, v = xn1 · W{q,k,v}ᵀ
    LinearBackwardInput(params + o.wq, d, d, dq_.data(), n_, dxn, false);
    LinearBackwardInput(params + o.wk, d, dkv, dk_.data(), n_, dxn, true);
    LinearBackwardInput(params + o.wv, d, dkv, dv_.data(), n_, dxn, true);
    LinearBackwardWeight(dq_.data(), c.xn1.data(), d, d, n_, grads + o.wq);
    LinearBackwardWeight(dk_.data(), c.xn1.data(), d, dkv, n_, grads + o.wk);
    LinearBackwardWeight(dv_.data(), c.xn1.data(), d, dkv, n_, grads + o.wv);
    // xn1 = RMSNorm(x_in); x_in also flows straight to x_mid.
    RmsNormBackward(c.x_in.data(), params + o.attn_norm, c.rstd1.data(), dxn, dx_.data(),
                    grads + o.attn_norm, true);
  }
  // Embedding lookup: rows of E receive their tokens' gradients, in batch order.
  for (int64_t t = 0; t < n_; ++t) {
    float* row = g_embd + static_cast<int64_t>(batch.tokens[t]) * d;
    const float* g = dx_.data() + t * d;
    for (int64_t i = 0; i < d; ++i) row[i] += g[i];
  }
}

double Transformer::Step(const Batch& batch, const float* params, float* grads) {
  Forward(batch, params);
  const double loss = Loss(batch, grads != nullptr);
  if (grads != nullptr) Backward(batch, params, grads);
  return loss;
}

}  // namespace agentry::train
