// train/optimizer.h — AdamW with global-norm gradient clipping and a warm-up + cosine
// learning-rate schedule: the update rule of `agentry train`.
//
//   AdamW opt(layout, {.lr = 3e-3f, .weight_decay = 0.1f});
//   double norm = opt.Update(step, params.data(), grads.data());  // clips grads in place
#pragma once

#include <cstdint>
#include <vector>

#include "train/model_config.h"

namespace agentry::train {

struct OptimizerConfig {
  float lr = 3e-3f;           // peak learning rate
  float min_lr_ratio = 0.1f;  // the cosine decays to lr * min_lr_ratio
  int64_t warmup_steps = 100;
  int64_t total_steps = 1000;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;  // decoupled; matrices only (not norm gains)
  float clip_norm = 1.0f;     // global L2 norm of the gradient; 0: no clipping
};

// The learning rate at `step` (0-based): linear warm-up to lr over warmup_steps, then a cosine
// to lr * min_lr_ratio at total_steps, flat after.
float LearningRate(const OptimizerConfig& config, int64_t step);

class AdamW {
 public:
  AdamW(const ParameterLayout& layout, const OptimizerConfig& config);

  // Applies one update for `step` (0-based) and returns the gradient's global L2 norm before
  // clipping. `grads` is scaled in place when clipped. A non-finite norm is returned without
  // touching the parameters or moments.
  double Update(int64_t step, float* params, float* grads);

  const OptimizerConfig& config() const { return config_; }
  // The moment estimates, for checkpoints.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }

 private:
  OptimizerConfig config_;
  std::vector<uint8_t> decay_;  // per parameter: 1 where weight decay applies
  std::vector<float> m_, v_;
};

}  // namespace agentry::train
