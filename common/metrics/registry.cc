#include "common/metrics/registry.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace agentry::metrics {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "agentry metrics: %s\n", message.c_str());
  std::abort();
}

bool IsNameStart(char c, bool colon_ok) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}

bool IsNameChar(char c, bool colon_ok) {
  return IsNameStart(c, colon_ok) || (c >= '0' && c <= '9');
}

bool IsValidName(std::string_view name, bool colon_ok) {
  if (name.empty() || !IsNameStart(name[0], colon_ok)) return false;
  for (char c : name) {
    if (!IsNameChar(c, colon_ok)) return false;
  }
  return true;
}

}  // namespace

bool IsValidMetricName(std::string_view name) { return IsValidName(name, /*colon_ok=*/true); }

bool IsValidLabelName(std::string_view name) {
  return IsValidName(name, /*colon_ok=*/false) && name.substr(0, 2) != "__" && name != "le";
}

FamilySnapshot FamilyBase::EmptySnapshot() const {
  FamilySnapshot snap;
  snap.name = name_;
  snap.help = help_;
  snap.type = type_;
  snap.label_names = label_names_;
  return snap;
}

void FamilyBase::CheckLabelCount(size_t count) const {
  if (count != label_names_.size()) {
    Die(name_ + ": got " + std::to_string(count) + " label values for " +
        std::to_string(label_names_.size()) + " label names");
  }
}

template <typename T>
Family<T>& Registry::Add(const std::string& name, const std::string& help, MetricType type,
                         std::vector<std::string> label_names, std::vector<double> buckets) {
  if (!IsValidMetricName(name)) Die("invalid metric name \"" + name + "\"");
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label)) {
      std::string message = name;
      message.append(": invalid label name \"").append(label).append("\"");
      Die(message);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    FamilyBase* existing = it->second.get();
    if (existing->type() != type || existing->label_names() != label_names) {
      Die(name + ": registered again with a different type or label names");
    }
    return *static_cast<Family<T>*>(existing);
  }
  auto family =
      std::make_unique<Family<T>>(name, help, type, std::move(label_names), std::move(buckets));
  Family<T>& ref = *family;
  families_.emplace(name, std::move(family));
  return ref;
}

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  return Add<Counter>(name, help, MetricType::kCounter, std::move(label_names), {});
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  return Add<Gauge>(name, help, MetricType::kGauge, std::move(label_names), {});
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> buckets) {
  if (buckets.empty()) Die(name + ": a histogram needs at least one bucket");
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
      Die(name + ": buckets must be finite and strictly increasing");
    }
  }
  return Add<Histogram>(name, help, MetricType::kHistogram, std::move(label_names),
                        std::move(buckets));
}

void Registry::AddCollectHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(collect_mu_);
  hooks_.push_back(std::move(hook));
}

std::vector<FamilySnapshot> Registry::Collect() const {
  std::lock_guard<std::mutex> collect_lock(collect_mu_);
  for (const auto& hook : hooks_) hook();
  std::vector<FamilySnapshot> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(families_.size());
  for (const auto& [name, family] : families_) out.push_back(family->Collect());
  return out;
}

}  // namespace agentry::metrics
