// nodeagent/scheduler/step_batcher.cc — see step_batcher.h.
#include "nodeagent/scheduler/step_batcher.h"

#include <algorithm>
#include <functional>

namespace agentry::scheduler {

using Clock = std::chrono::steady_clock;

StepBatcher::StepBatcher(engine::ThreadPool* pool, StepBatcherOptions options,
                         metrics::Registry* metrics)
    : pool_(pool), options_(options) {
  if (metrics != nullptr) {
    batch_size_ = &metrics
                       ->AddHistogram("agentry_nodeagent_batch_size",
                                      "Sequences per forward step (continuous batching).", {},
                                      {1, 2, 4, 8, 16, 32, 64})
                       .WithLabels({});
    // vLLM's vllm:iteration_tokens_total.
    batch_tokens_ = &metrics
                         ->AddHistogram("agentry_nodeagent_iteration_tokens",
                                        "Tokens per forward step: decode tokens and prefill.", {},
                                        {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024})
                         .WithLabels({});
    // Where a device's time goes: a step's own length, and how long the oldest request in it
    // waited (for the step before it, then for the other sessions' tokens).
    const std::vector<double> seconds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25};
    step_seconds_ =
        &metrics
             ->AddHistogram("agentry_nodeagent_step_seconds",
                            "Time a forward step takes, all its sequences together.", {}, seconds)
             .WithLabels({});
    gather_seconds_ =
        &metrics
             ->AddHistogram("agentry_nodeagent_step_gather_seconds",
                            "How long a step's oldest request waited for it: the step before, "
                            "then the other generating sessions' tokens.",
                            {}, seconds)
             .WithLabels({});
    early_steps_ = &metrics
                        ->AddCounter("agentry_nodeagent_steps_early_total",
                                     "Steps started after max_wait without every generating "
                                     "session's token.",
                                     {})
                        .WithLabels({});
  }
  thread_ = std::thread([this] { Loop(); });
}

StepBatcher::~StepBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_.notify_all();
  thread_.join();
}

StepBatcher::Member::Member(StepBatcher* batcher) : batcher_(batcher) {
  std::lock_guard<std::mutex> lock(batcher_->mu_);
  ++batcher_->members_;
}

StepBatcher::Member::~Member() {
  {
    std::lock_guard<std::mutex> lock(batcher_->mu_);
    --batcher_->members_;
  }
  batcher_->work_.notify_all();  // the others may now all be waiting
}

Status StepBatcher::Eval(engine::Context* context, std::span<const int32_t> tokens,
                         std::vector<float>* logits) {
  Request request{context, tokens, logits, Clock::now(), OkStatus()};
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_) return UnavailableError("the compute backend is stopping");
  queue_.push_back(&request);
  // The step thread waits for the first request (to start the clock on it) and then for the
  // last member's; waking it for each one between costs a context switch per session a step.
  const auto queued = static_cast<int64_t>(queue_.size());
  if (queued == 1 || queued >= members_) work_.notify_all();
  done_.wait(lock, [&] { return request.done; });
  return request.status;
}

void StepBatcher::TakeStep() {
  step_.clear();
  int64_t prefill = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    const auto n = static_cast<int64_t>((*it)->tokens.size());
    const bool fits = n <= 1 || prefill == 0 || prefill + n <= options_.max_prefill_tokens;
    if (!fits) {
      ++it;
      continue;
    }
    if (n > 1) prefill += n;
    step_.push_back(*it);
    it = queue_.erase(it);
  }
}

void StepBatcher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left to run
    // Every member waiting (each has at most one request), or the oldest waited long enough.
    const Clock::time_point first = queue_.front()->since;
    const bool everyone = work_.wait_until(lock, first + options_.max_wait, [&] {
      return stop_ || static_cast<int64_t>(queue_.size()) >= members_;
    });
    TakeStep();
    lock.unlock();
    const Clock::time_point start = Clock::now();
    RunStep();
    if (step_seconds_ != nullptr) {
      const Clock::time_point end = Clock::now();
      gather_seconds_->Observe(std::chrono::duration<double>(start - first).count());
      step_seconds_->Observe(std::chrono::duration<double>(end - start).count());
      if (!everyone) early_steps_->Increment();
    }
    lock.lock();
    for (Request* r : step_) r->done = true;
    done_.notify_all();
  }
}

void StepBatcher::RunStep() {
  int64_t tokens = 0;
  for (const Request* r : step_) tokens += static_cast<int64_t>(r->tokens.size());
  if (batch_size_ != nullptr) {
    batch_size_->Observe(static_cast<double>(step_.size()));
    batch_tokens_->Observe(static_cast<double>(tokens));
  }
  // One batch per model; within it the decode tokens first, so that MatMul meets them as one
  // run of one-token segments (its decode tiles), then the prefill pieces.
  std::stable_sort(step_.begin(), step_.end(), [](const Request* a, const Request* b) {
    const engine::Model* ma = &a->context->model();
    const engine::Model* mb = &b->context->model();
    if (ma != mb) return std::less<const engine::Model*>()(ma, mb);
    return a->tokens.size() == 1 && b->tokens.size() != 1;
  });
  for (size_t begin = 0; begin < step_.size();) {
    size_t end = begin + 1;
    while (end < step_.size() && &step_[end]->context->model() == &step_[begin]->context->model()) {
      ++end;
    }
    batch_.clear();
    for (size_t i = begin; i < end; ++i) {
      const Request* r = step_[i];
      batch_.push_back({r->context, r->tokens, false, r->logits});
    }
    const Status status = engine::EvalBatch(batch_, pool_, &buffers_);
    for (size_t i = begin; i < end; ++i) {
      Request* r = step_[i];
      if (status.ok() || end - begin == 1) {
        r->status = status;
        continue;
      }
      // EvalBatch checks every sequence before it runs any, so nothing ran: each request on
      // its own gets its own answer, and one bad request does not fail the others.
      const engine::BatchSequence one[] = {{r->context, r->tokens, false, r->logits}};
      r->status = engine::EvalBatch(one, pool_, &buffers_);
    }
    begin = end;
  }
}

}  // namespace agentry::scheduler
