// operator/work_queue.cc — see work_queue.h.
#include "operator/work_queue.h"

#include <algorithm>
#include <cmath>

namespace agentry::operator_ {

void WorkQueue::AddLocked(const std::string& key) {
  if (shut_down_ || queued_.count(key) > 0) return;
  if (processing_.count(key) > 0) {
    dirty_.insert(key);
    return;
  }
  queue_.push_back(key);
  queued_.insert(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, Clock::duration delay) {
  if (delay <= Clock::duration::zero()) return Add(key);
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return;
  delayed_.emplace(Clock::now() + delay, key);
  cv_.notify_all();  // a waiting worker may need to wake earlier
}

WorkQueue::Clock::duration WorkQueue::Retry(const std::string& key) {
  Clock::duration delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int n = failures_[key]++;
    const double factor = std::pow(2.0, std::min(n, 30));
    delay = std::chrono::duration_cast<Clock::duration>(
        std::min<std::chrono::duration<double, std::milli>>(base_delay_ * factor, max_delay_));
  }
  AddAfter(key, delay);
  return delay;
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

void WorkQueue::PromoteDueLocked(Clock::time_point now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    const std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    AddLocked(key);
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (shut_down_) return std::nullopt;
    PromoteDueLocked(Clock::now());
    if (!queue_.empty()) break;
    if (delayed_.empty()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, delayed_.begin()->first);
    }
  }
  std::string key = queue_.front();
  queue_.pop_front();
  queued_.erase(key);
  processing_.insert(key);
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.erase(key) > 0) AddLocked(key);
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  cv_.notify_all();
}

size_t WorkQueue::depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

int WorkQueue::failures(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

}  // namespace agentry::operator_
