// operator/reconciler.h — one ManagedAgent's reconcile: level-triggered, idempotent, reading
// only caches (and the claims and Secrets it must check), writing only what differs.
//
//   1. The agent from the cache; gone or being deleted: nothing to do (its objects carry
//      owner references, so the garbage collector removes them; state volumes are kept).
//   2. A spec that does not decode (one that passed an older CRD): Ready False InvalidSpec,
//      an Event, and no objects touched.
//   3. Checks a running agent needs that the schema cannot make: the model's claim exists
//      (ModelAvailable, from a watch cache of claims), the header Secrets exist (Degraded;
//      asked of the API server, since watching every Secret would hold them all in memory). Either
//      missing is a condition and an Event; the objects are still applied, so the agent starts once
//      it appears.
//   4. render.h's objects, each applied (server-side, field manager agentry-operator,
//      forced: the operator owns what it renders, and an edited StatefulSet is put back)
//      unless the cached copy already covers it; objects the spec no longer asks for (the
//      PodDisruptionBudget at one replica, the ServiceAccount once one is named) deleted.
//   5. Status (observedGeneration, replicas, readyReplicas, selector, endpoint, conditions
//      Ready, ModelAvailable, Suspended, Degraded), applied only when it changed.
// A failed API call returns its error: the controller retries with backoff.
#pragma once

#include <atomic>
#include <map>
#include <string>

#include "common/kube/client.h"
#include "operator/event_recorder.h"
#include "operator/render.h"
#include "operator/watch_cache.h"

namespace agentry::operator_ {

inline constexpr const char* kFieldManager = "agentry-operator";

struct ReconcilerOptions {
  RenderOptions render{};
  std::string field_manager = kFieldManager;
};

class Reconciler {
 public:
  // `owned`: a cache of each owned kind, by plural ("statefulsets"); `claims`: of
  // PersistentVolumeClaims.
  Reconciler(kube::Client* client, const WatchCache* agents,
             std::map<std::string, const WatchCache*> owned, const WatchCache* claims,
             EventRecorder* events, ReconcilerOptions options = {});

  Status Reconcile(const std::string& key);

  int64_t applied() const { return applied_.load(); }  // objects applied (created or changed)
  int64_t deleted() const { return deleted_.load(); }

 private:
  struct Checks;
  Status CheckDependencies(const config::ManagedAgent& agent, Checks* checks);
  Status ApplyOwned(const Json& agent, const std::vector<RenderedObject>& objects);
  Status DeleteUnwanted(const Json& agent, const std::vector<RenderedObject>& objects);
  Status WriteStatus(const Json& agent, Json status);
  const WatchCache* Owned(const kube::Resource& resource) const;

  kube::Client* client_;
  const WatchCache* agents_;
  std::map<std::string, const WatchCache*> owned_;
  const WatchCache* claims_;
  EventRecorder* events_;
  const ReconcilerOptions options_;
  std::atomic<int64_t> applied_{0};
  std::atomic<int64_t> deleted_{0};
};

}  // namespace agentry::operator_
