// operator/watch_cache.cc — see watch_cache.h.
#include "operator/watch_cache.h"

#include <algorithm>

namespace agentry::operator_ {

using nlohmann::json;

WatchCache::WatchCache(kube::Client* client, WatchCacheOptions options,
                       std::function<void(const Change&)> on_change)
    : client_(client), options_(std::move(options)), on_change_(std::move(on_change)) {}

WatchCache::~WatchCache() { Stop(); }

std::string WatchCache::KeyOf(const json& object) {
  const json& meta = object["metadata"];
  return meta.value("namespace", "") + "/" + meta.value("name", "");
}

void WatchCache::Start() {
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void WatchCache::Stop() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    sleep_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::optional<json> WatchCache::Get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = objects_.find(key);
  if (it == objects_.end()) return std::nullopt;
  return it->second;
}

std::vector<json> WatchCache::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<json> out;
  out.reserve(objects_.size());
  for (const auto& [key, object] : objects_) out.push_back(object);
  return out;
}

size_t WatchCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return objects_.size();
}

StatusOr<std::string> WatchCache::Relist() {
  AGENTRY_ASSIGN_OR_RETURN(json list, client_->ListAll(*options_.resource, options_.ns,
                                                       {.label_selector = options_.label_selector,
                                                        .limit = options_.page_size}));
  std::map<std::string, json> fresh;
  for (json& item : list["items"]) {
    // List items carry no apiVersion and kind; the reconcilers compare whole objects.
    item["apiVersion"] = options_.resource->ApiVersion();
    item["kind"] = options_.resource->kind;
    std::string key = KeyOf(item);  // before the move: `a = std::move(b)` moves b first
    item["metadata"].erase("managedFields");
    fresh[key] = std::move(item);
  }
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, object] : objects_) {
      if (fresh.count(key) == 0) changes.push_back({"DELETED", key, object});
    }
    for (const auto& [key, object] : fresh) {
      const auto it = objects_.find(key);
      if (it == objects_.end()) {
        changes.push_back({"ADDED", key, object});
      } else if (it->second["metadata"].value("resourceVersion", "") !=
                 object["metadata"].value("resourceVersion", "")) {
        changes.push_back({"MODIFIED", key, object});
      }
    }
    objects_ = std::move(fresh);
    synced_ = true;
  }
  for (const Change& c : changes) on_change_(c);
  return list["metadata"].value("resourceVersion", "");
}

void WatchCache::Apply(const kube::WatchEvent& event, std::string* resource_version) {
  const std::string rv = event.object["metadata"].value("resourceVersion", "");
  if (!rv.empty()) *resource_version = rv;
  if (event.type == "BOOKMARK") return;
  Change change{event.type, KeyOf(event.object), event.object};
  change.object["metadata"].erase("managedFields");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (event.type == "DELETED") {
      objects_.erase(change.key);
    } else {
      objects_[change.key] = change.object;
    }
  }
  on_change_(change);
}

void WatchCache::Backoff(std::chrono::milliseconds* delay) {
  std::unique_lock<std::mutex> lock(sleep_mu_);
  sleep_cv_.wait_for(lock, *delay, [this] { return stop_.load(); });
  *delay = std::min(*delay * 2, options_.max_backoff);
}

void WatchCache::Run() {
  std::chrono::milliseconds delay = options_.min_backoff;
  std::string resource_version;
  bool need_list = true;
  while (!stop_) {
    if (need_list) {
      StatusOr<std::string> rv = Relist();
      if (!rv.ok()) {
        log_.Warn("list failed", {{"resource", std::string(options_.resource->plural)},
                                  {"error", rv.status().message()}});
        ++restarts_;
        Backoff(&delay);
        continue;
      }
      resource_version = *rv;
      need_list = false;
    }
    const Status watched = client_->Watch(
        *options_.resource, options_.ns,
        {.label_selector = options_.label_selector,
         .resource_version = resource_version,
         .bookmarks = true,
         .timeout = options_.watch_timeout},
        [&](const kube::WatchEvent& e) {
          Apply(e, &resource_version);
          return !stop_.load();
        },
        &stop_);
    if (stop_) break;
    if (watched.ok()) {
      delay = options_.min_backoff;  // a watch that ran its course: watch on from where it was
      continue;
    }
    ++restarts_;
    if (kube::Reason(watched) == "Expired" || kube::Reason(watched) == "Gone") {
      need_list = true;  // the server no longer has our resourceVersion: start over
      continue;
    }
    log_.Warn("watch failed",
              {{"resource", std::string(options_.resource->plural)}, {"error", watched.message()}});
    need_list = true;
    Backoff(&delay);
  }
}

}  // namespace agentry::operator_
