// operator/watch_cache.h — a local copy of one resource's objects, kept current by list and
// watch (client-go's informer): the controller reads the cache, never the API server, and is
// told of every change.
//
//   WatchCache agents(&client, {.resource = &kube::kManagedAgents}, [&](const Change& c) {
//     queue.Add(c.key);
//   });
//   agents.Start();   // a thread: list, then watch from the list's resourceVersion
//   ... agents.Get("team-a/triage") ...
//   agents.Stop();
//
// Cached objects keep everything but metadata.managedFields: the reconcilers never read them,
// and dropping them took a quarter off the operator's memory (PERFORMANCE.md).
//
// The loop: list everything (paged), replace the cache and report what changed; watch from
// the list's resourceVersion, applying each event; when the watch ends (the server's
// timeout, a restart), watch again from the last resourceVersion seen (bookmarks keep it
// fresh); when that is too old (410 Expired) or any other error, list again, after a backoff
// of 0.5 s doubling to 30 s for errors. Each relist or re-watch after an error counts as a
// restart (agentry_operator_watch_restarts_total).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/kube/client.h"
#include "common/log/log.h"

namespace agentry::operator_ {

struct WatchCacheOptions {
  const kube::Resource* resource = nullptr;
  std::string ns{};              // "": every namespace
  std::string label_selector{};  // only the objects it selects
  std::chrono::seconds watch_timeout = std::chrono::minutes(5);
  std::chrono::milliseconds min_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  int64_t page_size = 500;
};

struct Change {
  std::string type;  // ADDED, MODIFIED, DELETED
  std::string key;   // "namespace/name"
  nlohmann::json object;
};

class WatchCache {
 public:
  WatchCache(kube::Client* client, WatchCacheOptions options,
             std::function<void(const Change&)> on_change);
  ~WatchCache();  // Stop()s
  WatchCache(const WatchCache&) = delete;
  WatchCache& operator=(const WatchCache&) = delete;

  void Start();
  void Stop();

  std::optional<nlohmann::json> Get(const std::string& key) const;
  std::vector<nlohmann::json> List() const;
  size_t size() const;
  // The first list has filled the cache.
  bool synced() const { return synced_.load(); }
  int64_t restarts() const { return restarts_.load(); }

  static std::string KeyOf(const nlohmann::json& object);

 private:
  void Run();
  // Lists and replaces the cache; the list's resourceVersion.
  StatusOr<std::string> Relist();
  void Apply(const kube::WatchEvent& event, std::string* resource_version);
  void Backoff(std::chrono::milliseconds* delay);

  kube::Client* client_;
  const WatchCacheOptions options_;
  std::function<void(const Change&)> on_change_;
  log::Logger log_{"operator"};
  mutable std::mutex mu_;
  std::map<std::string, nlohmann::json> objects_;
  std::atomic<bool> synced_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> restarts_{0};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::thread thread_;
};

}  // namespace agentry::operator_
