// operator/reconciler.cc — see reconciler.h.
#include "operator/reconciler.h"

#include "common/utc_day.h"
#include "operator/status.h"
#include "operator/usage.h"

namespace agentry::operator_ {

struct Reconciler::Checks {
  bool model_ok = true;
  std::string model_reason = "ModelClaimFound";
  std::string model_message;
  bool degraded = false;
  std::string degraded_reason = "AsExpected";
  std::string degraded_message;
};

Reconciler::Reconciler(kube::Client* client, const WatchCache* agents,
                       std::map<std::string, const WatchCache*> owned, const WatchCache* claims,
                       EventRecorder* events, ReconcilerOptions options)
    : client_(client),
      agents_(agents),
      owned_(std::move(owned)),
      claims_(claims),
      events_(events),
      options_(std::move(options)) {}

const WatchCache* Reconciler::Owned(const kube::Resource& resource) const {
  const auto it = owned_.find(std::string(resource.plural));
  return it == owned_.end() ? nullptr : it->second;
}

Status Reconciler::CheckDependencies(const config::ManagedAgent& agent, Checks* checks) {
  const std::string& ns = agent.metadata.namespace_name;
  const config::ModelSource& source = agent.spec.model.source;
  if (!source.file.empty()) {
    checks->model_ok = false;
    checks->model_reason = "LocalFileSource";
    checks->model_message =
        "spec.model.source.file is for agentry up; in a cluster the model comes from "
        "source.pvc";
  } else if (!claims_->Get(ns + "/" + source.pvc).has_value()) {
    checks->model_ok = false;
    checks->model_reason = "ModelClaimNotFound";
    checks->model_message = "PersistentVolumeClaim " + source.pvc +
                            " (spec.model.source.pvc) not found in namespace " + ns;
  } else {
    checks->model_message = "PersistentVolumeClaim " + source.pvc + " holds " + source.path;
  }
  for (size_t t = 0; t < agent.spec.tools.size(); ++t) {
    const config::ToolSpec& tool = agent.spec.tools[t];
    if (!tool.http) continue;
    for (size_t h = 0; h < tool.http->headers.size(); ++h) {
      const std::string& secret = tool.http->headers[h].secret_name;
      if (secret.empty()) continue;
      Status s = client_->Get(kube::kSecrets, ns, secret).status();
      if (s.code() == StatusCode::kNotFound) {
        checks->degraded = true;
        checks->degraded_reason = "SecretNotFound";
        checks->degraded_message = "Secret " + secret + " (spec.tools[" + std::to_string(t) +
                                   "].http.headers[" + std::to_string(h) +
                                   "].valueFrom.secretKeyRef) not found in namespace " + ns;
      } else if (!s.ok()) {
        return s;
      }
    }
  }
  return OkStatus();
}

Status Reconciler::ApplyOwned(const Json& agent, const std::vector<RenderedObject>& objects) {
  std::string applied_names;  // one Event for the whole reconcile, not one per object
  Status result = OkStatus();
  for (const RenderedObject& r : objects) {
    const Json& meta = r.object["metadata"];
    const std::string ns = meta.value("namespace", "");
    const std::string name = meta.value("name", "");
    const WatchCache* cache = Owned(*r.resource);
    if (cache != nullptr) {
      const std::optional<Json> actual = cache->Get(ns + "/" + name);
      if (actual.has_value() && Covers(*actual, r.object)) continue;  // nothing to change
    }
    StatusOr<Json> applied = client_->Apply(
        *r.resource, ns, r.object, {.field_manager = options_.field_manager, .force = true});
    if (!applied.ok()) {
      events_->Record(
          agent, "Warning", "ApplyFailed", "Apply",
          std::string(r.resource->kind) + " " + name + ": " + applied.status().message());
      result = applied.status();
      break;
    }
    ++applied_;
    applied_names +=
        (applied_names.empty() ? "" : ", ") + std::string(r.resource->kind) + " " + name;
  }
  if (!applied_names.empty()) {
    events_->Record(agent, "Normal", "Applied", "Apply", "Applied " + applied_names);
  }
  return result;
}

Status Reconciler::DeleteUnwanted(const Json& agent, const std::vector<RenderedObject>& objects) {
  const Json& meta = agent["metadata"];
  const std::string ns = meta.value("namespace", "");
  const std::string name = meta.value("name", "");
  const std::string uid = meta.value("uid", "");
  for (const kube::Resource* resource : {&kube::kPodDisruptionBudgets, &kube::kServiceAccounts}) {
    bool wanted = false;
    for (const RenderedObject& r : objects) wanted = wanted || r.resource == resource;
    const WatchCache* cache = Owned(*resource);
    if (wanted || cache == nullptr) continue;
    const std::optional<Json> existing = cache->Get(ns + "/" + name);
    if (!existing.has_value()) continue;
    bool ours = false;  // only what this agent owns (a named ServiceAccount is the user's)
    for (const Json& ref : (*existing)["metadata"].value("ownerReferences", Json::array())) {
      ours = ours || ref.value("uid", "") == uid;
    }
    if (!ours) continue;
    Status s = client_->Delete(*resource, ns, name).status();
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    ++deleted_;
    events_->Record(
        agent, "Normal", "Deleted", "Delete",
        "Deleted " + std::string(resource->kind) + " " + name + ": the spec no longer needs it");
  }
  return OkStatus();
}

Status Reconciler::WriteStatus(const Json& agent, Json status) {
  const Json current = agent.value("status", Json::object());
  if (Covers(current, status)) return OkStatus();
  const Json& meta = agent["metadata"];
  const Json patch = {
      {"apiVersion", agent.value("apiVersion", kube::kManagedAgents.ApiVersion())},
      {"kind", "ManagedAgent"},
      {"metadata", {{"name", meta.value("name", "")}, {"namespace", meta.value("namespace", "")}}},
      {"status", std::move(status)}};
  return client_
      ->ApplyStatus(kube::kManagedAgents, meta.value("namespace", ""), patch,
                    {.field_manager = options_.field_manager, .force = true})
      .status();
}

Status Reconciler::Reconcile(const std::string& key) {
  const std::optional<Json> found = agents_->Get(key);
  if (!found.has_value()) return OkStatus();
  const Json& agent = *found;
  const Json& meta = agent["metadata"];
  if (meta.contains("deletionTimestamp")) return OkStatus();
  const int64_t generation = meta.value("generation", int64_t{0});
  const std::string now = NowRfc3339();
  const Json current = agent.value("status", Json::object());
  // Only the operator's own fields: status.runtimes is each runtime pod's, under its own field
  // manager, and applying it here would take it from them.
  Json status = Json::object();
  for (const char* field : {"replicas", "readyReplicas", "selector", "endpoint", "usage"}) {
    if (current.contains(field)) status[field] = current[field];
  }
  Json conditions = current.value("conditions", Json::array());
  status["observedGeneration"] = generation;

  StatusOr<config::ManagedAgent> decoded = DecodeAgent(agent);
  if (!decoded.ok()) {
    SetCondition(&conditions, "Ready", false, "InvalidSpec", decoded.status().message(), generation,
                 now);
    SetCondition(&conditions, "Degraded", true, "InvalidSpec", decoded.status().message(),
                 generation, now);
    status["conditions"] = conditions;
    events_->Record(agent, "Warning", "InvalidSpec", "Reconcile", decoded.status().message());
    return WriteStatus(agent, std::move(status));
  }
  const config::ManagedAgent& spec = *decoded;
  Checks checks;
  AGENTRY_RETURN_IF_ERROR(CheckDependencies(spec, &checks));
  if (!checks.model_ok) {
    events_->Record(agent, "Warning", checks.model_reason, "Reconcile", checks.model_message);
  }
  if (checks.degraded) {
    events_->Record(agent, "Warning", checks.degraded_reason, "Reconcile", checks.degraded_message);
  }

  const std::vector<RenderedObject> objects = RenderOwnedObjects(agent, spec, options_.render);
  if (Status s = ApplyOwned(agent, objects); !s.ok()) {
    SetCondition(&conditions, "Degraded", true, "ApplyFailed", s.message(), generation, now);
    status["conditions"] = conditions;
    (void)WriteStatus(agent, status);  // best effort: the retry will write it again
    return s;
  }
  AGENTRY_RETURN_IF_ERROR(DeleteUnwanted(agent, objects));

  // What the StatefulSet reports (its own watch brings us back when it changes).
  const std::string& ns = spec.metadata.namespace_name;
  const std::string& name = spec.metadata.name;
  Json sts_status = Json::object();
  if (const WatchCache* sts = Owned(kube::kStatefulSets); sts != nullptr) {
    if (std::optional<Json> s = sts->Get(ns + "/" + name); s.has_value()) {
      sts_status = s->value("status", Json::object());
    }
  }
  const int64_t desired = spec.spec.suspend ? 0 : spec.spec.replicas;
  const int64_t ready = sts_status.value("readyReplicas", int64_t{0});
  status["replicas"] = sts_status.value("replicas", int64_t{0});
  status["readyReplicas"] = ready;
  status["selector"] =
      "app.kubernetes.io/instance=" + name + ",app.kubernetes.io/name=agentry-agent";
  status["endpoint"] = "http://" + name + "." + ns + ".svc";
  // What the runtime pods report: usage, the day budget, and whether their node daemons run
  // the model (something only they can see: the claim's files are not the operator's to read).
  const AgentUsage usage = SumRuntimeReports(current.value("runtimes", Json::array()), name,
                                             desired, UtcToday(), spec.spec.budget.tokens_per_day);
  status["usage"] = usage.usage;
  SetCondition(&conditions, "BudgetExhausted", usage.budget_exhausted, usage.reason, usage.message,
               generation, now);
  if (checks.model_ok && !usage.model_error.empty()) {
    checks.model_ok = false;
    checks.model_reason = "ModelNotServed";
    checks.model_message = usage.model_error;
    events_->Record(agent, "Warning", checks.model_reason, "Reconcile", checks.model_message);
  }
  SetCondition(&conditions, "ModelAvailable", checks.model_ok, checks.model_reason,
               checks.model_message, generation, now);
  SetCondition(&conditions, "Suspended", spec.spec.suspend,
               spec.spec.suspend ? "Suspended" : "Running",
               spec.spec.suspend ? "spec.suspend is true: scaled to zero, running turns stopped"
                                 : "spec.suspend is false",
               generation, now);
  SetCondition(&conditions, "Degraded", checks.degraded, checks.degraded_reason,
               checks.degraded_message, generation, now);
  if (spec.spec.suspend) {
    SetCondition(&conditions, "Ready", false, "Suspended", "the agent is suspended", generation,
                 now);
  } else if (!checks.model_ok) {
    SetCondition(&conditions, "Ready", false, "ModelUnavailable", checks.model_message, generation,
                 now);
  } else if (desired == 0) {
    SetCondition(&conditions, "Ready", false, "ScaledToZero", "spec.replicas is 0", generation,
                 now);
  } else if (ready >= desired) {
    SetCondition(&conditions, "Ready", true, "AllReplicasReady",
                 std::to_string(ready) + " of " + std::to_string(desired) + " runtime pods ready",
                 generation, now);
  } else {
    SetCondition(&conditions, "Ready", false, "ReplicasNotReady",
                 std::to_string(ready) + " of " + std::to_string(desired) + " runtime pods ready",
                 generation, now);
  }
  status["conditions"] = conditions;
  return WriteStatus(agent, std::move(status));
}

}  // namespace agentry::operator_
