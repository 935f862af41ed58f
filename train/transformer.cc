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

// Scratch grows to the largest batch seen and never shrinks: after a shorter batch, resizing
// back up would zero the tail again, and that zeroing was a twentieth of a step. Only the
// batch's own prefix is ever read.
template <typename T>
static void Grow(std::vector<T>* v, size_t n) {
  if (v->size() < n) v->resize(n);
}

// Floats per row for rows of at least n floats that are an odd number of cache lines apart.
// Rows a multiple of 4 KiB apart (or of a large power of two) share L1 sets, and a kernel
// walking down such rows misses the cache on every one.
static int64_t UnaliasedStride(int64_t n) {
  constexpr int64_t kLine = 16;  // floats per 64-byte line
  const int64_t lines = (n + kLine - 1) / kLine;
  return (lines | 1) * kLine;
}

// Zeroes the first n floats of `rows` rows, ld apart: outputs an axpy block then adds into.
static void ZeroRows(float* y, int64_t ld, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) std::fill(y + r * ld, y + r * ld + n, 0.0f);
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
  Grow(&wt_, static_cast<size_t>(layout_.total()));
  for (const TensorSlot& t : layout_.tensors()) {
    if (t.dims.size() != 2) continue;  // gains
    const auto in = static_cast<int64_t>(t.dims[0]);
    const auto out = static_cast<int64_t>(t.dims[1]);
    if (t.offset == layout_.token_embd()) {
      // The logits' rows are vocab wide, and a vocabulary of a power of two puts the rows of
      // Eᵀ 4 KiB apart (see UnaliasedStride): this copy and the logits use a padded stride.
      logits_ld_ = UnaliasedStride(out);
      Grow(&embd_t_, static_cast<size_t>(in * logits_ld_));
      Transpose(pool_, params + t.offset, in, out, in, embd_t_.data(), logits_ld_);
      continue;
    }
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

void Transformer::ForTasks(int64_t n, const std::function<void(int64_t)>& fn) {
  std::atomic<int64_t> next{0};
  pool_->Run([&](int, int) {
    for (int64_t task = next++; task < n; task = next++) fn(task);
  });
}

void Transformer::AxpyRows(float* y, int64_t ldy, const float* a, int64_t a_row, int64_t a_step,
                           const float* x, int64_t ldx, int64_t n_x, int64_t n, int64_t rows,
                           bool zero_first) {
  pool_->ForRange((rows + kRowGroup - 1) / kRowGroup, [&](int64_t g0, int64_t g1) {
    const int64_t r0 = g0 * kRowGroup;
    const int64_t r1 = std::min(rows, g1 * kRowGroup);
    if (zero_first) ZeroRows(y + r0 * ldy, ldy, r1 - r0, n);
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

// sums[k] = the sum over i < len of term(k, i), in double and in order of i, for k < count
// (at most kChains). Each sum is a chain of dependent adds; with `count` chains side by side
// the adds overlap instead of each waiting out the last one's latency. The order within a
// chain, and so every bit, is that of one sum at a time.
template <int64_t kChains, typename Term>
static void ChainSums(int64_t count, int64_t len, const Term& term, double* sums) {
  for (int64_t k = 0; k < count; ++k) sums[k] = 0.0;
  if (count == kChains) {
    for (int64_t i = 0; i < len; ++i) {
      for (int64_t k = 0; k < kChains; ++k) sums[k] += term(k, i);
    }
    return;
  }
  for (int64_t k = 0; k < count; ++k) {
    for (int64_t i = 0; i < len; ++i) sums[k] += term(k, i);
  }
}

// use(t, sum) for every token t in [t0, t1), with sum = the sum over i < d of term(t, i) in
// double, in order of i: ChainSums over four tokens at a time.
template <typename Term, typename Use>
static void ForTokenSums(int64_t t0, int64_t t1, int64_t d, const Term& term, const Use& use) {
  constexpr int64_t kTokenChains = 4;
  for (int64_t tc = t0; tc < t1; tc += kTokenChains) {
    double sums[kTokenChains];
    const int64_t count = std::min(kTokenChains, t1 - tc);
    ChainSums<kTokenChains>(
        count, d, [&](int64_t k, int64_t i) { return term(tc + k, i); }, sums);
    for (int64_t k = 0; k < count; ++k) use(tc + k, sums[k]);
  }
}

void Transformer::RmsNormForward(const float* x, const float* w, float* rstd, float* out) {
  const int64_t d = config_.dim;
  const float eps = config_.rms_eps;
  const auto square = [&](int64_t t, int64_t i) {
    return static_cast<double>(x[t * d + i]) * x[t * d + i];
  };
  pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
    ForTokenSums(t0, t1, d, square, [&](int64_t t, double sum) {
      const float* xr = x + t * d;
      const float r = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(d)) + eps);
      rstd[t] = r;
      float* o = out + t * d;
      for (int64_t i = 0; i < d; ++i) o[i] = xr[i] * r * w[i];
    });
  });
}

void Transformer::RmsNormBackward(const float* x, const float* w, const float* rstd,
                                  const float* dy, float* dx, float* dw, bool accumulate) {
  // y_i = x_i r w_i with r = (mean x² + eps)^-1/2:
  //   dx_i = r w_i dy_i - x_i r³ (sum_k dy_k w_k x_k) / D,   dw_i = sum_t dy_i x_i r.
  const int64_t d = config_.dim;
  const auto term = [&](int64_t t, int64_t i) {
    return static_cast<double>(dy[t * d + i]) * w[i] * x[t * d + i];
  };
  pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
    ForTokenSums(t0, t1, d, term, [&](int64_t t, double dot) {
      const float* xr = x + t * d;
      const float* g = dy + t * d;
      const float r = rstd[t];
      const float k = static_cast<float>(dot / static_cast<double>(d)) * r * r * r;
      float* o = dx + t * d;
      for (int64_t i = 0; i < d; ++i) {
        const float v = r * w[i] * g[i] - xr[i] * k;
        o[i] = accumulate ? o[i] + v : v;
      }
    });
  });
  // The gain's gradient sums over tokens, in token order; one thread per dimension keeps it
  // fixed, and the dimensions' sums advance together, a token at a time.
  pool_->ForRange(d, [&](int64_t i0, int64_t i1) {
    std::vector<double> sums(static_cast<size_t>(i1 - i0), 0.0);
    for (int64_t t = 0; t < n_; ++t) {
      for (int64_t i = i0; i < i1; ++i)
        sums[i - i0] += static_cast<double>(dy[t * d + i]) * x[t * d + i] * rstd[t];
    }
    for (int64_t i = i0; i < i1; ++i) dw[i] = static_cast<float>(sums[i - i0]);
  });
}

void Transformer::RopeTable(const Batch& batch) {
  // Adjacent pairs rotated by pos * base^(-2i / head_dim), with the angles computed as the
  // engine computes them (context.cc), so training and inference rotate alike. One table per
  // batch serves every layer, forward and backward.
  const int64_t half = config_.head_dim() / 2;
  const float theta_scale =
      std::pow(config_.rope_base, -2.0f / static_cast<float>(config_.head_dim()));
  Grow(&rope_cos_, static_cast<size_t>(n_ * half));
  Grow(&rope_sin_, static_cast<size_t>(n_ * half));
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

// Attention works on one square matrix per (conversation, head): row q holds query q's
// probabilities (or score gradients) over the conversation's keys, L floats apart for a
// conversation of L tokens. Queries go kAttnBlock at a time, each block against the keys up to
// its last query, so one kernel call covers a block's rows and the tiles run full height.
// A block's entries right of the diagonal are written as zeros: they add nothing where the
// products read whole block rows, and the dK/dV pass reads its coefficients in place, down
// the columns (keys kAttnBlock at a time, the same alignment, so every entry it reads right
// of the diagonal is one of those zeros). Entries further right are never written or read.
constexpr int64_t kAttnBlock = 6;

Transformer::DocSquares Transformer::Squares(int64_t doc) const {
  const int64_t len = docs_[doc + 1] - docs_[doc];
  return {docs_[doc], len, UnaliasedStride(len), square_offset_[doc]};
}

void Transformer::PlanAttention(const Batch& batch) {
  docs_.clear();
  for (int64_t t = 0; t < n_; ++t) {
    if (batch.doc_begin[t] == t) docs_.push_back(t);
  }
  const auto n_docs = static_cast<int64_t>(docs_.size());
  docs_.push_back(n_);
  kvt_ld_ = UnaliasedStride(n_);
  square_offset_.assign(static_cast<size_t>(n_docs + 1), 0);
  attn_blocks_.clear();
  for (int64_t doc = 0; doc < n_docs; ++doc) {
    const int64_t len = docs_[doc + 1] - docs_[doc];
    square_offset_[doc + 1] = square_offset_[doc] + len * UnaliasedStride(len) * config_.heads;
    for (int64_t q0 = 0; q0 < len; q0 += kAttnBlock) {
      const int64_t q1 = std::min(len, q0 + kAttnBlock);
      attn_blocks_.push_back({doc, q0, q1});
    }
  }
}

// Rows [q0, q1) of one head's square `m` (rows ld apart) = the block's queries (ldq apart)
// dotted with the keys [0, q1) given transposed (k_t[i * ldk + j] is dimension i of key j).
static void BlockScores(const kernels::KernelTable& kt, const float* q, int64_t ldq, int64_t hd,
                        const float* k_t, int64_t ldk, int64_t q0, int64_t q1, float* m,
                        int64_t ld) {
  float* rows = m + q0 * ld;
  ZeroRows(rows, ld, q1 - q0, q1);
  kt.axpy_block_f32(rows, ld, q, ldq, 1, k_t, ldk, hd, q1, q1 - q0);
}

void Transformer::AttentionForward(LayerCache* c) {
  const int64_t hd = config_.head_dim();
  const int64_t group = config_.heads / config_.kv_heads;
  const int64_t d = config_.dim;
  const int64_t dkv = config_.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const kernels::KernelTable& kt = kt_;
  Grow(&c->probs, static_cast<size_t>(square_offset_.back()));
  Grow(&c->attn, static_cast<size_t>(n_ * d));
  Grow(&kvt_, static_cast<size_t>(dkv * kvt_ld_));
  Transpose(pool_, c->k.data(), dkv, n_, dkv, kvt_.data(), kvt_ld_);
  ForTasks(static_cast<int64_t>(attn_blocks_.size()), [&](int64_t block) {
    const AttnBlock& blk = attn_blocks_[block];
    const auto [begin, len, ld, first_square] = Squares(blk.doc);
    for (int64_t h = 0; h < config_.heads; ++h) {
      const int64_t g = h / group;
      float* p = c->probs.data() + first_square + h * len * ld;
      BlockScores(kt, c->q.data() + (begin + blk.q0) * d + h * hd, d, hd,
                  kvt_.data() + g * hd * kvt_ld_ + begin, kvt_ld_, blk.q0, blk.q1, p, ld);
      for (int64_t q = blk.q0; q < blk.q1; ++q) {
        float* row = p + q * ld;
        kt.soft_max_f32(row, q + 1, scale);
        std::fill(row + q + 1, row + blk.q1, 0.0f);
      }
      float* out = c->attn.data() + (begin + blk.q0) * d + h * hd;
      ZeroRows(out, d, blk.q1 - blk.q0, hd);
      kt.axpy_block_f32(out, d, p + blk.q0 * ld, ld, 1, c->v.data() + begin * dkv + g * hd, dkv,
                        blk.q1, hd, blk.q1 - blk.q0);
    }
  });
}

// dot[r] = the sum over j <= q0 + r of a[r][j] b[r][j] (rows ld apart), in double and in order
// of j, for the rows < `rows` (<= kAttnBlock) of a block whose first query is q0: the keys
// every row sees as ChainSums, then each row's last r keys, which the rows before it lack.
static void RowDots(const float* a, const float* b, int64_t ld, int64_t q0, int64_t rows,
                    double* dot) {
  const auto product = [&](int64_t r, int64_t j) {
    return static_cast<double>(a[r * ld + j]) * b[r * ld + j];
  };
  ChainSums<kAttnBlock>(rows, q0 + 1, product, dot);
  for (int64_t r = 1; r < rows; ++r) {
    for (int64_t j = q0 + 1; j <= q0 + r; ++j) dot[r] += product(r, j);
  }
}

void Transformer::AttentionBackward(const LayerCache& c, const float* d_attn, float* dq, float* dk,
                                    float* dv) {
  // Per query row: dP_j = dO·V_j, dS_j = P_j (dP_j - sum_k P_k dP_k), dQ = scale sum_j dS_j K_j.
  // Then per key row, in a second pass so each output has one writer:
  //   dK_j = scale sum_t dS_tj Q_t,  dV_j = sum_t P_tj dO_t  over the queries t >= j of its
  //   conversation and the heads sharing its KV head.
  const int64_t hd = config_.head_dim();
  const int64_t group = config_.heads / config_.kv_heads;
  const int64_t d = config_.dim;
  const int64_t dkv = config_.kv_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const kernels::KernelTable& kt = kt_;
  Grow(&dbig_, static_cast<size_t>(square_offset_.back()));
  Grow(&kvt_, static_cast<size_t>(dkv * kvt_ld_));
  Transpose(pool_, c.v.data(), dkv, n_, dkv, kvt_.data(), kvt_ld_);
  ForTasks(static_cast<int64_t>(attn_blocks_.size()), [&](int64_t block) {
    const AttnBlock& blk = attn_blocks_[block];
    const auto [begin, len, ld, first_square] = Squares(blk.doc);
    const int64_t rows = blk.q1 - blk.q0;
    for (int64_t h = 0; h < config_.heads; ++h) {
      const int64_t g = h / group;
      const int64_t square = first_square + h * len * ld;
      float* ds = dbig_.data() + square;
      BlockScores(kt, d_attn + (begin + blk.q0) * d + h * hd, d, hd,
                  kvt_.data() + g * hd * kvt_ld_ + begin, kvt_ld_, blk.q0, blk.q1, ds, ld);
      double pdp[kAttnBlock] = {};
      RowDots(c.probs.data() + square + blk.q0 * ld, ds + blk.q0 * ld, ld, blk.q0, rows, pdp);
      for (int64_t q = blk.q0; q < blk.q1; ++q) {
        const float* p = c.probs.data() + square + q * ld;
        float* dsq = ds + q * ld;
        const auto sum = static_cast<float>(pdp[q - blk.q0]);
        for (int64_t j = 0; j <= q; ++j) dsq[j] = p[j] * (dsq[j] - sum) * scale;
        std::fill(dsq + q + 1, dsq + blk.q1, 0.0f);
      }
      float* out = dq + (begin + blk.q0) * d + h * hd;
      ZeroRows(out, d, rows, hd);
      kt.axpy_block_f32(out, d, ds + blk.q0 * ld, ld, 1, c.k.data() + begin * dkv + g * hd, dkv,
                        blk.q1, hd, rows);
    }
  });
  // Tasks are (key block, KV head) pairs, each the only writer of its rows of dK and dV. One
  // axpy block per head sums the query (dO) rows into all the block's outputs, which stay in
  // registers while the rows stream past, with each key's coefficients (dS and P of every
  // later query) read down its column of the head's square. (Adding into every key row for
  // each query instead was 60 % of a training step: a long conversation's key rows do not
  // fit in L1.) The key blocks are the query blocks: the same rows, the same alignment.
  ForTasks(static_cast<int64_t>(attn_blocks_.size()) * config_.kv_heads, [&](int64_t task) {
    const AttnBlock& blk = attn_blocks_[task / config_.kv_heads];
    const int64_t g = task % config_.kv_heads;
    const auto [begin, len, ld, first_square] = Squares(blk.doc);
    const int64_t j0 = blk.q0;
    const int64_t nj = blk.q1 - blk.q0;
    const int64_t n_q = len - j0;  // queries that see a key of the block: t >= j0
    // The block's output rows: consecutive keys, dkv apart.
    float* out_k = dk + (begin + j0) * dkv + g * hd;
    float* out_v = dv + (begin + j0) * dkv + g * hd;
    ZeroRows(out_k, dkv, nj, hd);
    ZeroRows(out_v, dkv, nj, hd);
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      // Coefficient (key j0 + b, query j0 + s) at column j0 + b of row j0 + s.
      const int64_t corner = first_square + h * len * ld + j0 * ld + j0;
      const int64_t first = (begin + j0) * d + h * hd;
      kt.axpy_block_f32(out_k, dkv, dbig_.data() + corner, 1, ld, c.q.data() + first, d, n_q, hd,
                        nj);
      kt.axpy_block_f32(out_v, dkv, c.probs.data() + corner, 1, ld, d_attn + first, d, n_q, hd, nj);
    }
  });
}

void Transformer::Forward(const Batch& batch, const float* params) {
  const ModelConfig& m = config_;
  const int64_t d = m.dim;
  const int64_t f = m.ff;
  n_ = batch.size();
  PlanAttention(batch);
  layers_.resize(static_cast<size_t>(m.layers));
  RopeTable(batch);
  TransposeWeights(params);
  const float* wt = wt_.data();
  const auto size = [&](int64_t width) { return static_cast<size_t>(n_ * width); };

  std::vector<float>* x = &layers_[0].x_in;
  Grow(x, size(d));
  const float* embd = params + layout_.token_embd();
  for (int64_t t = 0; t < n_; ++t) {
    std::memcpy(x->data() + t * d, embd + static_cast<int64_t>(batch.tokens[t]) * d,
                sizeof(float) * d);
  }
  for (int64_t l = 0; l < m.layers; ++l) {
    LayerCache& c = layers_[l];
    const LayerOffsets& o = layout_.layer(l);
    Grow(&c.rstd1, size(1));
    Grow(&c.xn1, size(d));
    RmsNormForward(c.x_in.data(), params + o.attn_norm, c.rstd1.data(), c.xn1.data());
    Grow(&c.q, size(d));
    Grow(&c.k, size(m.kv_dim()));
    Grow(&c.v, size(m.kv_dim()));
    Linear(wt + o.wq, d, d, c.xn1.data(), n_, c.q.data());
    Linear(wt + o.wk, d, m.kv_dim(), c.xn1.data(), n_, c.k.data());
    Linear(wt + o.wv, d, m.kv_dim(), c.xn1.data(), n_, c.v.data());
    Rope(c.q.data(), m.heads, false);
    Rope(c.k.data(), m.kv_heads, false);
    AttentionForward(&c);
    Grow(&c.x_mid, size(d));
    Linear(wt + o.wo, d, d, c.attn.data(), n_, c.x_mid.data());
    pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * d; i < t1 * d; ++i) c.x_mid[i] += c.x_in[i];
    });
    Grow(&c.rstd2, size(1));
    Grow(&c.xn2, size(d));
    RmsNormForward(c.x_mid.data(), params + o.ffn_norm, c.rstd2.data(), c.xn2.data());
    Grow(&c.gate, size(f));
    Grow(&c.up, size(f));
    Grow(&c.act, size(f));
    Grow(&c.exp_neg_gate, size(f));
    Linear(wt + o.gate, d, f, c.xn2.data(), n_, c.gate.data());
    Linear(wt + o.up, d, f, c.xn2.data(), n_, c.up.data());
    pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * f; i < t1 * f; ++i) {
        const float g = c.gate[i];
        c.exp_neg_gate[i] = std::exp(-g);
        c.act[i] = g / (1.0f + c.exp_neg_gate[i]) * c.up[i];
      }
    });
    std::vector<float>* next = l + 1 < m.layers ? &layers_[l + 1].x_in : &x_final_;
    Grow(next, size(d));
    Linear(wt + o.down, f, d, c.act.data(), n_, next->data());
    pool_->ForRange(n_, [&](int64_t t0, int64_t t1) {
      for (int64_t i = t0 * d; i < t1 * d; ++i) (*next)[i] += c.x_mid[i];
    });
  }
  Grow(&rstd_final_, size(1));
  Grow(&xf_, size(d));
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
  Grow(&xf_loss_, static_cast<size_t>(rows * d));
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(xf_loss_.data() + r * d, xf_.data() + loss_rows_[r] * d, sizeof(float) * d);
  }
  // Tied output: logits = xf · token_embdᵀ, rows logits_ld_ apart.
  const int64_t ld = logits_ld_;
  Grow(&logits_, static_cast<size_t>(rows * ld));
  AxpyRows(logits_.data(), ld, xf_loss_.data(), d, 1, embd_t_.data(), ld, d, vocab, rows, true);
  row_loss_.resize(static_cast<size_t>(rows));
  const float inv_rows = 1.0f / static_cast<float>(rows);
  const kernels::KernelTable& kt = kt_;
  pool_->ForRange(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* z = logits_.data() + r * ld;
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

  // logits = xf · Eᵀ: dE = dlogitsᵀ · xf, dxf = dlogits · E (scattered back to the batch);
  // LinearBackwardWeight and LinearBackwardInput with the logits' padded row stride.
  const int64_t ld = logits_ld_;
  AxpyRows(g_embd, d, logits_.data(), 1, ld, xf_loss_.data(), d, rows, d, m.vocab, false);
  Grow(&dxf_rows_, static_cast<size_t>(rows * d));
  AxpyRows(dxf_rows_.data(), d, logits_.data(), ld, 1, params + layout_.token_embd(), d, m.vocab, d,
           rows, true);
  Grow(&dxf_, size(d));
  std::fill(dxf_.begin(), dxf_.begin() + n_ * d, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dxf_.data() + loss_rows_[r] * d, dxf_rows_.data() + r * d, sizeof(float) * d);
  }
  // Final norm.
  Grow(&dx_, size(d));
  RmsNormBackward(x_final_.data(), params + layout_.output_norm(), rstd_final_.data(), dxf_.data(),
                  dx_.data(), grads + layout_.output_norm(), false);

  // Scratch kept from step to step: fresh buffers of this size would be new pages each step,
  // and faulting them in cost a tenth of the step.
  Grow(&dact_, size(f));
  Grow(&dgate_, size(f));
  Grow(&dup_, size(f));
  Grow(&dxn_, size(d));
  float* dact = dact_.data();
  float* dgate = dgate_.data();
  float* dup = dup_.data();
  float* dxn = dxn_.data();
  Grow(&dq_, size(d));
  Grow(&dk_, size(dkv));
  Grow(&dv_, size(dkv));
  Grow(&dattn_, size(d));
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
        const float s = 1.0f / (1.0f + c.exp_neg_gate[i]);
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
    AttentionBackward(c, dattn_.data(), dq_.data(), dk_.data(), dv_.data());
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
