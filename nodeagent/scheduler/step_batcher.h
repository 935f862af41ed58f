// nodeagent/scheduler/step_batcher.h — continuous batching: every session's forward passes on
// the CPU backend run as shared steps.
//
//   StepBatcher batcher(&pool, {}, &registry);
//   StepBatcher::Member member(&batcher);             // this caller submits until it goes
//   Status s = batcher.Eval(&context, tokens, &logits);  // blocks until its step has run
//
// One thread runs the steps. A step takes every waiting one-token request (a decode step) and
// prefill pieces, oldest first, up to max_prefill_tokens (always at least one), and evaluates
// them as one engine::EvalBatch per model: each weight is read once for all of them, and a new
// session's prefill joins between two decode steps of the others instead of waiting for them
// to finish. Callers cut their prefills into pieces (SessionManager's aligned chunks), so a
// long prompt delays the others' next token by one piece at most.
//
// When a step starts. A step starts once every member is waiting — no session is left out of
// it — or once the oldest request has waited max_wait: a member busy elsewhere (writing to a
// slow client, sampling a large vocabulary) holds the others back that long at most. A caller
// that is not a member is never waited for.
//
// The bits do not depend on the batching: EvalBatch gives every sequence what it gets alone
// (forward.h), so a session's tokens are the same whichever sessions share its steps.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "common/metrics/registry.h"
#include "common/status.h"
#include "nodeagent/engine/context.h"
#include "nodeagent/engine/forward.h"
#include "nodeagent/engine/thread_pool.h"

namespace agentry::scheduler {

struct StepBatcherOptions {
  int64_t max_prefill_tokens = 128;  // prefill tokens per step, beyond the first piece
  std::chrono::microseconds max_wait{1000};
};

class StepBatcher {
 public:
  // `pool` runs the steps and must outlive the batcher; `metrics` may be null.
  StepBatcher(engine::ThreadPool* pool, StepBatcherOptions options, metrics::Registry* metrics);
  ~StepBatcher();
  StepBatcher(const StepBatcher&) = delete;
  StepBatcher& operator=(const StepBatcher&) = delete;

  // Membership for a scope: the steps wait for members (see above).
  class Member {
   public:
    explicit Member(StepBatcher* batcher);
    ~Member();
    Member(const Member&) = delete;
    Member& operator=(const Member&) = delete;

   private:
    StepBatcher* batcher_;
  };

  // Context::Eval(tokens, false, logits), run in the next step that takes it. The context
  // must not be used elsewhere until this returns. The errors are Context::Eval's.
  Status Eval(engine::Context* context, std::span<const int32_t> tokens,
              std::vector<float>* logits);

 private:
  struct Request {
    engine::Context* context;
    std::span<const int32_t> tokens;
    std::vector<float>* logits;
    std::chrono::steady_clock::time_point since;
    Status status;
    bool done = false;
  };

  void Loop();
  // Moves this step's requests from queue_ to step_ (under mu_).
  void TakeStep();
  // Runs step_, one EvalBatch per model, and sets each request's status.
  void RunStep();

  engine::ThreadPool* pool_;
  const StepBatcherOptions options_;
  metrics::Histogram* batch_size_ = nullptr;
  metrics::Histogram* batch_tokens_ = nullptr;
  metrics::Histogram* step_seconds_ = nullptr;
  metrics::Histogram* gather_seconds_ = nullptr;
  metrics::Counter* early_steps_ = nullptr;
  // The loop thread's, kept between steps so that a step allocates nothing.
  engine::ForwardBuffers buffers_;
  std::vector<Request*> step_;
  std::vector<engine::BatchSequence> batch_;

  std::mutex mu_;
  std::condition_variable work_;  // a request arrived, a member left, or stop
  std::condition_variable done_;  // a step finished
  std::deque<Request*> queue_;
  int members_ = 0;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace agentry::scheduler
