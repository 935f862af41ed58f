// common/kube/resource.h — a Kubernetes resource type as the REST API addresses it, and the
// ones Agentry reads and writes.
#pragma once

#include <string>

namespace agentry::kube {

struct Resource {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;

  // "apps/v1", or "v1" for the core group.
  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "/apis/apps/v1/namespaces/NS/statefulsets[/NAME[/SUB]]"; `ns` empty: every namespace.
  std::string Path(const std::string& ns, const std::string& name = "",
                   const std::string& subresource = "") const {
    std::string path = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
    if (namespaced && !ns.empty()) path += "/namespaces/" + ns;
    path += "/" + plural;
    if (!name.empty()) path += "/" + name;
    if (!subresource.empty()) path += "/" + subresource;
    return path;
  }
};

inline const Resource kManagedAgents{"agentry.dev", "v1alpha1", "managedagents", "ManagedAgent"};
inline const Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount"};
inline const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap"};
inline const Resource kServices{"", "v1", "services", "Service"};
inline const Resource kSecrets{"", "v1", "secrets", "Secret"};
inline const Resource kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims",
                                              "PersistentVolumeClaim"};
inline const Resource kStatefulSets{"apps", "v1", "statefulsets", "StatefulSet"};
inline const Resource kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies",
                                       "NetworkPolicy"};
inline const Resource kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets",
                                            "PodDisruptionBudget"};
inline const Resource kEvents{"events.k8s.io", "v1", "events", "Event"};
inline const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease"};

}  // namespace agentry::kube
