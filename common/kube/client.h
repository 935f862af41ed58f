// common/kube/client.h — a Kubernetes API client: get, list, watch, create, update, delete,
// server-side apply (also of the status subresource), rate limited, with errors that carry
// the API server's reason.
//
//   StatusOr<std::unique_ptr<Client>> client = Client::Create(*config);
//   StatusOr<Json> sts = (*client)->Get(kStatefulSets, "team-a", "triage");
//   if (!sts.ok() && Reason(sts.status()) == "NotFound") ...
//   (*client)->Apply(kConfigMaps, "team-a", object, {.field_manager = "agentry-operator"});
//
// Errors: the API server's Status object becomes a Status whose message starts with its
// reason ("NotFound: configmaps \"x\" not found"), with a code for the HTTP status: 400/422
// INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 409
// ALREADY_EXISTS or ABORTED (a conflict), 410 FAILED_PRECONDITION (a watch or list from a
// resourceVersion the server no longer has: relist), 429 RESOURCE_EXHAUSTED, 5xx and network
// failures UNAVAILABLE.
//
// A wrapper over cpprestsdk's client that keeps cpprestsdk out of callers' headers. Thread-
// safe: requests from several threads share its connections.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/kube/kube_config.h"
#include "common/kube/rate_limiter.h"
#include "common/kube/resource.h"
#include "common/status.h"

namespace agentry::kube {

using Json = nlohmann::json;

struct ClientOptions {
  double qps = 50;  // requests a second on average (watches count once, when they start)
  int burst = 100;
  std::chrono::milliseconds timeout = std::chrono::seconds(30);  // one request, not a watch
  std::string user_agent = "agentry";
};

struct ListOptions {
  std::string label_selector{};    // "app.kubernetes.io/managed-by=agentry-operator"
  std::string resource_version{};  // list: "0" allows a cached answer; watch: start after it
  int64_t limit = 0;               // list: page size; 0: all at once
  std::string continue_token{};    // list: the next page
};

struct WatchOptions {
  std::string label_selector{};
  std::string resource_version{};  // events after this one
  bool bookmarks = true;           // ask for BOOKMARK events (progress without changes)
  std::chrono::seconds timeout = std::chrono::minutes(5);  // the server ends the watch then
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  Json object;
};

struct ApplyOptions {
  std::string field_manager;
  bool force = false;  // take over fields another manager owns
};

class Client {
 public:
  static StatusOr<std::unique_ptr<Client>> Create(KubeConfig config, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  StatusOr<Json> Get(const Resource& resource, const std::string& ns, const std::string& name);
  // One page (all items when options.limit is 0): the List object with metadata.continue.
  StatusOr<Json> List(const Resource& resource, const std::string& ns,
                      const ListOptions& options = {});
  // Every page of a list, items joined; metadata.resourceVersion is the first page's.
  StatusOr<Json> ListAll(const Resource& resource, const std::string& ns,
                         const ListOptions& options = {});
  // Streams the events after options.resource_version to `on_event` until the server ends the
  // watch (OK), `*stop` is set or `on_event` returns false (CANCELLED), or an error: an ERROR
  // event is returned as its Status (410 Expired: relist and watch again).
  Status Watch(const Resource& resource, const std::string& ns, const WatchOptions& options,
               const std::function<bool(const WatchEvent&)>& on_event,
               const std::atomic<bool>* stop = nullptr);
  StatusOr<Json> Create(const Resource& resource, const std::string& ns, const Json& object);
  // PUT: refused with ABORTED (Conflict) when metadata.resourceVersion is stale.
  StatusOr<Json> Update(const Resource& resource, const std::string& ns, const Json& object);
  StatusOr<Json> Delete(const Resource& resource, const std::string& ns, const std::string& name);
  // Server-side apply of `object` (its metadata.name names it) by options.field_manager.
  StatusOr<Json> Apply(const Resource& resource, const std::string& ns, const Json& object,
                       const ApplyOptions& options);
  // The same for the status subresource.
  StatusOr<Json> ApplyStatus(const Resource& resource, const std::string& ns, const Json& object,
                             const ApplyOptions& options);

  const KubeConfig& config() const { return config_; }
  int64_t requests() const { return requests_.load(); }

 private:
  struct Impl;
  Client(KubeConfig config, ClientOptions options);
  StatusOr<Json> Call(const std::string& method, const std::string& path_and_query,
                      const std::string& body, const std::string& content_type);
  StatusOr<std::string> BearerToken();

  KubeConfig config_;
  ClientOptions options_;
  TokenBucket limiter_;
  std::atomic<int64_t> requests_{0};
  std::unique_ptr<Impl> impl_;
};

// The API server's reason for a Client error ("NotFound", "Conflict", "Expired", ...), or "".
std::string Reason(const Status& status);

// The Status for an API server's answer with HTTP status `http_status` and body `body` (a
// Status object, or anything else).
Status ApiError(int http_status, const std::string& body);

}  // namespace agentry::kube
