#include <cmath>
#include <thread>

#include <gtest/gtest.h>

#include "common/metrics/metric.h"
#include "common/metrics/registry.h"

namespace agentry::metrics {
namespace {

TEST(CounterTest, OnlyGoesUp) {
  Counter c;
  c.Increment();
  c.Increment(2.5);
  c.Increment(-10);
  c.Increment(std::nan(""));
  EXPECT_DOUBLE_EQ(c.Value(), 3.5);
}

TEST(GaugeTest, SetIncrementDecrement) {
  Gauge g;
  g.Set(10);
  g.Increment(2);
  g.Decrement(5);
  EXPECT_DOUBLE_EQ(g.Value(), 7);
}

TEST(HistogramTest, BucketsAreCumulativeWithLeSemantics) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 2.0, 4.0, 100.0}) h.Observe(v);
  h.Observe(std::nan(""));  // ignored
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative_counts, (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 109.0);
}

TEST(HistogramTest, BucketHelpers) {
  EXPECT_EQ(LinearBuckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
  EXPECT_EQ(ExponentialBuckets(1, 10, 3), (std::vector<double>{1, 10, 100}));
  const auto latency = DefaultLatencyBuckets();
  EXPECT_DOUBLE_EQ(latency.front(), 0.001);
  EXPECT_GT(latency.back(), 30.0);
}

TEST(RegistryTest, ChildrenAreStableAndLabelledIndependently) {
  Registry r;
  auto& family = r.AddCounter("agentry_test_requests_total", "Requests.", {"route", "code"});
  Counter& a = family.WithLabels({"/a", "200"});
  Counter& b = family.WithLabels({"/a", "500"});
  a.Increment(3);
  b.Increment();
  EXPECT_EQ(&a, &family.WithLabels({"/a", "200"}));
  const auto snap = r.Collect();
  ASSERT_EQ(snap.size(), 1u);
  ASSERT_EQ(snap[0].children.size(), 2u);
  EXPECT_EQ(snap[0].children[0].label_values, (std::vector<std::string>{"/a", "200"}));
  EXPECT_DOUBLE_EQ(snap[0].children[0].value, 3);
  EXPECT_DOUBLE_EQ(snap[0].children[1].value, 1);
}

TEST(RegistryTest, SameRegistrationReturnsSameFamily) {
  Registry r;
  auto& a = r.AddGauge("agentry_test_sessions", "Sessions.", {"state"});
  auto& b = r.AddGauge("agentry_test_sessions", "Sessions.", {"state"});
  EXPECT_EQ(&a, &b);
}

TEST(RegistryTest, CollectOrdersByNameAndRunsHooks) {
  Registry r;
  r.AddGauge("b_metric", "b").WithLabels({}).Set(1);
  Gauge& a = r.AddGauge("a_metric", "a").WithLabels({});
  int calls = 0;
  r.AddCollectHook([&] { a.Set(++calls); });
  auto snap = r.Collect();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].name, "a_metric");
  EXPECT_DOUBLE_EQ(snap[0].children[0].value, 1);
  snap = r.Collect();
  EXPECT_DOUBLE_EQ(snap[0].children[0].value, 2);
}

TEST(RegistryTest, NameValidation) {
  EXPECT_TRUE(IsValidMetricName("agentry_http_requests_total"));
  EXPECT_TRUE(IsValidMetricName("ns:rule_name"));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("has-dash"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("route"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("le"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(RegistryDeathTest, ProgrammingErrorsAbortWithAMessage) {
  Registry r;
  r.AddCounter("agentry_x_total", "x", {"a"});
  EXPECT_DEATH(r.AddGauge("agentry_x_total", "x", {"a"}), "different type");
  EXPECT_DEATH(r.AddCounter("agentry_x_total", "x", {"b"}), "different type or label");
  EXPECT_DEATH(r.AddCounter("bad-name", "x"), "invalid metric name");
  EXPECT_DEATH(r.AddCounter("ok_total", "x", {"le"}), "invalid label name");
  EXPECT_DEATH(r.AddCounter("agentry_x_total", "x", {"a"}).WithLabels({"1", "2"}),
               "2 label values for 1 label names");
  EXPECT_DEATH(r.AddHistogram("h_seconds", "h", {}, {2, 1}), "strictly increasing");
  EXPECT_DEATH(r.AddHistogram("h2_seconds", "h", {}, {}), "at least one bucket");
}

TEST(MetricsConcurrencyTest, IncrementsFromManyThreadsAreAllCounted) {
  Registry r;
  auto& counters = r.AddCounter("agentry_test_total", "t", {"thread_group"});
  auto& hist = r.AddHistogram("agentry_test_seconds", "t", {}, {0.5, 1.5});
  Counter& shared = counters.WithLabels({"shared"});
  Histogram& h = hist.WithLabels({});
  constexpr int kThreads = 8;
  constexpr int kIters = 20000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter& own = counters.WithLabels({"t" + std::to_string(t % 2)});
      for (int i = 0; i < kIters; ++i) {
        shared.Increment();
        own.Increment();
        h.Observe(i % 2);
      }
    });
  }
  // Scrapes while writers run must not disturb them.
  for (int i = 0; i < 20; ++i) (void)r.Collect();
  for (auto& th : threads) th.join();
  EXPECT_DOUBLE_EQ(shared.Value(), kThreads * kIters);
  EXPECT_DOUBLE_EQ(counters.WithLabels({"t0"}).Value() + counters.WithLabels({"t1"}).Value(),
                   kThreads * kIters);
  const auto s = h.Read();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kIters));
  EXPECT_EQ(s.cumulative_counts[0], static_cast<uint64_t>(kThreads * kIters / 2));
}

}  // namespace
}  // namespace agentry::metrics
