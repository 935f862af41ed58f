// common/kube/rate_limiter.h — a token bucket: on average `qps` requests a second, bursts of
// up to `burst`, as client-go limits a client. Acquire() waits its turn.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

namespace agentry::kube {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // `now` and `sleep` are the clock's (tests pass their own); qps <= 0: no limit.
  TokenBucket(
      double qps, int burst, std::function<Clock::time_point()> now = Clock::now,
      std::function<void(Clock::duration)> sleep =
          [](Clock::duration d) { std::this_thread::sleep_for(d); })
      : qps_(qps),
        burst_(std::max(1, burst)),
        tokens_(std::max(1, burst)),
        now_(std::move(now)),
        sleep_(std::move(sleep)),
        last_(now_()) {}

  // Takes a token, waiting until one is there; how long it waited.
  Clock::duration Acquire() {
    if (qps_ <= 0) return Clock::duration::zero();
    Clock::duration wait{};
    {
      std::lock_guard<std::mutex> lock(mu_);
      const Clock::time_point now = now_();
      tokens_ = std::min<double>(burst_, tokens_ + Seconds(now - last_) * qps_);
      last_ = now;
      tokens_ -= 1;  // reserved now; a negative balance is the queue ahead of the next caller
      if (tokens_ < 0) {
        wait = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(-tokens_ / qps_));
      }
    }
    if (wait > Clock::duration::zero()) sleep_(wait);
    return wait;
  }

 private:
  static double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

  const double qps_;
  const int burst_;
  std::mutex mu_;
  double tokens_;
  std::function<Clock::time_point()> now_;
  std::function<void(Clock::duration)> sleep_;
  Clock::time_point last_;
};

}  // namespace agentry::kube
