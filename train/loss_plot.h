// train/loss_plot.h — a training run's loss history as CSV and as an SVG line plot (no
// plotting library: the SVG is a few hundred bytes of paths and labels).
#pragma once

#include <string>
#include <vector>

#include "train/checkpoint.h"

namespace agentry::train {

// "step,loss,eval_loss,lr,seconds" then one row per step (eval_loss empty where unmeasured).
std::string LossCsv(const std::vector<LossPoint>& history);
// Training loss (a moving average over 20 steps) and held-out loss against steps, log-scale y.
std::string LossSvg(const std::vector<LossPoint>& history, const std::string& title);

}  // namespace agentry::train
