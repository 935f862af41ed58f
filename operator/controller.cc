// operator/controller.cc — see controller.h.
#include "operator/controller.h"

namespace agentry::operator_ {
namespace {

const std::vector<const kube::Resource*>& OwnedKinds() {
  static const std::vector<const kube::Resource*> kinds = {
      &kube::kServiceAccounts, &kube::kRoles,
      &kube::kRoleBindings,    &kube::kConfigMaps,
      &kube::kStatefulSets,    &kube::kServices,
      &kube::kNetworkPolicies, &kube::kPodDisruptionBudgets};
  return kinds;
}

}  // namespace

Controller::Controller(kube::Client* client, EventRecorder* events, ControllerOptions options)
    : client_(client), options_(std::move(options)) {
  agents_ = std::make_unique<WatchCache>(client_,
                                         WatchCacheOptions{.resource = &kube::kManagedAgents,
                                                           .ns = options_.watch_namespace,
                                                           .watch_timeout = options_.watch_timeout},
                                         [this](const Change& c) { queue_.Add(c.key); });
  std::map<std::string, const WatchCache*> owned;
  for (const kube::Resource* kind : OwnedKinds()) {
    owned_.push_back(std::make_unique<WatchCache>(
        client_,
        WatchCacheOptions{.resource = kind,
                          .ns = options_.watch_namespace,
                          .label_selector = "app.kubernetes.io/managed-by=agentry-operator",
                          .watch_timeout = options_.watch_timeout},
        [this](const Change& c) { OnOwnedChange(c); }));
    owned[std::string(kind->plural)] = owned_.back().get();
  }
  claims_ =
      std::make_unique<WatchCache>(client_,
                                   WatchCacheOptions{.resource = &kube::kPersistentVolumeClaims,
                                                     .ns = options_.watch_namespace,
                                                     .watch_timeout = options_.watch_timeout},
                                   [this](const Change& c) { OnClaimChange(c); });
  reconciler_ = std::make_unique<Reconciler>(client_, agents_.get(), owned, claims_.get(), events,
                                             options_.reconciler);
  if (metrics::Registry* r = options_.registry; r != nullptr) {
    reconciles_total_ = &r->AddCounter("agentry_operator_reconciles_total",
                                       "ManagedAgent reconciles, by result", {"result"});
    // Both results exist from the start, so the first error is an increase an alert sees.
    for (const char* result : {"ok", "error"}) reconciles_total_->WithLabels({result});
    reconcile_seconds_ = &r->AddHistogram("agentry_operator_reconcile_duration_seconds",
                                          "One reconcile, from the queue to its last write", {},
                                          {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
                              .WithLabels({});
    auto& depth = r->AddGauge("agentry_operator_queue_depth", "Agents waiting to be reconciled");
    auto& restarts = r->AddGauge("agentry_operator_watch_restarts_total",
                                 "Relists and re-watches after an error or an expired "
                                 "resourceVersion, by resource (a counter read from the caches)",
                                 {"resource"});
    auto& objects = r->AddGauge("agentry_operator_owned_objects",
                                "Objects in the operator's caches, by resource", {"resource"});
    r->AddCollectHook([this, &depth, &restarts, &objects] {
      depth.WithLabels({}).Set(static_cast<double>(queue_.depth()));
      restarts.WithLabels({"managedagents"}).Set(static_cast<double>(agents_->restarts()));
      objects.WithLabels({"managedagents"}).Set(static_cast<double>(agents_->size()));
      for (size_t i = 0; i < owned_.size(); ++i) {
        restarts.WithLabels({std::string(OwnedKinds()[i]->plural)})
            .Set(static_cast<double>(owned_[i]->restarts()));
        objects.WithLabels({std::string(OwnedKinds()[i]->plural)})
            .Set(static_cast<double>(owned_[i]->size()));
      }
    });
  }
}

Controller::~Controller() { Stop(); }

void Controller::OnOwnedChange(const Change& change) {
  const nlohmann::json& meta = change.object["metadata"];
  for (const nlohmann::json& ref : meta.value("ownerReferences", nlohmann::json::array())) {
    if (ref.value("kind", "") == "ManagedAgent" && ref.value("controller", false)) {
      queue_.Add(meta.value("namespace", "") + "/" + ref.value("name", ""));
    }
  }
}

void Controller::OnClaimChange(const Change& change) {
  // Only the claim's existence matters: an update to it changes nothing for its agents.
  if (change.type == "MODIFIED") return;
  const nlohmann::json& meta = change.object["metadata"];
  const std::string ns = meta.value("namespace", "");
  const std::string name = meta.value("name", "");
  for (const nlohmann::json& agent : agents_->List()) {
    if (agent["metadata"].value("namespace", "") != ns) continue;
    const nlohmann::json& spec = agent.value("spec", nlohmann::json::object());
    if (spec.contains("model") && spec["model"].contains("source") &&
        spec["model"]["source"].value("pvc", "") == name) {
      queue_.Add(WatchCache::KeyOf(agent));
    }
  }
}

bool Controller::synced() const {
  if (!agents_->synced() || !claims_->synced()) return false;
  for (const auto& cache : owned_) {
    if (!cache->synced()) return false;
  }
  return true;
}

Status Controller::Start(const std::atomic<bool>* stop) {
  agents_->Start();
  claims_->Start();
  for (auto& cache : owned_) cache->Start();
  const auto deadline = std::chrono::steady_clock::now() + options_.sync_timeout;
  while (!synced()) {
    if (stop != nullptr && stop->load()) return CancelledError("stopped before the caches synced");
    if (std::chrono::steady_clock::now() > deadline) {
      return UnavailableError("the watch caches did not sync within " +
                              std::to_string(options_.sync_timeout.count()) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const nlohmann::json& agent : agents_->List()) queue_.Add(WatchCache::KeyOf(agent));
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { Work(); });
  }
  return OkStatus();
}

void Controller::Stop() {
  queue_.ShutDown();
  for (std::thread& w : workers_) w.join();
  workers_.clear();
  agents_->Stop();
  claims_->Stop();
  for (auto& cache : owned_) cache->Stop();
}

void Controller::Work() {
  while (std::optional<std::string> key = queue_.Get()) {
    const auto start = std::chrono::steady_clock::now();
    const Status s = reconciler_->Reconcile(*key);
    ++reconciles_;
    if (s.ok()) {
      queue_.Forget(*key);
    } else {
      queue_.Retry(*key);
    }
    if (reconciles_total_ != nullptr) {
      reconciles_total_->WithLabels({s.ok() ? "ok" : "error"}).Increment();
      reconcile_seconds_->Observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    queue_.Done(*key);
  }
}

}  // namespace agentry::operator_
