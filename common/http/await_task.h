// common/http/await_task.h — waiting on a cpprestsdk task while watching a stop flag and a
// deadline, for the clients built on cpprestsdk (common/http/client.cc, common/kube/client.cc).
// Included only by .cc files that link cpprestsdk; it keeps the headers out of everyone else's.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include <pplx/pplxtasks.h>

#include "common/status.h"

namespace agentry::http {

// Waits for `task`, which wakes the wait the moment it finishes, while checking `*stop`
// (null: never) every `poll` and `deadline` when it comes; when either fires, cancels the
// request through `cancel` and returns CANCELLED ("stopped") or DEADLINE_EXCEEDED naming
// `timeout`. `poll` bounds only how late a stop is noticed: an idle watch wakes 1000/poll
// times a second, not once per millisecond. A caller that gives up must keep what the task
// uses alive until it finishes.
template <typename T>
Status AwaitTask(const pplx::task<T>& task, std::chrono::steady_clock::time_point deadline,
                 std::chrono::milliseconds timeout, const std::atomic<bool>* stop,
                 pplx::cancellation_token_source* cancel,
                 std::chrono::milliseconds poll = std::chrono::milliseconds(50)) {
  struct Finished {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto finished = std::make_shared<Finished>();
  // A task-based continuation: it runs however the task ends (value, exception, cancelled).
  task.then([finished](const pplx::task<T>&) {
    {
      std::lock_guard<std::mutex> lock(finished->mu);
      finished->done = true;
    }
    finished->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(finished->mu);
  // Until the continuation has run, not merely until the task is done: a continuation still
  // queued on cpprestsdk's pool when the process exits is freed by nobody (LeakSanitizer saw
  // one when tests ran two at a time and the pool's thread was slow to be scheduled).
  while (!finished->done) {
    if (stop != nullptr && stop->load()) {
      cancel->cancel();
      return CancelledError("stopped");
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      cancel->cancel();
      return DeadlineExceededError("no answer within the timeout (" +
                                   std::to_string(timeout.count()) + " ms)");
    }
    finished->cv.wait_until(lock, deadline - now < poll ? deadline : now + poll);
  }
  return OkStatus();
}

}  // namespace agentry::http
