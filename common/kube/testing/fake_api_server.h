// common/kube/testing/fake_api_server.h — an in-process Kubernetes API server for component
// tests of the Kubernetes client and the operator (DESIGN.md, "Tests, in tiers", item 2).
//
// It speaks the real REST and watch protocol, JSON only, plain HTTP on 127.0.0.1, for a
// fixed set of namespaced resources given at construction:
//   /api/v1/namespaces/{ns}/{plural}[/{name}[/status]]
//   /apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}[/status]]
//   /api/v1/{plural}, /apis/{group}/{version}/{plural}        (list and watch, all namespaces)
// GET (one, list with labelSelector / fieldSelector / limit+continue, watch), POST, PUT,
// DELETE, and PATCH as server-side apply (application/apply-patch+yaml), JSON merge patch
// (application/merge-patch+json) or JSON patch (application/json-patch+json). Every error is
// a Kubernetes Status object ({"kind":"Status",...,"reason":"NotFound","code":404}).
//
//   FakeApiServer api;                                   // the default kinds
//   ASSERT_TRUE(api.Start().ok());
//   KubeClient client(api.base_url());                   // the code under test
//   ... api.Put(seed); api.Compact(); api.DropWatches(); api.FailNext(Verb::kUpdate, 1, 409);
//   EXPECT_EQ(api.writes(), 0u);                          // nothing written at steady state
//
// What it does like a real API server:
//   - metadata.uid, resourceVersion (one global counter, a decimal string),
//     creationTimestamp, generation (1 on create; +1 when anything outside metadata and
//     status changes); a write that changes nothing stores nothing and keeps the
//     resourceVersion (no event), as the real server skips no-op writes.
//   - status subresource (ResourceKind::has_status): writes to the main resource keep the
//     stored .status, writes to /status change only .status; create drops .status.
//   - optimistic concurrency: a PUT, merge patch or apply whose metadata.resourceVersion is
//     set and differs from the stored one is 409 Conflict; DELETE honours
//     preconditions.resourceVersion / preconditions.uid.
//   - finalizers: DELETE of an object with finalizers sets metadata.deletionTimestamp
//     (MODIFIED); the object goes (DELETED) once a write leaves its finalizers empty.
//   - watch: replay from a bounded history of the last `history_limit` changes, then live;
//     a resourceVersion older than the history (or a watcher that falls behind it) gets one
//     ERROR event carrying a 410 Expired Status and the stream ends; no resourceVersion or
//     "0" starts with synthetic ADDED events for the current objects; label selectors see
//     an object that stops (starts) matching as DELETED (ADDED); BOOKMARK events while
//     idle when allowWatchBookmarks=true; ends on timeoutSeconds, client gone, Stop(),
//     DropWatches().
//   - server-side apply, simplified (below), with metadata.managedFields in the real
//     FieldsV1 encoding ({"f:spec":{"f:replicas":{}}}); POST, PUT and the other patches
//     record operation "Update" entries owning the fields they changed and take those
//     fields from every other manager, as the real server does.
//
// What is simplified (be careful when a test depends on these):
//   - Only namespaced kinds; no discovery (/api, /apis), no namespaces object, no
//     deletecollection, no dryRun (answered 400), no protobuf, no YAML (the apply body must
//     be JSON, which is valid YAML), no strategic merge patch (415), no admission, no
//     defaulting, no schema validation beyond: names are DNS subdomains, labels and
//     annotations are string maps.
//   - LIST always serves the latest state (resourceVersion / resourceVersionMatch on a list
//     are ignored); limit/continue pages are not a consistent snapshot.
//   - PUT without metadata.resourceVersion is an unconditional update (real servers refuse
//     that for custom resources); PUT on a missing object is 404 (never create-on-update).
//   - No garbage collector: ownerReferences are stored as given, deletion never cascades,
//     propagationPolicy and gracePeriodSeconds are ignored, no generation bump on delete.
//   - Server-side apply: field paths are object keys, and the keys of the elements of the
//     kind's associative lists (ResourceKind::associative_lists, FieldsV1 "k:{...}"). Every
//     other list is an atomic leaf (a list of containers is one field, owned as a whole); an
//     empty object is a leaf. A merged associative list keeps the stored order, with new
//     elements after it in the patch's order. null
//     values in an apply patch are dropped (the field is not applied). Field managers are
//     keyed by (manager, operation, subresource). A conflict is raised when another
//     manager owns the same path, or a path above or below it, and the patch changes the
//     value there; force=true moves those paths to the applier. A field that the applier
//     stops applying is removed unless another manager (or the new patch) still owns that
//     path or one above or below it; objects left empty by a removal are removed too.
//     metadata.managedFields sent by a client are ignored (they cannot be reset).
//   - Missing fieldManager on apply is 400 BadRequest (the real server says 422 Invalid);
//     non-apply writes without fieldManager are recorded as manager "unknown".
//   - A watch holds one of the HTTP server's worker threads for its whole life, so keep to a
//     few dozen concurrent watches. A client that vanishes from an idle watch without
//     bookmarks is only noticed at the next event, timeoutSeconds, DropWatches() or Stop().
//
// Thread-safe: handlers run on several threads; every hook and observation may be called from
// any thread (Start() and Stop() from one thread at a time).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace agentry::kube::testing {

// A list whose elements server-side apply merges by key (x-kubernetes-list-type: map), as
// the kind's schema declares: {.path = {"status", "conditions"}, .keys = {"type"}}.
struct AssociativeList {
  std::vector<std::string> path{};
  std::vector<std::string> keys{};
};

// One namespaced resource the fake serves.
struct ResourceKind {
  std::string group{};      // "" for the core group (/api/v1)
  std::string version{};    // "v1", "v1alpha1"
  std::string plural{};     // "statefulsets"; unique across the server's kinds
  std::string kind{};       // "StatefulSet"
  bool has_status = false;  // has a /status subresource
  // Lists merged per element by server-side apply; every other list is atomic.
  std::vector<AssociativeList> associative_lists{};

  // "apps/v1", or "v1" for the core group.
  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
};

// v1 serviceaccounts, configmaps, services, secrets, persistentvolumeclaims; apps/v1
// statefulsets; networking.k8s.io/v1 networkpolicies; policy/v1 poddisruptionbudgets;
// events.k8s.io/v1 events; coordination.k8s.io/v1 leases; rbac.authorization.k8s.io/v1
// roles and rolebindings; agentry.dev/v1alpha1 managedagents. The status subresource on services,
// persistentvolumeclaims, statefulsets, poddisruptionbudgets and managedagents, as on a real
// cluster; ManagedAgent's status.conditions (by type) and status.runtimes (by pod) are associative,
// as its CRD says.
std::vector<ResourceKind> DefaultResourceKinds();

struct FakeApiServerOptions {
  std::vector<ResourceKind> kinds = DefaultResourceKinds();
  uint16_t port = 0;                                  // 0 picks a free port (kept across restarts)
  size_t history_limit = 1000;                        // watch events kept for replay
  std::chrono::milliseconds bookmark_interval{1000};  // idle time before a BOOKMARK
};

// The request kinds the fake counts (the verbs of Kubernetes RBAC).
enum class Verb { kGet, kList, kWatch, kCreate, kUpdate, kPatch, kDelete };

class FakeApiServer {
 public:
  explicit FakeApiServer(FakeApiServerOptions options = {});
  ~FakeApiServer();  // Stop()s
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Starts serving; after Stop(), starts again on the same port with the same objects and
  // history (an API server restart). Unavailable when the port cannot be bound.
  Status Start();
  // Ends every watch, waits for in-flight requests, closes the listener. Objects, history and
  // counters stay. Idempotent.
  void Stop();
  uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:PORT"

  // --- Test hooks (no request is counted) ---

  // Stores `object` directly (status included), as if some other client had written it:
  // apiVersion and kind pick the resource, metadata.namespace defaults to "default"; uid,
  // creationTimestamp and generation are filled in when missing (generation is bumped as for
  // a write when the object exists); a new resourceVersion and an ADDED or MODIFIED event.
  // managedFields are left as they were. InvalidArgument for an unknown kind or no name.
  StatusOr<nlohmann::json> Put(nlohmann::json object);
  // The stored object, or nullopt.
  std::optional<nlohmann::json> Get(const std::string& plural, const std::string& ns,
                                    const std::string& name) const;
  // The stored objects of `plural` (in `ns`, or all namespaces when empty), by namespace/name.
  std::vector<nlohmann::json> List(const std::string& plural, const std::string& ns = "") const;
  // Drops the whole watch history: a watch from any resourceVersion before now gets 410.
  void Compact();
  // Ends every open watch stream (an API server restart as watchers see it); new watches work.
  void DropWatches();
  // The next `times` requests of `verb` fail with HTTP `code` and a Status whose reason
  // matches the code (409 Conflict, 500 InternalError, 429 TooManyRequests, ...).
  void FailNext(Verb verb, int times, int code, std::string message = "injected failure");

  // --- Observations ---

  // The newest resourceVersion (unchanged when nothing was written).
  int64_t resource_version() const;
  // Requests received per verb since construction or ResetCounts(), failed ones included.
  uint64_t count(Verb verb) const;
  // create + update + patch + delete requests.
  uint64_t writes() const;
  void ResetCounts();
  // Watch streams open now.
  size_t active_watches() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentry::kube::testing
