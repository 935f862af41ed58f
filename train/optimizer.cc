// train/optimizer.cc — see optimizer.h.
#include "train/optimizer.h"

#include <cmath>

namespace agentry::train {

float LearningRate(const OptimizerConfig& c, int64_t step) {
  if (c.warmup_steps > 0 && step < c.warmup_steps) {
    return c.lr * static_cast<float>(step + 1) / static_cast<float>(c.warmup_steps);
  }
  const int64_t decay_steps = c.total_steps - c.warmup_steps;
  if (decay_steps <= 0) return c.lr;
  const double progress =
      std::min(1.0, static_cast<double>(step - c.warmup_steps) / static_cast<double>(decay_steps));
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  const double min_lr = static_cast<double>(c.lr) * c.min_lr_ratio;
  return static_cast<float>(min_lr + (static_cast<double>(c.lr) - min_lr) * cosine);
}

AdamW::AdamW(const ParameterLayout& layout, const OptimizerConfig& config)
    : config_(config),
      decay_(static_cast<size_t>(layout.total()), 0),
      m_(static_cast<size_t>(layout.total()), 0.0f),
      v_(static_cast<size_t>(layout.total()), 0.0f) {
  for (const TensorSlot& t : layout.tensors()) {
    if (t.is_norm) continue;
    for (int64_t i = 0; i < t.size; ++i) decay_[t.offset + i] = 1;
  }
}

double AdamW::Update(int64_t step, float* params, float* grads) {
  const auto n = static_cast<int64_t>(m_.size());
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(grads[i]) * grads[i];
  const double norm = std::sqrt(sum);
  if (!std::isfinite(norm)) return norm;  // the caller stops; the parameters stay as they were
  if (config_.clip_norm > 0.0f && norm > config_.clip_norm) {
    const auto scale = static_cast<float>(config_.clip_norm / norm);
    for (int64_t i = 0; i < n; ++i) grads[i] *= scale;
  }
  const float lr = LearningRate(config_, step);
  const float b1 = config_.beta1;
  const float b2 = config_.beta2;
  const auto t = static_cast<double>(step + 1);
  const auto bias1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), t));
  const auto bias2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), t));
  const float decay = 1.0f - lr * config_.weight_decay;
  for (int64_t i = 0; i < n; ++i) {
    const float g = grads[i];
    m_[i] = b1 * m_[i] + (1.0f - b1) * g;
    v_[i] = b2 * v_[i] + (1.0f - b2) * g * g;
    const float m_hat = m_[i] / bias1;
    const float v_hat = v_[i] / bias2;
    if (decay_[i] != 0) params[i] *= decay;
    params[i] -= lr * m_hat / (std::sqrt(v_hat) + config_.eps);
  }
  return norm;
}

}  // namespace agentry::train
