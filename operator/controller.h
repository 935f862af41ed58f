// operator/controller.h — the ManagedAgent controller: watch caches for the agents and every
// kind they own, a work queue, and workers that reconcile one agent at a time each.
//
//   Controller controller(&client, &events, {.workers = 4, .registry = &registry});
//   controller.Start();          // caches list and watch; workers start once they synced
//   ... controller.Stop();       // workers finish their current reconcile
//
// A change to an agent queues it; a change to an owned object (found by its controller owner
// reference) queues its agent, so an edited or deleted StatefulSet is put back; a claim that
// appears or goes queues the agents whose model it holds. A failed
// reconcile is retried with backoff; a successful one is forgotten until something changes
// (no periodic resync: every input is watched).
//
// Metrics (agentry_operator_*): reconciles_total{result}, reconcile_duration_seconds,
// queue_depth, watch_restarts_total{resource} and owned_objects{resource}.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/kube/client.h"
#include "common/metrics/registry.h"
#include "operator/event_recorder.h"
#include "operator/reconciler.h"
#include "operator/watch_cache.h"
#include "operator/work_queue.h"

namespace agentry::operator_ {

struct ControllerOptions {
  ReconcilerOptions reconciler{};
  int workers = 4;
  std::string watch_namespace{};  // "": every namespace
  std::chrono::seconds watch_timeout = std::chrono::minutes(5);
  std::chrono::seconds sync_timeout = std::chrono::seconds(60);
  metrics::Registry* registry = nullptr;  // may be null
};

class Controller {
 public:
  Controller(kube::Client* client, EventRecorder* events, ControllerOptions options);
  ~Controller();  // Stop()s
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Starts the caches, waits for them to sync (Unavailable past sync_timeout, Cancelled once
  // `*stop` is set), queues every agent once and starts the workers.
  Status Start(const std::atomic<bool>* stop = nullptr);
  void Stop();

  bool synced() const;
  size_t queue_depth() const { return queue_.depth(); }
  const Reconciler& reconciler() const { return *reconciler_; }
  int64_t reconciles() const { return reconciles_.load(); }

 private:
  void OnOwnedChange(const Change& change);
  // A claim appeared or went: the agents whose model it holds.
  void OnClaimChange(const Change& change);
  void Work();

  kube::Client* client_;
  const ControllerOptions options_;
  WorkQueue queue_;
  std::unique_ptr<WatchCache> agents_;
  std::vector<std::unique_ptr<WatchCache>> owned_;
  std::unique_ptr<WatchCache> claims_;
  std::unique_ptr<Reconciler> reconciler_;
  std::vector<std::thread> workers_;
  std::atomic<int64_t> reconciles_{0};
  metrics::Family<metrics::Counter>* reconciles_total_ = nullptr;
  metrics::Histogram* reconcile_seconds_ = nullptr;
};

}  // namespace agentry::operator_
