// common/metrics/registry.h — metric families and the registry a binary exposes.
//
// The prometheus-cpp model: a Registry owns families; a family has a name, help text, a
// type and a fixed list of label names; each distinct list of label values is one child
// metric, created on first use and alive as long as the registry.
//
//   metrics::Registry registry;
//   auto& requests = registry.AddCounter("agentry_http_requests_total",
//                                        "HTTP requests served.", {"route", "code"});
//   metrics::Counter& ok = requests.WithLabels({"/v1/sessions", "200"});  // keep the reference
//   ok.Increment();                                                      // lock-free
//
// Finding a child takes a mutex; the hot path should look a child up once and keep the
// reference. Registering a name that is invalid, or again with a different type or label
// names, is a programming error and aborts with a message (names are compile-time constants;
// label values are data and are never rejected).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics/metric.h"

namespace agentry::metrics {

// What a scrape sees of one child.
struct ChildSnapshot {
  std::vector<std::string> label_values;  // same order as FamilySnapshot::label_names
  double value = 0.0;                     // counter, gauge
  Histogram::Snapshot histogram;          // histogram
};

struct FamilySnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<std::string> label_names;
  std::vector<ChildSnapshot> children;  // ordered by label values
};

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved), not "le" (histograms use it).
bool IsValidLabelName(std::string_view name);

class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  virtual FamilySnapshot Collect() const = 0;

 protected:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(type),
        label_names_(std::move(label_names)) {}

  FamilySnapshot EmptySnapshot() const;
  void CheckLabelCount(size_t count) const;

  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

template <typename T>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
         std::vector<double> buckets = {})
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        buckets_(std::move(buckets)) {}

  // The child for these label values (in label-name order), created if new.
  T& WithLabels(const std::vector<std::string>& values) {
    CheckLabelCount(values.size());
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<T>& slot = children_[values];
    if (!slot) slot = MakeChild();
    return *slot;
  }

  FamilySnapshot Collect() const override {
    FamilySnapshot snap = EmptySnapshot();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [values, child] : children_) {
      ChildSnapshot c;
      c.label_values = values;
      if constexpr (std::is_same_v<T, Histogram>) {
        c.histogram = child->Read();
      } else {
        c.value = child->Value();
      }
      snap.children.push_back(std::move(c));
    }
    return snap;
  }

 private:
  std::unique_ptr<T> MakeChild() const {
    if constexpr (std::is_same_v<T, Histogram>) {
      return std::make_unique<Histogram>(buckets_);
    } else {
      return std::make_unique<T>();
    }
  }

  const std::vector<double> buckets_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registering an existing name with the same type and label names returns the existing
  // family, so independent modules can share one.
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  // `buckets` must be non-empty, finite and strictly increasing.
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> buckets);

  // Runs before every Collect(); use it for values read on demand (process memory, queue
  // depth). Hooks run under the registry's collect lock, one scrape at a time.
  void AddCollectHook(std::function<void()> hook);

  // Every family, ordered by name.
  std::vector<FamilySnapshot> Collect() const;

 private:
  template <typename T>
  Family<T>& Add(const std::string& name, const std::string& help, MetricType type,
                 std::vector<std::string> label_names, std::vector<double> buckets);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;
  mutable std::mutex collect_mu_;
  std::vector<std::function<void()>> hooks_;
};

}  // namespace agentry::metrics
