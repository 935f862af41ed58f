// common/kube/resource.h — a Kubernetes resource type as the REST API addresses it, and the
// ones Agentry reads and writes.
#pragma once

#include <string>
#include <string_view>

namespace agentry::kube {

struct Resource {
  std::string_view group;  // "" for the core group
  std::string_view version;
  std::string_view plural;
  std::string_view kind;
  bool namespaced = true;

  // "apps/v1", or "v1" for the core group.
  std::string ApiVersion() const {
    return group.empty() ? std::string(version) : std::string(group) + "/" + std::string(version);
  }
  // "/apis/apps/v1/namespaces/NS/statefulsets[/NAME[/SUB]]"; `ns` empty: every namespace.
  std::string Path(const std::string& ns, const std::string& name = "",
                   const std::string& subresource = "") const {
    std::string path = "/api";
    if (!group.empty()) (path += "s/") += group;
    (path += "/") += version;
    if (namespaced && !ns.empty()) path += "/namespaces/" + ns;
    (path += "/") += plural;
    if (!name.empty()) path += "/" + name;
    if (!subresource.empty()) path += "/" + subresource;
    return path;
  }
};

inline constexpr Resource kManagedAgents{"agentry.dev", "v1alpha1", "managedagents",
                                         "ManagedAgent"};
inline constexpr Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount"};
inline constexpr Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap"};
inline constexpr Resource kServices{"", "v1", "services", "Service"};
inline constexpr Resource kSecrets{"", "v1", "secrets", "Secret"};
inline constexpr Resource kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims",
                                                  "PersistentVolumeClaim"};
inline constexpr Resource kStatefulSets{"apps", "v1", "statefulsets", "StatefulSet"};
inline constexpr Resource kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies",
                                           "NetworkPolicy"};
inline constexpr Resource kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets",
                                                "PodDisruptionBudget"};
inline constexpr Resource kRoles{"rbac.authorization.k8s.io", "v1", "roles", "Role"};
inline constexpr Resource kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings",
                                        "RoleBinding"};
inline constexpr Resource kEvents{"events.k8s.io", "v1", "events", "Event"};
inline constexpr Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease"};

}  // namespace agentry::kube
