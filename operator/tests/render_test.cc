// What one ManagedAgent renders into: the owned objects, their ownership and labels, the
// pod's shape, the network policy's peers, and that rendering is a pure function.
#include "operator/render.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/config/decoder.h"

namespace agentry::operator_ {
namespace {

// examples/triage-agent.yaml as the API server returns it: with a uid and the defaults.
Json Triage() {
  Json object = Json::parse(R"({
    "apiVersion": "agentry.dev/v1alpha1", "kind": "ManagedAgent",
    "metadata": {"name": "triage", "namespace": "team-a", "uid": "u-123", "generation": 3,
                 "resourceVersion": "99", "labels": {"team": "support"}},
    "spec": {
      "model": {"name": "smollm2", "source": {"pvc": "models", "path": "m.gguf"},
                "contextLength": 4096},
      "accelerator": {"type": "cpu", "count": 1},
      "instructions": "You triage support tickets.",
      "tools": [
        {"name": "get_ticket", "parameters": {"type": "object"},
         "http": {"url": "http://tickets.team-a.svc/api/tickets/{id}", "method": "GET",
                  "headers": [{"name": "Authorization",
                               "valueFrom": {"secretKeyRef": {"name": "tickets-token",
                                                              "key": "token"}}}]}},
        {"name": "jira", "mcp": {"url": "http://jira-mcp.tools.svc.cluster.local/mcp"},
         "requiresApproval": true}],
      "egress": {"allow": [{"host": "tickets.team-a.svc", "ports": [80]},
                           {"host": "jira-mcp.tools.svc.cluster.local", "ports": [80]},
                           {"host": "api.example.com", "ports": [443]},
                           {"host": "10.1.2.3"}]},
      "memory": {"size": "2Gi", "storageClassName": "fast"},
      "replicas": 2}})");
  return object;
}

std::map<std::string, Json> Render(const Json& object, const RenderOptions& options = {}) {
  StatusOr<config::ManagedAgent> agent = DecodeAgent(object);
  EXPECT_TRUE(agent.ok()) << agent.status().message();
  std::map<std::string, Json> out;
  for (const RenderedObject& r : RenderOwnedObjects(object, *agent, options)) {
    EXPECT_EQ(r.object["kind"], std::string(r.resource->kind));
    EXPECT_EQ(r.object["apiVersion"], r.resource->ApiVersion());
    out[r.object["kind"].get<std::string>()] = r.object;
  }
  return out;
}

TEST(RenderTest, EveryOwnedObjectIsOwnedAndLabelled) {
  const std::map<std::string, Json> objects = Render(Triage());
  std::vector<std::string> kinds;
  for (const auto& [kind, object] : objects) {
    kinds.push_back(kind);
    const Json& meta = object["metadata"];
    EXPECT_EQ(meta["namespace"], "team-a") << kind;
    ASSERT_EQ(meta["ownerReferences"].size(), 1u) << kind;
    const Json& owner = meta["ownerReferences"][0];
    EXPECT_EQ(owner["kind"], "ManagedAgent");
    EXPECT_EQ(owner["name"], "triage");
    EXPECT_EQ(owner["uid"], "u-123");
    EXPECT_EQ(owner["controller"], true);
    EXPECT_EQ(meta["labels"]["app.kubernetes.io/instance"], "triage") << kind;
    EXPECT_EQ(meta["labels"]["app.kubernetes.io/managed-by"], "agentry-operator") << kind;
  }
  EXPECT_EQ(kinds,
            (std::vector<std::string>{"ConfigMap", "NetworkPolicy", "PodDisruptionBudget", "Role",
                                      "RoleBinding", "Service", "ServiceAccount", "StatefulSet"}));
  EXPECT_EQ(objects.at("ConfigMap")["metadata"]["name"], "triage-config");
}

TEST(RenderTest, TheConfigMapHoldsTheAgentTheRuntimeReads) {
  const Json config = Render(Triage()).at("ConfigMap");
  const std::string text = config["data"]["agent.yaml"];
  StatusOr<config::ManagedAgent> agent = config::ParseManagedAgent(text, "agent.yaml");
  ASSERT_TRUE(agent.ok()) << agent.status().message();
  EXPECT_EQ(agent->metadata.name, "triage");
  EXPECT_EQ(agent->metadata.namespace_name, "team-a");
  EXPECT_EQ(agent->spec.tools.size(), 2u);
  EXPECT_EQ(text.find("resourceVersion"), std::string::npos);  // no API bookkeeping
}

TEST(RenderTest, TheStatefulSetRunsTheRuntimeWithItsStateSidecar) {
  const Json sts = Render(Triage()).at("StatefulSet");
  const Json& spec = sts["spec"];
  EXPECT_EQ(spec["replicas"], 2);
  EXPECT_EQ(spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"], "Retain");
  EXPECT_EQ(spec["selector"]["matchLabels"], SelectorLabels("triage"));
  const Json& claim = spec["volumeClaimTemplates"][0];
  EXPECT_EQ(claim["metadata"]["name"], "state");
  EXPECT_EQ(claim["spec"]["resources"]["requests"]["storage"], "2Gi");
  EXPECT_EQ(claim["spec"]["storageClassName"], "fast");
  const Json& pod = spec["template"]["spec"];
  EXPECT_EQ(pod["serviceAccountName"], "triage");
  EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true);
  const Json& state = pod["initContainers"][0];
  EXPECT_EQ(state["name"], "state");
  EXPECT_EQ(state["restartPolicy"], "Always");  // a native sidecar
  const Json& runtime = pod["containers"][0];
  EXPECT_EQ(runtime["args"][0], "runtime");
  EXPECT_EQ(runtime["securityContext"]["readOnlyRootFilesystem"], true);
  std::map<std::string, std::string> mounts;
  for (const Json& m : runtime["volumeMounts"]) mounts[m["name"]] = m["mountPath"];
  EXPECT_EQ(mounts["config"], "/etc/agentry");
  EXPECT_EQ(mounts["nodeagent"], "/var/run/agentry");
  EXPECT_EQ(mounts["secret-tickets-token"], "/var/run/agentry/secrets/tickets-token");
  bool host_path = false;
  for (const Json& v : pod["volumes"]) {
    if (v["name"] == "nodeagent") host_path = v["hostPath"]["path"] == "/var/run/agentry";
  }
  EXPECT_TRUE(host_path);
  EXPECT_FALSE(runtime.contains("resources"));  // cpu: nothing to request
  // The runtime reports on the agent's status as its pod, trusting the projected CA.
  const std::vector<std::string> args = runtime["args"];
  const auto after = [&](const std::string& flag) {
    const auto it = std::find(args.begin(), args.end(), flag);
    return it == args.end() || it + 1 == args.end() ? std::string("(absent)") : *(it + 1);
  };
  EXPECT_EQ(after("--report-status-as"), "$(POD_NAME)");
  EXPECT_EQ(after("--api-ca"), "/var/run/secrets/agentry/ca.crt");
  EXPECT_EQ(runtime["env"][0]["name"], "POD_NAME");
  EXPECT_EQ(runtime["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
}

// The runtime pods may report on their own agent's status and do nothing else with the API.
TEST(RenderTest, TheRuntimesMayPatchOnlyTheirOwnAgentsStatus) {
  for (const std::string& account : {std::string(), std::string("triage-bot")}) {
    Json agent = Triage();
    if (!account.empty()) agent["spec"]["identity"] = {{"serviceAccountName", account}};
    const std::map<std::string, Json> objects = Render(agent);
    const Json& role = objects.at("Role");
    EXPECT_EQ(role["metadata"]["name"], "triage-runtime");
    EXPECT_EQ(role["rules"], Json::parse(R"([{"apiGroups": ["agentry.dev"],
        "resources": ["managedagents/status"], "resourceNames": ["triage"],
        "verbs": ["get", "patch"]}])"));
    const Json& binding = objects.at("RoleBinding");
    EXPECT_EQ(binding["roleRef"]["kind"], "Role");
    EXPECT_EQ(binding["roleRef"]["name"], "triage-runtime");
    const std::string subject = account.empty() ? "triage" : account;
    EXPECT_EQ(binding["subjects"], Json::parse(R"([{"kind": "ServiceAccount", "name": ")" +
                                               subject + R"(", "namespace": "team-a"}])"));
    EXPECT_EQ(objects.at("StatefulSet")["spec"]["template"]["spec"]["serviceAccountName"], subject);
  }
}

TEST(RenderTest, AcceleratorsSuspendAndANamedServiceAccountShapeThePod) {
  Json agent = Triage();
  agent["spec"]["accelerator"] = {{"type", "nvidia.com/gpu"}, {"count", 2}};
  agent["spec"]["suspend"] = true;
  agent["spec"]["identity"] = {{"serviceAccountName", "triage-bot"}};
  agent["spec"]["replicas"] = 1;
  const std::map<std::string, Json> objects = Render(agent);
  const Json& sts = objects.at("StatefulSet");
  EXPECT_EQ(sts["spec"]["replicas"], 0);  // suspended
  const Json& pod = sts["spec"]["template"]["spec"];
  EXPECT_EQ(pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], "2");
  EXPECT_EQ(pod["tolerations"][0]["key"], "nvidia.com/gpu");
  EXPECT_EQ(pod["serviceAccountName"], "triage-bot");
  EXPECT_EQ(objects.count("ServiceAccount"), 0u);
  EXPECT_EQ(objects.count("PodDisruptionBudget"), 0u);  // one replica
}

// Suspending follows the mounted config at once; it must not roll the pods. A spec change
// that the runtime reads only at start must.
TEST(RenderTest, OnlyAChangeTheRuntimeCannotFollowRollsThePods) {
  const auto hash = [](const Json& agent) {
    return Render(agent).at(
        "StatefulSet")["spec"]["template"]["metadata"]["annotations"]["agentry.dev/config-hash"];
  };
  Json agent = Triage();
  const Json before = hash(agent);
  agent["spec"]["suspend"] = true;
  agent["spec"]["replicas"] = 5;
  EXPECT_EQ(hash(agent), before);
  agent["spec"]["instructions"] = "Something else.";
  EXPECT_NE(hash(agent), before);
}

TEST(RenderTest, TheNetworkPolicyAllowsDnsTheApiServerAndTheDeclaredHostsOnly) {
  const Json policy = Render(Triage()).at("NetworkPolicy");
  EXPECT_EQ(policy["spec"]["policyTypes"], Json::array({"Egress"}));
  const Json& egress = policy["spec"]["egress"];
  ASSERT_EQ(egress.size(), 6u);  // DNS, the API server, four declared hosts
  EXPECT_EQ(egress[0]["ports"][0]["port"], 53);
  EXPECT_EQ(egress[2]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "team-a");
  EXPECT_EQ(egress[2]["ports"][0]["port"], 80);
  EXPECT_EQ(egress[3]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "tools");
  EXPECT_EQ(egress[4]["to"][0]["ipBlock"]["cidr"], "0.0.0.0/0");  // api.example.com
  EXPECT_EQ(egress[4]["ports"][0]["port"], 443);
  EXPECT_EQ(egress[5]["to"][0]["ipBlock"]["cidr"], "10.1.2.3/32");
  EXPECT_FALSE(egress[5].contains("ports"));  // every port of that address
}

TEST(RenderTest, RenderingIsAPureFunctionOfTheAgent) {
  Json agent = Triage();
  const std::map<std::string, Json> first = Render(agent);
  agent["metadata"]["resourceVersion"] = "100";  // the API server's bookkeeping moved on
  agent["status"] = {{"readyReplicas", 2}};
  const std::map<std::string, Json> second = Render(agent);
  for (const auto& [kind, object] : first) EXPECT_EQ(object.dump(), second.at(kind).dump()) << kind;
}

TEST(RenderTest, ExampleManifestsRender) {
  for (const char* file : {"/examples/triage-agent.yaml"}) {
    std::ifstream in(std::string(AGENTRY_SOURCE_DIR) + file);
    std::stringstream text;
    text << in.rdbuf();
    StatusOr<config::ManagedAgent> agent = config::ParseManagedAgent(text.str(), file);
    ASSERT_TRUE(agent.ok()) << agent.status().message();
    // The YAML as JSON, as the API server would return it.
    config::Errors errors;
    Json object;
    ASSERT_TRUE(config::DecodeValue(YAML::Load(text.str()), "", &errors, &object))
        << errors.ToStatus().message();
    EXPECT_GE(RenderOwnedObjects(object, *agent, {}).size(), 5u) << file;
  }
}

}  // namespace
}  // namespace agentry::operator_
