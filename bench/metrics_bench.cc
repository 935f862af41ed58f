// bench/metrics_bench.cc — the cost of recording a metric on a hot path.
//
// common/metrics promises lock-free updates. Each of our operations is measured beside two
// references in the same run: the cheapest possible lock-free update (a relaxed integer
// fetch_add, the floor) and a mutex-guarded double (what a naive registry does). The table
// at the end prints ours / reference for one thread and for two threads hammering one child.
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>

#include <benchmark/benchmark.h>

#include "common/metrics/registry.h"
#include "common/metrics/text_format.h"

namespace {

using agentry::metrics::Counter;
using agentry::metrics::Histogram;
using agentry::metrics::Registry;

Counter g_counter;
Histogram g_histogram(agentry::metrics::DefaultLatencyBuckets());
std::atomic<uint64_t> g_atomic_int{0};
std::mutex g_mu;
double g_locked_value = 0;
uint64_t g_locked_buckets[17] = {};

void BM_Counter_Increment(benchmark::State& state) {
  for (auto _ : state) g_counter.Increment();
}
void BM_Reference_AtomicIntAdd(benchmark::State& state) {
  for (auto _ : state) g_atomic_int.fetch_add(1, std::memory_order_relaxed);
}
void BM_Reference_MutexDoubleAdd(benchmark::State& state) {
  for (auto _ : state) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_locked_value += 1.0;
  }
}
void BM_Histogram_Observe(benchmark::State& state) {
  double v = 0.0005;
  for (auto _ : state) {
    g_histogram.Observe(v);
    v = v > 30 ? 0.0005 : v * 1.7;
  }
}
void BM_Reference_MutexHistogramObserve(benchmark::State& state) {
  const std::vector<double> bounds = agentry::metrics::DefaultLatencyBuckets();
  double v = 0.0005;
  for (auto _ : state) {
    std::lock_guard<std::mutex> lock(g_mu);
    size_t i = 0;
    while (i < bounds.size() && bounds[i] < v) ++i;
    ++g_locked_buckets[i];
    g_locked_value += v;
    v = v > 30 ? 0.0005 : v * 1.7;
  }
}
void BM_Exposition_1000Children(benchmark::State& state) {
  Registry r;
  auto& family = r.AddCounter("agentry_bench_total", "Bench.", {"route", "code"});
  for (int i = 0; i < 1000; ++i) {
    family.WithLabels({"/v1/route/" + std::to_string(i % 100), std::to_string(200 + i / 100)})
        .Increment(i);
  }
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = agentry::metrics::SerializeTextFormat(r.Collect());
    bytes += text.size();
    benchmark::DoNotOptimize(text);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

BENCHMARK(BM_Counter_Increment)->Threads(1)->Threads(2);
BENCHMARK(BM_Reference_AtomicIntAdd)->Threads(1)->Threads(2);
BENCHMARK(BM_Reference_MutexDoubleAdd)->Threads(1)->Threads(2);
BENCHMARK(BM_Histogram_Observe)->Threads(1)->Threads(2);
BENCHMARK(BM_Reference_MutexHistogramObserve)->Threads(1)->Threads(2);
BENCHMARK(BM_Exposition_1000Children);

// Keeps each run's real time per iteration (per thread) so ratios can be printed at the end.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration && !run.error_occurred) {
        times_[run.benchmark_name()] = run.GetAdjustedRealTime();
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double Get(const std::string& name) const {
    auto it = times_.find(name);
    return it == times_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nratios (ours / reference, real time per operation; < 1.0 is faster):\n");
  std::printf("%-28s %-8s %-22s %-22s\n", "operation", "threads", "vs atomic int add",
              "vs mutex-guarded");
  struct Row {
    const char* label;
    const char* ours;
    const char* floor;
    const char* naive;
  };
  const Row rows[] = {
      {"Counter::Increment", "BM_Counter_Increment", "BM_Reference_AtomicIntAdd",
       "BM_Reference_MutexDoubleAdd"},
      {"Histogram::Observe", "BM_Histogram_Observe", "BM_Reference_AtomicIntAdd",
       "BM_Reference_MutexHistogramObserve"},
  };
  for (const Row& row : rows) {
    for (int threads : {1, 2}) {
      const std::string suffix = "/threads:" + std::to_string(threads);
      const double ours = reporter.Get(row.ours + suffix);
      const double floor = reporter.Get(row.floor + suffix);
      const double naive = reporter.Get(row.naive + suffix);
      if (ours <= 0 || floor <= 0 || naive <= 0) continue;  // filtered out
      std::printf("%-28s %-8d %-22.2f %-22.2f\n", row.label, threads, ours / floor, ours / naive);
    }
  }
  benchmark::Shutdown();
  return 0;
}
