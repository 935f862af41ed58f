// common/metrics/metric.h — the three metric kinds, each one labelled child of a family.
//
// Updates are lock-free (atomics only) so they are safe on hot paths such as the decode
// loop; reading takes a relaxed snapshot, which is what a scrape needs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace agentry::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// Monotonically increasing. Increment by a negative amount is ignored (a counter that goes
// down would break rate()), and so is NaN.
//
// Whole-number increments (the common case: requests, tokens, tool calls) go to an integer
// atomic, which is a single `lock xadd`; only fractional amounts (seconds of CPU) pay for the
// compare-and-swap loop a floating-point atomic needs. bench/metrics_bench measures both.
class Counter {
 public:
  void Increment() { whole_.fetch_add(1, std::memory_order_relaxed); }
  void Increment(double amount) {
    if (!(amount >= 0.0)) return;
    if (amount < kMaxExactWhole && amount == static_cast<double>(static_cast<uint64_t>(amount))) {
      whole_.fetch_add(static_cast<uint64_t>(amount), std::memory_order_relaxed);
    } else {
      fraction_.fetch_add(amount, std::memory_order_relaxed);
    }
  }
  double Value() const {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
           fraction_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr double kMaxExactWhole = 9007199254740992.0;  // 2^53
  std::atomic<uint64_t> whole_{0};
  std::atomic<double> fraction_{0.0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Decrement(double amount = 1.0) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Cumulative histogram with fixed upper bounds (the implicit +Inf bucket is added).
class Histogram {
 public:
  struct Snapshot {
    std::vector<double> upper_bounds;         // as configured, without +Inf
    std::vector<uint64_t> cumulative_counts;  // one per bound, then the +Inf bucket
    double sum = 0.0;
    uint64_t count = 0;  // equals cumulative_counts.back()
  };

  // `upper_bounds` must be strictly increasing and finite; Registry checks before calling.
  explicit Histogram(std::vector<double> upper_bounds);

  void Observe(double value);
  Snapshot Read() const;

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> bucket_counts_;  // bounds + 1, not cumulative
  std::atomic<double> sum_{0.0};
};

// Bucket helpers in the style of prometheus client libraries.
std::vector<double> LinearBuckets(double start, double width, int count);
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// 1 ms .. ~33 s, for request and step latencies.
std::vector<double> DefaultLatencyBuckets();

}  // namespace agentry::metrics
