// operator/render.cc — see render.h.
#include "operator/render.h"

#include <set>

#include "common/sha256.h"

namespace agentry::operator_ {
namespace {

constexpr const char* kConfigDir = "/etc/agentry";
constexpr const char* kStateDir = "/var/lib/agentry/state";
constexpr const char* kStateSocketDir = "/run/agentry-state";
constexpr const char* kSecretsDir = "/var/run/agentry/secrets";
constexpr const char* kTokenDir = "/var/run/secrets/agentry";
constexpr int kRuntimePort = 8080;
constexpr int kStateMetricsPort = 9465;
constexpr int64_t kNonRootUid = 65532;  // the image's "nonroot" user

Json Labels(const std::string& name) {
  Json labels = SelectorLabels(name);
  labels["app.kubernetes.io/managed-by"] = "agentry-operator";
  labels["app.kubernetes.io/part-of"] = "agentry";
  return labels;
}

// metadata of an owned object: name, namespace, labels, and the controller reference.
Json Metadata(const Json& owner, const std::string& name) {
  const Json& meta = owner["metadata"];
  const std::string agent = meta.value("name", "");
  return {{"name", name},
          {"namespace", meta.value("namespace", "default")},
          {"labels", Labels(agent)},
          {"ownerReferences",
           Json::array({{{"apiVersion", owner.value("apiVersion", "agentry.dev/v1alpha1")},
                         {"kind", "ManagedAgent"},
                         {"name", agent},
                         {"uid", meta.value("uid", "")},
                         {"controller", true},
                         {"blockOwnerDeletion", true}}})}};
}

Json ContainerSecurity() {
  return {{"runAsNonRoot", true},
          {"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"capabilities", {{"drop", Json::array({"ALL"})}}}};
}

// The agent as the runtime reads it: what the API server holds, without its bookkeeping.
Json RuntimeConfig(const Json& object) {
  const Json& meta = object["metadata"];
  Json config = {
      {"apiVersion", object.value("apiVersion", "agentry.dev/v1alpha1")},
      {"kind", "ManagedAgent"},
      {"metadata",
       {{"name", meta.value("name", "")}, {"namespace", meta.value("namespace", "default")}}},
      {"spec", object.value("spec", Json::object())}};
  if (meta.contains("labels")) config["metadata"]["labels"] = meta["labels"];
  return config;
}

// What rolls the pods when it changes: everything but suspend (the runtime follows it in its
// mounted config, at once, without a restart) and replicas.
std::string ConfigHash(const Json& object) {
  Json spec = object.value("spec", Json::object());
  spec.erase("suspend");
  spec.erase("replicas");
  return Sha256Hex(spec.dump()).substr(0, 16);
}

std::vector<std::string> HeaderSecrets(const config::ManagedAgent& agent) {
  std::set<std::string> names;
  for (const config::ToolSpec& tool : agent.spec.tools) {
    if (!tool.http) continue;
    for (const config::HttpHeaderSpec& h : tool.http->headers) {
      if (!h.secret_name.empty()) names.insert(h.secret_name);
    }
  }
  return {names.begin(), names.end()};
}

// The runtime pods' ServiceAccount: the one the spec names, else the agent's own.
std::string ServiceAccountName(const config::ManagedAgent& agent) {
  const std::string& named = agent.spec.identity.service_account_name;
  return named.empty() ? agent.metadata.name : named;
}

Json StatefulSet(const Json& object, const config::ManagedAgent& agent,
                 const RenderOptions& options) {
  const std::string& name = agent.metadata.name;
  const config::AgentSpec& spec = agent.spec;
  const std::string state_socket = std::string(kStateSocketDir) + "/state.sock";
  Json volume_mounts = Json::array({
      {{"name", "config"}, {"mountPath", kConfigDir}, {"readOnly", true}},
      {{"name", "state-socket"}, {"mountPath", kStateSocketDir}},
      {{"name", "nodeagent"}, {"mountPath", "/var/run/agentry"}},
      {{"name", "token"}, {"mountPath", kTokenDir}, {"readOnly", true}},
  });
  Json volumes = Json::array({
      {{"name", "config"}, {"configMap", {{"name", name + "-config"}}}},
      {{"name", "state-socket"}, {"emptyDir", {{"medium", "Memory"}}}},
      {{"name", "nodeagent"},
       {"hostPath", {{"path", options.nodeagent_socket_dir}, {"type", "Directory"}}}},
      {{"name", "token"},
       {"projected",
        {{"sources",
          Json::array(
              {{{"serviceAccountToken", {{"path", "token"}, {"expirationSeconds", 3600}}}},
               {{"configMap",
                 {{"name", "kube-root-ca.crt"},
                  {"items", Json::array({{{"key", "ca.crt"}, {"path", "ca.crt"}}})}}}}})}}}},
  });
  for (const std::string& secret : HeaderSecrets(agent)) {
    volumes.push_back({{"name", "secret-" + secret}, {"secret", {{"secretName", secret}}}});
    volume_mounts.push_back({{"name", "secret-" + secret},
                             {"mountPath", std::string(kSecretsDir) + "/" + secret},
                             {"readOnly", true}});
  }
  Json runtime = {
      {"name", "runtime"},
      {"image", options.image},
      {"imagePullPolicy", options.image_pull_policy},
      {"args",
       Json::array({"runtime", "-c", std::string(kConfigDir) + "/agent.yaml", "--host", "0.0.0.0",
                    "--port", std::to_string(kRuntimePort), "--state-socket", state_socket,
                    "--node-socket", "/var/run/agentry/nodeagent.sock", "--auth", "token-review",
                    "--api-server", "https://kubernetes.default.svc", "--admin-group",
                    options.admin_group, "--secrets-dir", kSecretsDir, "--service-account-token",
                    std::string(kTokenDir) + "/token", "--api-ca",
                    std::string(kTokenDir) + "/ca.crt",
                    // Usage and budget go to status.runtimes under this pod's name.
                    "--report-status-as", "$(POD_NAME)"})},
      {"env", Json::array({{{"name", "POD_NAME"},
                            {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}})},
      {"ports", Json::array({{{"name", "http"}, {"containerPort", kRuntimePort}}})},
      {"readinessProbe", {{"httpGet", {{"path", "/readyz"}, {"port", "http"}}}}},
      {"livenessProbe",
       {{"httpGet", {{"path", "/healthz"}, {"port", "http"}}}, {"failureThreshold", 6}}},
      {"volumeMounts", volume_mounts},
      {"securityContext", ContainerSecurity()},
  };
  Json pod_spec = {
      {"serviceAccountName", ServiceAccountName(agent)},
      {"automountServiceAccountToken", false},  // the projected token above, nothing more
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", kNonRootUid},
        {"runAsGroup", kNonRootUid},
        {"fsGroup", kNonRootUid},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"initContainers",
       Json::array({{
           {"name", "state"},
           {"image", options.image},
           {"imagePullPolicy", options.image_pull_policy},
           // A native sidecar: started before the runtime, stopped after it.
           {"restartPolicy", "Always"},
           {"args",
            Json::array({"state", "--dir", kStateDir, "--socket", state_socket, "--metrics-host",
                         "0.0.0.0", "--metrics-port", std::to_string(kStateMetricsPort)})},
           {"ports",
            Json::array({{{"name", "state-metrics"}, {"containerPort", kStateMetricsPort}}})},
           {"volumeMounts",
            Json::array({{{"name", "state"}, {"mountPath", kStateDir}},
                         {{"name", "state-socket"}, {"mountPath", kStateSocketDir}}})},
           {"securityContext", ContainerSecurity()},
       }})},
      {"containers", Json::array({runtime})},
      {"volumes", volumes},
  };
  const std::string& type = spec.accelerator.type;
  if (type != config::kAcceleratorCpu) {
    pod_spec["containers"][0]["resources"] = {
        {"limits", {{type, std::to_string(spec.accelerator.count)}}}};
    pod_spec["tolerations"] =
        Json::array({{{"key", type}, {"operator", "Exists"}, {"effect", "NoSchedule"}}});
  }
  Json claim_spec = {{"accessModes", Json::array({"ReadWriteOnce"})},
                     {"resources", {{"requests", {{"storage", spec.memory.size.text}}}}}};
  if (!spec.memory.storage_class_name.empty()) {
    claim_spec["storageClassName"] = spec.memory.storage_class_name;
  }
  Json template_labels = Labels(name);
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "StatefulSet"},
      {"metadata", Metadata(object, name)},
      {"spec",
       {{"replicas", spec.suspend ? 0 : spec.replicas},
        {"serviceName", name},
        {"podManagementPolicy", "Parallel"},
        {"selector", {{"matchLabels", SelectorLabels(name)}}},
        // Deleting the agent or scaling it down never deletes a state volume.
        {"persistentVolumeClaimRetentionPolicy",
         {{"whenDeleted", "Retain"}, {"whenScaled", "Retain"}}},
        {"template",
         {{"metadata",
           {{"labels", template_labels},
            {"annotations", {{"agentry.dev/config-hash", ConfigHash(object)}}}}},
          {"spec", pod_spec}}},
        {"volumeClaimTemplates",
         Json::array({{{"apiVersion", "v1"},
                       {"kind", "PersistentVolumeClaim"},
                       {"metadata", {{"name", "state"}, {"labels", Labels(name)}}},
                       {"spec", claim_spec}}})}}},
  };
}

bool IsIpLiteral(const std::string& host) {
  if (host.find(':') != std::string::npos) return true;  // IPv6
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

// The namespace of an in-cluster Service name ("tickets.team-a.svc", with or without
// ".cluster.local"), or "".
std::string ServiceNamespace(const std::string& host) {
  std::string h = host;
  const std::string local = ".cluster.local";
  if (h.size() > local.size() && h.compare(h.size() - local.size(), local.size(), local) == 0) {
    h.resize(h.size() - local.size());
  }
  if (h.size() < 5 || h.compare(h.size() - 4, 4, ".svc") != 0) return "";
  h.resize(h.size() - 4);
  const size_t dot = h.rfind('.');
  if (dot == std::string::npos || dot == 0) return "";
  return h.substr(dot + 1);
}

Json Ports(const std::vector<int64_t>& ports, const char* protocol = "TCP") {
  Json out = Json::array();
  for (int64_t p : ports) out.push_back({{"protocol", protocol}, {"port", p}});
  return out;
}

Json NetworkPolicy(const Json& object, const config::ManagedAgent& agent) {
  const std::string& name = agent.metadata.name;
  Json egress = Json::array({
      // DNS, to the cluster's resolver.
      {{"to", Json::array({{{"namespaceSelector", Json::object()},
                            {"podSelector", {{"matchLabels", {{"k8s-app", "kube-dns"}}}}}}})},
       {"ports",
        Json::array({{{"protocol", "UDP"}, {"port", 53}}, {{"protocol", "TCP"}, {"port", 53}}})}},
      // The API server (TokenReview): it is no pod a selector can name, so its ports.
      {{"ports", Ports({443, 6443})}},
  });
  for (const config::EgressRule& rule : agent.spec.egress_allow) {
    Json peer;
    if (IsIpLiteral(rule.host)) {
      const bool v6 = rule.host.find(':') != std::string::npos;
      peer = {{"ipBlock", {{"cidr", rule.host + (v6 ? "/128" : "/32")}}}};
    } else if (const std::string ns = ServiceNamespace(rule.host); !ns.empty()) {
      peer = {{"namespaceSelector", {{"matchLabels", {{"kubernetes.io/metadata.name", ns}}}}}};
    } else {
      // A name outside the cluster resolves to addresses a policy cannot know: it allows the
      // rule's ports outside the cluster's private ranges, and the runtime checks the name.
      peer = {{"ipBlock",
               {{"cidr", "0.0.0.0/0"},
                {"except", Json::array({"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"})}}}};
    }
    Json r = {{"to", Json::array({peer})}};
    if (!rule.ports.empty()) r["ports"] = Ports(rule.ports);
    egress.push_back(std::move(r));
  }
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata", Metadata(object, name)},
          {"spec",
           {{"podSelector", {{"matchLabels", SelectorLabels(name)}}},
            {"policyTypes", Json::array({"Egress"})},
            {"egress", egress}}}};
}

}  // namespace

Json SelectorLabels(const std::string& agent_name) {
  return {{"app.kubernetes.io/name", "agentry-agent"}, {"app.kubernetes.io/instance", agent_name}};
}

StatusOr<config::ManagedAgent> DecodeAgent(const Json& object) {
  // JSON is YAML: the decoder that reads manifests reads the API server's object too.
  const std::string name = object.contains("metadata") && object["metadata"].is_object()
                               ? object["metadata"].value("name", "?")
                               : "?";
  return config::ParseManagedAgent(RuntimeConfig(object).dump(), "ManagedAgent " + name);
}

std::vector<RenderedObject> RenderOwnedObjects(const Json& object,
                                               const config::ManagedAgent& agent,
                                               const RenderOptions& options) {
  const std::string& name = agent.metadata.name;
  std::vector<RenderedObject> out;
  if (agent.spec.identity.service_account_name.empty()) {
    out.push_back({&kube::kServiceAccounts,
                   {{"apiVersion", "v1"},
                    {"kind", "ServiceAccount"},
                    {"metadata", Metadata(object, name)},
                    {"automountServiceAccountToken", false}}});
  }
  // What the runtime pods may do with the API: report on this agent's status, nothing more.
  const std::string runtime_role = name + "-runtime";
  out.push_back({&kube::kRoles,
                 {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                  {"kind", "Role"},
                  {"metadata", Metadata(object, runtime_role)},
                  {"rules", Json::array({{{"apiGroups", Json::array({"agentry.dev"})},
                                          {"resources", Json::array({"managedagents/status"})},
                                          {"resourceNames", Json::array({name})},
                                          {"verbs", Json::array({"get", "patch"})}}})}}});
  out.push_back(
      {&kube::kRoleBindings,
       {{"apiVersion", "rbac.authorization.k8s.io/v1"},
        {"kind", "RoleBinding"},
        {"metadata", Metadata(object, runtime_role)},
        {"roleRef",
         {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", runtime_role}}},
        {"subjects", Json::array({{{"kind", "ServiceAccount"},
                                   {"name", ServiceAccountName(agent)},
                                   {"namespace", agent.metadata.namespace_name}}})}}});
  out.push_back({&kube::kConfigMaps,
                 {{"apiVersion", "v1"},
                  {"kind", "ConfigMap"},
                  {"metadata", Metadata(object, name + "-config")},
                  {"data", {{"agent.yaml", RuntimeConfig(object).dump(2) + "\n"}}}}});
  out.push_back({&kube::kStatefulSets, StatefulSet(object, agent, options)});
  out.push_back({&kube::kServices,
                 {{"apiVersion", "v1"},
                  {"kind", "Service"},
                  {"metadata", Metadata(object, name)},
                  {"spec",
                   {{"selector", SelectorLabels(name)},
                    {"ports", Json::array({{{"name", "http"},
                                            {"port", 80},
                                            {"targetPort", "http"},
                                            {"protocol", "TCP"}}})}}}}});
  out.push_back({&kube::kNetworkPolicies, NetworkPolicy(object, agent)});
  if (agent.spec.replicas > 1) {
    out.push_back(
        {&kube::kPodDisruptionBudgets,
         {{"apiVersion", "policy/v1"},
          {"kind", "PodDisruptionBudget"},
          {"metadata", Metadata(object, name)},
          {"spec",
           {{"maxUnavailable", 1}, {"selector", {{"matchLabels", SelectorLabels(name)}}}}}}});
  }
  return out;
}

}  // namespace agentry::operator_
