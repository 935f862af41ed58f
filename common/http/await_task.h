// common/http/await_task.h — waiting on a cpprestsdk task while watching a stop flag and a
// deadline, for the clients built on cpprestsdk (common/http/client.cc, common/kube/client.cc).
// Included only by .cc files that link cpprestsdk; it keeps the headers out of everyone else's.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <pplx/pplxtasks.h>

#include "common/status.h"

namespace agentry::http {

// Waits for `task`, checking `*stop` (null: never) and `deadline` every `poll`; when either
// fires, cancels the request through `cancel` and returns CANCELLED ("stopped") or
// DEADLINE_EXCEEDED naming `timeout`. A caller that gives up must keep what the task uses
// alive until it finishes.
template <typename T>
Status AwaitTask(const pplx::task<T>& task, std::chrono::steady_clock::time_point deadline,
                 std::chrono::milliseconds timeout, const std::atomic<bool>* stop,
                 pplx::cancellation_token_source* cancel,
                 std::chrono::milliseconds poll = std::chrono::milliseconds(2)) {
  while (!task.is_done()) {
    if (stop != nullptr && stop->load()) {
      cancel->cancel();
      return CancelledError("stopped");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      cancel->cancel();
      return DeadlineExceededError("no answer within the timeout (" +
                                   std::to_string(timeout.count()) + " ms)");
    }
    std::this_thread::sleep_for(poll);
  }
  return OkStatus();
}

}  // namespace agentry::http
