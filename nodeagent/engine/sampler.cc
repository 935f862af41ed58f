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

StatusOr<int32_t> Sampler::Sample(const float* logits, int64_t n_vocab) {
  logits_.assign(logits, logits + n_vocab);
  for (int64_t i = 0; i < n_vocab; ++i) {
    if (std::isnan(logits_[i])) {
      return InvalidArgumentError("logit " + std::to_string(i) + " is NaN");
    }
  }

  // Penalties, once per distinct recent token.
  if (!recent_.empty() && (params_.repeat_penalty != 1.0f || params_.frequency_penalty != 0.0f ||
                           params_.presence_penalty != 0.0f)) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t t : recent_) ++counts[t];
    for (const auto& [token, count] : counts) {
      if (token < 0 || token >= n_vocab) continue;
      float& l = logits_[token];
      l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
      l -= static_cast<float>(count) * params_.frequency_penalty + params_.presence_penalty;
    }
  }

  candidates_.clear();
  if (mask_) {
    allowed_.assign(n_vocab, 1);
    mask_(&allowed_);
    for (int64_t i = 0; i < n_vocab; ++i) {
      if (allowed_[i]) candidates_.push_back(static_cast<int32_t>(i));
    }
    if (candidates_.empty()) return FailedPreconditionError("the token mask allows no token");
  } else {
    candidates_.resize(n_vocab);
    for (int64_t i = 0; i < n_vocab; ++i) candidates_[i] = static_cast<int32_t>(i);
  }
  auto by_logit = [this](int32_t a, int32_t b) {
    return logits_[a] > logits_[b] || (logits_[a] == logits_[b] && a < b);
  };

  if (params_.temperature == 0.0f) {
    return *std::min_element(candidates_.begin(), candidates_.end(), by_logit);
  }

  // top-k keeps the k best, sorted; later steps need them sorted anyway.
  size_t keep = candidates_.size();
  if (params_.top_k > 0) keep = std::min(keep, static_cast<size_t>(params_.top_k));
  std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_logit);
  candidates_.resize(keep);

  const float max_logit = logits_[candidates_[0]];
  // top-p on the probabilities at temperature 1, keeping at least one token.
  if (params_.top_p < 1.0f) {
    double total = 0.0;
    for (int32_t t : candidates_) total += std::exp(logits_[t] - max_logit);
    double cumulative = 0.0;
    size_t n = 0;
    while (n < candidates_.size()) {
      cumulative += std::exp(logits_[candidates_[n]] - max_logit) / total;
      ++n;
      if (cumulative >= params_.top_p) break;
    }
    candidates_.resize(n);
  }
  // min-p: probability at least min_p times the best one's.
  if (params_.min_p > 0.0f) {
    const float floor = max_logit + std::log(params_.min_p);
    size_t n = 1;
    while (n < candidates_.size() && logits_[candidates_[n]] >= floor) ++n;
    candidates_.resize(n);
  }

  // Draw with temperature.
  std::vector<double> weights(candidates_.size());
  double total = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    weights[i] = std::exp((logits_[candidates_[i]] - max_logit) / params_.temperature);
    total += weights[i];
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  for (size_t i = 0; i < candidates_.size(); ++i) {
    r -= weights[i];
    if (r < 0.0) return candidates_[i];
  }
  return candidates_.back();
}

}  // namespace agentry::engine
