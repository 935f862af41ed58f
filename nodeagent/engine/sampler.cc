#include "nodeagent/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace agentry::engine {

Status ValidateSamplerParams(const SamplerParams& p) {
  auto bad = [](const char* field, const std::string& want, double got) {
    return InvalidArgumentError(std::string("sampler.") + field + ": must be " + want + ", got " +
                                std::to_string(got));
  };
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    return bad("temperature", "zero or more", p.temperature);
  }
  if (p.top_k < 0) return bad("top_k", "zero (off) or more", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return bad("top_p", "in (0, 1]", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return bad("min_p", "in [0, 1]", p.min_p);
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) {
    return bad("repeat_penalty", "positive", p.repeat_penalty);
  }
  if (!std::isfinite(p.frequency_penalty)) return bad("frequency_penalty", "finite", 0);
  if (!std::isfinite(p.presence_penalty)) return bad("presence_penalty", "finite", 0);
  if (p.penalty_last_n < 0) return bad("penalty_last_n", "zero or more", p.penalty_last_n);
  return OkStatus();
}

StatusOr<Sampler> Sampler::Create(const SamplerParams& params) {
  AGENTRY_RETURN_IF_ERROR(ValidateSamplerParams(params));
  return Sampler(params);
}

void Sampler::Accept(int32_t token) {
  if (params_.penalty_last_n == 0) return;
  recent_.push_back(token);
  while (recent_.size() > static_cast<size_t>(params_.penalty_last_n)) recent_.pop_front();
}

void Sampler::Reset() {
  recent_.clear();
  rng_.seed(params_.seed);
}

namespace {

// Better first: the higher logit, then the lower id. A total order on tokens (no NaN), so the
// best k are one set in one order whichever way they are found.
bool Better(const float* logits, int32_t a, int32_t b) {
  return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
}

Status NanLogitError(int64_t i) {
  return InvalidArgumentError("logit " + std::to_string(i) + " is NaN");
}

}  // namespace

Status TopCandidatesRef(const float* logits, const uint8_t* allowed, int64_t n_vocab, int32_t k,
                        std::vector<int32_t>* out) {
  out->clear();
  for (int64_t i = 0; i < n_vocab; ++i) {
    if (std::isnan(logits[i])) return NanLogitError(i);
    if (allowed == nullptr || allowed[i] != 0) out->push_back(static_cast<int32_t>(i));
  }
  std::sort(out->begin(), out->end(),
            [logits](int32_t a, int32_t b) { return Better(logits, a, b); });
  if (k > 0 && out->size() > static_cast<size_t>(k)) out->resize(static_cast<size_t>(k));
  return OkStatus();
}

Status TopCandidates(const float* logits, const uint8_t* allowed, int64_t n_vocab, int32_t k,
                     std::vector<int32_t>* out) {
  if (k <= 0 || k >= n_vocab) return TopCandidatesRef(logits, allowed, n_vocab, k, out);
  // One pass keeping the k best so far in a heap whose front is the worst of them. A later
  // token ties with none it could displace (its id is higher), so it enters only with a
  // strictly higher logit than that one's: one comparison passes over nearly every token of a
  // large vocabulary, where sorting them all took most of a step's sampling. The comparison
  // is written so that a NaN fails it too, and is caught on the slow path.
  const auto worse = [logits](int32_t a, int32_t b) { return Better(logits, a, b); };
  out->clear();
  int64_t i = 0;
  for (; i < n_vocab && out->size() < static_cast<size_t>(k); ++i) {
    if (std::isnan(logits[i])) return NanLogitError(i);
    if (allowed != nullptr && allowed[i] == 0) continue;
    out->push_back(static_cast<int32_t>(i));
    std::push_heap(out->begin(), out->end(), worse);
  }
  if (out->empty()) return OkStatus();  // the mask allows nothing
  float floor = logits[out->front()];
  for (; i < n_vocab; ++i) {
    if (logits[i] <= floor) continue;
    if (std::isnan(logits[i])) return NanLogitError(i);
    if (allowed != nullptr && allowed[i] == 0) continue;
    std::pop_heap(out->begin(), out->end(), worse);
    out->back() = static_cast<int32_t>(i);
    std::push_heap(out->begin(), out->end(), worse);
    floor = logits[out->front()];
  }
  std::sort_heap(out->begin(), out->end(), worse);
  return OkStatus();
}

StatusOr<int32_t> Sampler::Sample(const float* logits, int64_t n_vocab) {
  // Penalties, once per distinct recent token, on a copy; without any, the caller's logits are
  // read where they are.
  const float* scored = logits;
  if (!recent_.empty() && (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                           params_.presence_penalty != 0.0f)) {
    logits_.assign(logits, logits + n_vocab);
    std::unordered_map<int32_t, int> counts;
    for (int32_t t : recent_) ++counts[t];
    for (const auto& [token, count] : counts) {
      if (token < 0 || token >= n_vocab) continue;
      float& l = logits_[token];
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
      l -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
    }
    scored = logits_.data();
  }

  const uint8_t* allowed = nullptr;
  if (mask_) {
    allowed_.assign(n_vocab, 1);
    mask_(&allowed_);
    allowed = allowed_.data();
  }
  // Greedy is the best candidate; otherwise top-k keeps the k best, in order, for the steps
  // after it.
  AGENTRY_RETURN_IF_ERROR(TopCandidates(
      scored, allowed, n_vocab, params_.temperature == 0.0f ? 1 : params_.top_k, &candidates_));
  if (candidates_.empty()) return FailedPreconditionError("the token mask allows no token");
  if (params_.temperature == 0.0f) return candidates_[0];

  const float max_logit = scored[candidates_[0]];
  // top-p on the probabilities at temperature 1, keeping at least one token.
  if (params_.top_p < 1.0f) {
    double total = 0.0;
    for (int32_t t : candidates_) total += std::exp(scored[t] - max_logit);
    double cumulative = 0.0;
    size_t n = 0;
    while (n < candidates_.size()) {
      cumulative += std::exp(scored[candidates_[n]] - max_logit) / total;
      ++n;
      if (cumulative >= params_.top_p) break;
    }
    candidates_.resize(n);
  }
  // min-p: probability at least min_p times the best one's.
  if (params_.min_p > 0.0f) {
    const float floor = max_logit + std::log(params_.min_p);
    size_t n = 1;
    while (n < candidates_.size() && scored[candidates_[n]] >= floor) ++n;
    candidates_.resize(n);
  }

  // Draw with temperature.
  weights_.resize(candidates_.size());
  double total = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    weights_[i] = std::exp((scored[candidates_[i]] - max_logit) / params_.temperature);
    total += weights_[i];
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  for (size_t i = 0; i < candidates_.size(); ++i) {
    r -= weights_[i];
    if (r < 0.0) return candidates_[i];
  }
  return candidates_.back();
}

}  // namespace agentry::engine
