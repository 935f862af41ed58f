#include "nodeagent/engine/thread_pool.h"

#include <atomic>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace agentry::engine {
namespace {

TEST(ThreadPoolTest, EveryThreadRunsOncePerCall) {
  for (int n : {1, 2, 3, 8}) {
    ThreadPool pool(n);
    EXPECT_EQ(pool.size(), n);
    for (int round = 0; round < 200; ++round) {
      std::atomic<int> calls{0};
      std::atomic<uint32_t> seen{0};
      pool.Run([&](int thread, int n_threads) {
        EXPECT_EQ(n_threads, n);
        calls.fetch_add(1);
        seen.fetch_or(1u << thread);
      });
      ASSERT_EQ(calls.load(), n);
      ASSERT_EQ(seen.load(), (1u << n) - 1);
    }
  }
}

TEST(ThreadPoolTest, WorkersWakeAfterSleeping) {
  ThreadPool pool(3);
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // long enough to sleep
    std::atomic<int> calls{0};
    pool.Run([&](int, int) { calls.fetch_add(1); });
    EXPECT_EQ(calls.load(), 3);
  }
}

TEST(ThreadPoolTest, SplitCoversTheRangeExactlyOnce) {
  for (int64_t n : {0, 1, 5, 7, 100, 1001}) {
    for (int threads : {1, 2, 3, 7}) {
      int64_t next = 0;
      for (int t = 0; t < threads; ++t) {
        int64_t begin = 0;
        int64_t end = 0;
        ThreadPool::Split(n, t, threads, &begin, &end);
        EXPECT_EQ(begin, next);
        EXPECT_LE(end - begin, n / threads + 1);
        next = end;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(ThreadPoolTest, ForRangeCoversEveryItemOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 100}) {
      std::vector<int> hits(static_cast<size_t>(n), 0);
      pool.ForRange(n, [&](int64_t begin, int64_t end) {
        EXPECT_LT(begin, end);
        for (int64_t i = begin; i < end; ++i) hits[i]++;  // ranges are disjoint: no race
      });
      EXPECT_EQ(hits, std::vector<int>(static_cast<size_t>(n), 1))
          << threads << " threads, " << n << " items";
    }
  }
}

TEST(ThreadPoolTest, ZeroThreadsMeansOne) {
  ThreadPool pool(0);
  int calls = 0;
  pool.Run([&](int thread, int n) {
    EXPECT_EQ(thread, 0);
    EXPECT_EQ(n, 1);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace agentry::engine
