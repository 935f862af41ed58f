// WorkQueue: de-duplication, one worker per key, backoff, delayed adds, shutdown.
#include "operator/work_queue.h"

#include <thread>

#include <gtest/gtest.h>

namespace agentry::operator_ {
namespace {

using std::chrono::milliseconds;

TEST(WorkQueueTest, AKeyQueuedTwiceIsReconciledOnce) {
  WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.depth(), 2u);
  EXPECT_EQ(*q.Get(), "a");
  EXPECT_EQ(*q.Get(), "b");
  EXPECT_EQ(q.depth(), 0u);
}

TEST(WorkQueueTest, AKeyAddedWhileBeingReconciledComesBackAfterDone) {
  WorkQueue q;
  q.Add("a");
  const std::string key = *q.Get();
  q.Add("a");                // changed again while the worker runs
  EXPECT_EQ(q.depth(), 0u);  // not handed to a second worker
  q.Done(key);
  EXPECT_EQ(q.depth(), 1u);
  EXPECT_EQ(*q.Get(), "a");
}

TEST(WorkQueueTest, RetriesBackOffExponentiallyUntilForgotten) {
  WorkQueue q(milliseconds(10), milliseconds(50));
  EXPECT_EQ(q.Retry("a"), milliseconds(10));
  EXPECT_EQ(q.Retry("a"), milliseconds(20));
  EXPECT_EQ(q.Retry("a"), milliseconds(40));
  EXPECT_EQ(q.Retry("a"), milliseconds(50));  // capped
  EXPECT_EQ(q.failures("a"), 4);
  q.Forget("a");
  EXPECT_EQ(q.failures("a"), 0);
  EXPECT_EQ(q.Retry("a"), milliseconds(10));
}

TEST(WorkQueueTest, ADelayedKeyArrivesWhenDueAndShutDownWakesWorkers) {
  WorkQueue q;
  q.AddAfter("later", milliseconds(30));
  EXPECT_EQ(q.depth(), 0u);
  EXPECT_EQ(*q.Get(), "later");  // blocks until due
  std::thread worker([&] { EXPECT_FALSE(q.Get().has_value()); });
  std::this_thread::sleep_for(milliseconds(20));
  q.ShutDown();
  worker.join();
  q.Add("x");
  EXPECT_FALSE(q.Get().has_value());
}

}  // namespace
}  // namespace agentry::operator_
