// common/periodic_task.h — runs a function every `interval` on a thread of its own until
// stopped; Stop() wakes it at once instead of waiting out the interval.
//
//   PeriodicTask task(std::chrono::seconds(10), [&] { reporter.ReportOnce(); });
//   task.Start();
//   ...
//   task.Stop();  // also in the destructor
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace agentry {

class PeriodicTask {
 public:
  PeriodicTask(std::chrono::milliseconds interval, std::function<void()> run)
      : interval_(interval), run_(std::move(run)) {}
  ~PeriodicTask() { Stop(); }
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  // The first run is one interval after Start().
  void Start() {
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
        lock.unlock();
        run_();
        lock.lock();
      }
    });
  }

  // Waits for a run under way to end. Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::chrono::milliseconds interval_;
  std::function<void()> run_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace agentry
