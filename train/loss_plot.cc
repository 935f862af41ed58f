// train/loss_plot.cc — see loss_plot.h.
#include "train/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace agentry::train {
namespace {

std::string Num(double v, const char* format = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

}  // namespace

std::string LossCsv(const std::vector<LossPoint>& history) {
  std::string out = "step,loss,eval_loss,lr,seconds\n";
  for (const LossPoint& p : history) {
    out += std::to_string(p.step) + "," + Num(p.loss, "%.6f") + "," +
           (p.eval_loss >= 0 ? Num(p.eval_loss, "%.6f") : "") + "," + Num(p.lr, "%.6g") + "," +
           Num(p.seconds, "%.2f") + "\n";
  }
  return out;
}

std::string LossSvg(const std::vector<LossPoint>& history, const std::string& title) {
  constexpr double kW = 720, kH = 420, kLeft = 60, kRight = 20, kTop = 40, kBottom = 50;
  std::vector<std::pair<double, double>> train, eval;
  double sum = 0.0;
  for (size_t i = 0; i < history.size(); ++i) {
    sum += history[i].loss;
    if (i >= 20) sum -= history[i - 20].loss;
    const double avg = sum / static_cast<double>(std::min<size_t>(i + 1, 20));
    train.emplace_back(static_cast<double>(history[i].step), avg);
    if (history[i].eval_loss >= 0) {
      eval.emplace_back(static_cast<double>(history[i].step), history[i].eval_loss);
    }
  }
  double max_step = 1, lo = 1e9, hi = 1e-9;
  for (const auto& series : {train, eval}) {
    for (const auto& [x, y] : series) {
      max_step = std::max(max_step, x);
      lo = std::min(lo, y);
      hi = std::max(hi, y);
    }
  }
  lo = std::max(lo, 1e-3);
  hi = std::max(hi, lo * 1.01);
  // The y axis spans whole quarters of a decade.
  const int quarter_lo = static_cast<int>(std::floor(std::log10(lo) * 4));
  const int quarter_hi = static_cast<int>(std::ceil(std::log10(hi) * 4));
  const double log_lo = quarter_lo / 4.0;
  const double log_hi = quarter_hi / 4.0;
  auto px = [&](double x) { return kLeft + (kW - kLeft - kRight) * x / max_step; };
  auto py = [&](double y) {
    const double f = (std::log10(std::max(y, 1e-3)) - log_lo) / (log_hi - log_lo);
    return kH - kBottom - (kH - kTop - kBottom) * f;
  };
  auto path = [&](const std::vector<std::pair<double, double>>& s, const char* color) {
    std::string d;
    for (size_t i = 0; i < s.size(); ++i) {
      d += (i == 0 ? "M" : "L") + Num(px(s[i].first), "%.1f") + "," + Num(py(s[i].second), "%.1f");
    }
    return "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"1.5\"/>\n";
  };
  std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(kW) +
                    "\" height=\"" + Num(kH) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  out += "<text x=\"" + Num(kW / 2) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" +
         title + "</text>\n";
  // Axes, y ticks at each power-of-ten quarter, x ticks at five steps.
  out += "<path d=\"M" + Num(kLeft) + "," + Num(kTop) + "V" + Num(kH - kBottom) + "H" +
         Num(kW - kRight) + "\" fill=\"none\" stroke=\"black\"/>\n";
  for (int quarter = quarter_lo; quarter <= quarter_hi; ++quarter) {
    const double e = quarter / 4.0;
    const double y = py(std::pow(10.0, e));
    out += "<text x=\"" + Num(kLeft - 6) + "\" y=\"" + Num(y + 4, "%.1f") +
           "\" text-anchor=\"end\">" + Num(std::pow(10.0, e), "%.3g") + "</text>\n";
    out += "<path d=\"M" + Num(kLeft) + "," + Num(y, "%.1f") + "H" + Num(kW - kRight) +
           "\" stroke=\"#ddd\"/>\n";
  }
  for (int i = 0; i <= 5; ++i) {
    const double step = max_step * i / 5;
    out += "<text x=\"" + Num(px(step), "%.1f") + "\" y=\"" + Num(kH - kBottom + 18) +
           "\" text-anchor=\"middle\">" + Num(std::round(step), "%.0f") + "</text>\n";
  }
  out += "<text x=\"" + Num(kW / 2) + "\" y=\"" + Num(kH - 12) +
         "\" text-anchor=\"middle\">step</text>\n";
  out += "<text x=\"16\" y=\"" + Num(kH / 2) + "\" transform=\"rotate(-90 16 " + Num(kH / 2) +
         ")\" text-anchor=\"middle\">cross-entropy (nats/token)</text>\n";
  out += path(train, "#1f77b4");
  out += path(eval, "#d62728");
  out += "<text x=\"" + Num(kW - kRight - 200) + "\" y=\"" + Num(kTop + 10) +
         "\" fill=\"#1f77b4\">training (20-step mean)</text>\n";
  out += "<text x=\"" + Num(kW - kRight - 200) + "\" y=\"" + Num(kTop + 26) +
         "\" fill=\"#d62728\">held-out</text>\n";
  out += "</svg>\n";
  return out;
}

}  // namespace agentry::train
