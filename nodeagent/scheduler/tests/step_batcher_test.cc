// The step batcher: members' requests share a step, a bad request fails alone, the prefill
// budget splits steps, and what a step computes is what each context computes alone.
#include "nodeagent/scheduler/step_batcher.h"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "nodeagent/engine/test_model.h"

namespace agentry::scheduler {
namespace {

class StepBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = engine::BuildTestModel({.type = engine::GgmlType::kQ8_0, .seed = 3}).value();
    model_ = engine::Model::Load(engine::GgufFile::FromBuffer(bytes_, "m.gguf").value()).value();
  }
  std::unique_ptr<engine::Context> NewContext() {
    return std::make_unique<engine::Context>(*model_, 64, &pool_);
  }
  metrics::Histogram::Snapshot BatchSizes() {
    return registry_
        .AddHistogram("agentry_nodeagent_batch_size",
                      "Sequences per forward step (continuous batching).", {},
                      {1, 2, 4, 8, 16, 32, 64})
        .WithLabels({})
        .Read();
  }
  std::string bytes_;
  std::unique_ptr<engine::Model> model_;
  engine::ThreadPool pool_{2};
  metrics::Registry registry_;
};

TEST_F(StepBatcherTest, MembersShareAStepAndABadRequestFailsAlone) {
  // A long wait: the step starts only once both members are waiting.
  StepBatcher batcher(&pool_, {.max_wait = std::chrono::seconds(30)}, &registry_);
  std::unique_ptr<engine::Context> good = NewContext(), bad = NewContext(), alone = NewContext();
  const std::vector<int32_t> tokens = {1, 40, 41};
  const std::vector<int32_t> outside = {1, 100000};
  std::vector<float> good_logits, bad_logits, alone_logits;
  Status good_status, bad_status;
  {
    StepBatcher::Member m1(&batcher);
    StepBatcher::Member m2(&batcher);
    std::thread a([&] { good_status = batcher.Eval(good.get(), tokens, &good_logits); });
    std::thread b([&] { bad_status = batcher.Eval(bad.get(), outside, &bad_logits); });
    a.join();
    b.join();
  }
  EXPECT_TRUE(good_status.ok()) << good_status.ToString();
  EXPECT_EQ(bad_status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_status.message().find("id 100000 is outside the vocabulary"), std::string::npos)
      << bad_status.message();
  EXPECT_EQ(bad->n_past(), 0);
  ASSERT_TRUE(alone->Eval(tokens, false, &alone_logits).ok());
  EXPECT_EQ(good_logits, alone_logits);
  const metrics::Histogram::Snapshot sizes = BatchSizes();
  EXPECT_EQ(sizes.count, 1u);  // one step
  EXPECT_EQ(sizes.sum, 2.0);   // of both
}

TEST_F(StepBatcherTest, PrefillBeyondTheBudgetWaitsForTheNextStep) {
  StepBatcher batcher(&pool_, {.max_prefill_tokens = 15, .max_wait = std::chrono::seconds(30)},
                      &registry_);
  std::vector<std::unique_ptr<engine::Context>> contexts;
  contexts.reserve(3);
  for (int i = 0; i < 3; ++i) contexts.push_back(NewContext());
  const std::vector<int32_t> piece = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  std::vector<std::vector<float>> logits(3);
  {
    std::vector<std::unique_ptr<StepBatcher::Member>> members;
    members.reserve(3);
    for (int i = 0; i < 3; ++i) members.push_back(std::make_unique<StepBatcher::Member>(&batcher));
    std::vector<std::thread> threads;
    threads.reserve(3);
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&, i] {
        EXPECT_TRUE(batcher.Eval(contexts[i].get(), piece, &logits[i]).ok());
        members[i].reset();  // done: the others' steps no longer wait for this one
      });
    }
    for (std::thread& t : threads) t.join();
  }
  // 10 tokens a piece, 15 a step (but always one piece): three steps of one.
  const metrics::Histogram::Snapshot sizes = BatchSizes();
  EXPECT_EQ(sizes.count, 3u);
  EXPECT_EQ(sizes.sum, 3.0);
  EXPECT_EQ(logits[0], logits[1]);
  EXPECT_EQ(logits[1], logits[2]);
}

TEST_F(StepBatcherTest, ANonMemberIsNeverWaitedFor) {
  StepBatcher batcher(&pool_, {.max_wait = std::chrono::seconds(30)}, &registry_);
  std::unique_ptr<engine::Context> c = NewContext();
  std::vector<float> logits;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(batcher.Eval(c.get(), std::vector<int32_t>{1, 2}, &logits).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// The step histograms and the early-step counter: a member that never hands in a token holds
// a step back max_wait, and the step that starts without it counts as early.
TEST_F(StepBatcherTest, StepTimesAndEarlyStepsAreMeasured) {
  const auto wait = std::chrono::milliseconds(50);
  StepBatcher batcher(&pool_, {.max_wait = wait}, &registry_);
  std::unique_ptr<engine::Context> c = NewContext();
  std::vector<float> logits;
  {
    const StepBatcher::Member self(&batcher);
    const StepBatcher::Member absent(&batcher);  // never hands in anything
    EXPECT_TRUE(batcher.Eval(c.get(), std::vector<int32_t>{1, 2}, &logits).ok());
  }
  EXPECT_TRUE(batcher.Eval(c.get(), std::vector<int32_t>{3}, &logits).ok());  // no one to wait for
  const auto read = [&](const char* name) {
    return registry_.AddHistogram(name, "", {}, {1}).WithLabels({}).Read();
  };
  const metrics::Histogram::Snapshot steps = read("agentry_nodeagent_step_seconds");
  const metrics::Histogram::Snapshot gather = read("agentry_nodeagent_step_gather_seconds");
  EXPECT_EQ(steps.count, 2u);
  EXPECT_GT(steps.sum, 0.0);
  EXPECT_EQ(gather.count, 2u);
  EXPECT_GE(gather.sum, std::chrono::duration<double>(wait).count());  // the first step's wait
  EXPECT_EQ(
      registry_.AddCounter("agentry_nodeagent_steps_early_total", "", {}).WithLabels({}).Value(),
      1.0);
}

}  // namespace
}  // namespace agentry::scheduler
