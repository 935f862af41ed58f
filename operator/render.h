// operator/render.h — the objects one ManagedAgent owns, as the operator applies them.
//
// A pure function of the agent (as the API server returns it) and the operator's options:
// the same agent always renders the same bytes, so a reconcile that changes nothing sends
// the same apply patches and the API server writes nothing. Objects (DESIGN.md):
//   ServiceAccount NAME        unless spec.identity.serviceAccountName names one
//   Role, RoleBinding          NAME-runtime: the runtime pods' ServiceAccount may get and
//                              patch this agent's status (status.runtimes), nothing else
//   ConfigMap NAME-config      agent.yaml: the agent as the runtime reads it (-c)
//   StatefulSet NAME           runtime container, state sidecar (a native sidecar), the
//                              `state` volume claim template, the node daemon's socket
//                              (hostPath), header Secrets, device requests
//   Service NAME               port 80 to the runtime's 8080
//   NetworkPolicy NAME         egress only to DNS, the declared tool hosts and the API server
//   PodDisruptionBudget NAME   when spec.replicas > 1
// Every object carries the agent's labels and a controller owner reference to it, so
// deleting the agent deletes them (the state volumes are kept: the StatefulSet's claim
// retention policy is Retain).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config/agent_spec.h"
#include "common/kube/resource.h"
#include "common/status.h"

namespace agentry::operator_ {

using Json = nlohmann::json;

struct RenderOptions {
  std::string image = "agentry:latest";  // holds the agentry binary (runtime and state)
  std::string image_pull_policy = "IfNotPresent";
  std::string nodeagent_socket_dir = "/var/run/agentry";  // on the node (hostPath)
  std::string admin_group = "agentry:admins";
};

struct RenderedObject {
  const kube::Resource* resource;
  Json object;
};

// The labels every owned object carries, and the runtime pods' selector.
Json SelectorLabels(const std::string& agent_name);

// The agent as the API server returned it (`object`: apiVersion, kind, metadata with uid,
// spec), decoded into `agent`. InvalidArgument when the spec does not decode.
StatusOr<config::ManagedAgent> DecodeAgent(const Json& object);

// Every object `object` (a ManagedAgent from the API server, decoded as `agent`) owns.
std::vector<RenderedObject> RenderOwnedObjects(const Json& object,
                                               const config::ManagedAgent& agent,
                                               const RenderOptions& options);

}  // namespace agentry::operator_
