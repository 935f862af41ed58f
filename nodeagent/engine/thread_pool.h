// nodeagent/engine/thread_pool.h — one persistent pool of compute threads.
//
// A forward pass issues hundreds of parallel sections per token, so threads are created
// once and wake by spinning briefly on a generation counter (a few hundred nanoseconds)
// before falling back to sleeping on a condition variable when idle.
//
//   ThreadPool pool(2);
//   pool.Run([&](int thread, int n_threads) { ... rows thread * chunk ... });
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace agentry::engine {

class ThreadPool {
 public:
  // `n_threads` counts the caller, which works as thread 0; values < 1 mean 1.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(thread, n_threads) once on every thread and returns when all have returned.
  // Not re-entrant: one Run at a time, from one caller thread.
  void Run(const std::function<void(int thread, int n_threads)>& fn);

  // The half-open range [begin, end) of `n` items that `thread` of `n_threads` owns.
  static void Split(int64_t n, int thread, int n_threads, int64_t* begin, int64_t* end);

  // Calls fn(begin, end) on disjoint ranges covering [0, n), one per thread (Split). A single
  // item, or a pool of one, runs on the caller: waking the pool costs more than the work.
  void ForRange(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  void Worker(int index);

  const int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* task_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
};

}  // namespace agentry::engine
