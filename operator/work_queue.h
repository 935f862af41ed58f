// operator/work_queue.h — the keys ("namespace/name") of agents to reconcile, as client-go's
// rate-limited work queue has them:
//   - a key queued twice before a worker takes it is reconciled once (de-duplication);
//   - a key is never handed to two workers at once: added while it is being reconciled, it
//     is queued again when that worker calls Done;
//   - a failed key comes back after an exponential backoff (Retry), reset by Forget;
//   - a key can come back after a delay (AddAfter: a requeue to look again later).
//
//   WorkQueue queue;
//   queue.Add("team-a/triage");
//   while (std::optional<std::string> key = queue.Get()) {   // nullopt once shut down
//     if (Reconcile(*key).ok()) queue.Forget(*key); else queue.Retry(*key);
//     queue.Done(*key);
//   }
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace agentry::operator_ {

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit WorkQueue(std::chrono::milliseconds base_delay = std::chrono::milliseconds(50),
                     std::chrono::milliseconds max_delay = std::chrono::minutes(5))
      : base_delay_(base_delay), max_delay_(max_delay) {}

  void Add(const std::string& key);
  void AddAfter(const std::string& key, Clock::duration delay);
  // Requeues `key` after its backoff (base_delay * 2^failures, at most max_delay); the delay.
  Clock::duration Retry(const std::string& key);
  // Ends `key`'s backoff (its reconcile succeeded).
  void Forget(const std::string& key);
  // Blocks for the next key; nullopt once ShutDown() was called.
  std::optional<std::string> Get();
  // The worker is done with `key` (call after Retry/Forget).
  void Done(const std::string& key);
  void ShutDown();

  size_t depth() const;  // keys waiting now (not those delayed)
  int failures(const std::string& key) const;

 private:
  void AddLocked(const std::string& key);
  void PromoteDueLocked(Clock::time_point now);

  const std::chrono::milliseconds base_delay_;
  const std::chrono::milliseconds max_delay_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;      // in queue_
  std::set<std::string> processing_;  // handed to a worker, not Done yet
  std::set<std::string> dirty_;       // added while processing: queue again at Done
  std::multimap<Clock::time_point, std::string> delayed_;
  std::map<std::string, int> failures_;
  bool shut_down_ = false;
};

}  // namespace agentry::operator_
