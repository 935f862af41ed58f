#include "nodeagent/engine/thread_pool.h"

#include <immintrin.h>

namespace agentry::engine {
namespace {

// Spinning before a worker sleeps: long enough to span the gap between the parallel sections
// of one token and, for one session, the gap between its tokens (sampling). A pause's length
// depends on the core: 20,000 took about 400 µs on a Zen 5, timed by hand. Shorter spins
// changed no nodeagent_bench figure beyond its noise (docs/PERFORMANCE.md).
constexpr int kSpinIterations = 20000;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  workers_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { Worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Split(int64_t n, int thread, int n_threads, int64_t* begin, int64_t* end) {
  const int64_t chunk = n / n_threads;
  const int64_t extra = n % n_threads;
  *begin = thread * chunk + (thread < extra ? thread : extra);
  *end = *begin + chunk + (thread < extra ? 1 : 0);
}

void ThreadPool::ForRange(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || n_threads_ == 1) {
    fn(0, n);
    return;
  }
  Run([&](int thread, int n_threads) {
    int64_t begin = 0;
    int64_t end = 0;
    Split(n, thread, n_threads, &begin, &end);
    if (begin < end) fn(begin, end);
  });
}

void ThreadPool::Run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  task_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // The lock orders the publication against a worker deciding to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
  fn(0, n_threads_);
  while (pending_.load(std::memory_order_acquire) != 0) _mm_pause();
  task_ = nullptr;
}

void ThreadPool::Worker(int index) {
  uint64_t seen = 0;
  while (true) {
    uint64_t now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen && spin < kSpinIterations; ++spin) {
      _mm_pause();
      now = generation_.load(std::memory_order_acquire);
    }
    if (now == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1, std::memory_order_acq_rel);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      now = generation_.load(std::memory_order_acquire);
    }
    seen = now;
    if (stop_.load()) return;
    (*task_)(index, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace agentry::engine
