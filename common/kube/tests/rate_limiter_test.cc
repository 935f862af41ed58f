// TokenBucket on a test clock: a burst goes at once, then one token per 1/qps seconds.
#include "common/kube/rate_limiter.h"

#include <gtest/gtest.h>

namespace agentry::kube {
namespace {

using Clock = TokenBucket::Clock;
using std::chrono::milliseconds;

TEST(TokenBucketTest, ABurstGoesAtOnceThenTheRateHolds) {
  Clock::time_point now{};
  std::vector<Clock::duration> slept;
  TokenBucket bucket(
      10, 3, [&] { return now; }, [&](Clock::duration d) { slept.push_back(d); });
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.Acquire(), Clock::duration::zero());
  EXPECT_EQ(bucket.Acquire(), milliseconds(100));  // the fourth waits a tenth of a second
  EXPECT_EQ(bucket.Acquire(), milliseconds(200));  // and the fifth queues behind it
  EXPECT_EQ(slept.size(), 2u);
  now += std::chrono::seconds(10);  // idle: the bucket refills, but only to its burst
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.Acquire(), Clock::duration::zero());
  EXPECT_GT(bucket.Acquire(), Clock::duration::zero());
  EXPECT_EQ(TokenBucket(0, 1).Acquire(), Clock::duration::zero());  // no limit
}

}  // namespace
}  // namespace agentry::kube
