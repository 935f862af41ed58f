// The Helm chart (charts/agentry), rendered by the real helm for several value sets: helm
// lint; the shape of each object; the operator's RBAC against what the operator renders; the
// security context of every container; the GPU and Neuron pools; monitoring; values the
// schema refuses, naming the field; the chart's CRD; and the GitOps example's overlay.
//
// helm and kubectl come from scripts/kubetools-install (the ctest fixture before these
// tests); without them every test skips and says so.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crds/tests/openapi_schema.h"
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/config/agent_spec.h"
#include "common/config/decoder.h"
#include "common/testing/run_command.h"
#include "operator/render.h"

namespace agentry {
namespace {

using Json = nlohmann::json;
using testing::CommandOutput;
using testing::RunCommand;
namespace fs = std::filesystem;

// Paths built once at start; an allocation failure there just fails the test binary.
// NOLINTBEGIN(cert-err58-cpp)
const std::string kSource = AGENTRY_SOURCE_DIR;
const std::string kChart = kSource + "/charts/agentry";
// NOLINTEND(cert-err58-cpp)

std::string Tool(const std::string& name) {
  const char* cache = std::getenv("AGENTRY_CACHE");
  const char* home = std::getenv("HOME");
  const std::string dir = cache != nullptr && *cache != '\0' ? cache
                          : home != nullptr                  ? std::string(home) + "/.cache/agentry"
                                                             : std::string("/nonexistent");
  return dir + "/kubetools/" + name;
}

Json ToJson(const YAML::Node& node) {
  config::Errors errors;
  Json out;
  if (!config::DecodeValue(node, "", &errors, &out)) ADD_FAILURE() << errors.ToStatus().message();
  return out;
}

// The objects of a multi-document YAML stream, by "Kind/name".
std::map<std::string, Json> Objects(const std::string& yaml) {
  std::map<std::string, Json> out;
  for (const YAML::Node& doc : YAML::LoadAll(yaml)) {
    if (!doc.IsMap()) continue;
    Json object = ToJson(doc);
    const std::string key = object.value("kind", "?") + "/" + object["metadata"].value("name", "?");
    EXPECT_EQ(out.count(key), 0u) << "rendered twice: " << key;
    out[key] = std::move(object);
  }
  return out;
}

class ChartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Tool("helm"))) {
      GTEST_SKIP() << Tool("helm") << " is missing (scripts/kubetools-install installs it from "
                   << "npm); the chart tests are skipped";
    }
  }

  // `helm template` with `values` (YAML) on top of the defaults.
  CommandOutput Template(const std::string& values, const std::string& extra = "") {
    const std::string file = ::testing::TempDir() + "/values-" +
                             std::to_string(std::hash<std::string>()(values)) + ".yaml";
    std::ofstream(file) << values;
    return RunCommand(Tool("helm") + " template agentry " + kChart +
                      " --namespace agentry-system -f " + file + " " + extra);
  }
  std::map<std::string, Json> Render(const std::string& values = "") {
    const CommandOutput out = Template(values);
    EXPECT_EQ(out.code, 0) << out.text;
    return Objects(out.text);
  }
};

// The pod templates of the workloads in `objects`, by "Kind/name".
std::map<std::string, Json> PodTemplates(const std::map<std::string, Json>& objects) {
  std::map<std::string, Json> out;
  for (const auto& [key, object] : objects) {
    const std::string kind = object.value("kind", "");
    if (kind == "Deployment" || kind == "DaemonSet" || kind == "StatefulSet") {
      out[key] = object["spec"]["template"];
    }
  }
  return out;
}

const Json* Container(const Json& pod_spec, const std::string& name) {
  for (const char* list : {"containers", "initContainers"}) {
    if (!pod_spec.contains(list)) continue;
    for (const Json& c : pod_spec[list]) {  // not a copy: the pointer outlives the loop
      if (c.value("name", "") == name) return &c;
    }
  }
  return nullptr;
}

std::vector<std::string> Args(const Json& container) {
  return container.value("args", std::vector<std::string>());
}

bool HasArg(const Json& container, const std::string& arg) {
  const std::vector<std::string> args = Args(container);
  return std::find(args.begin(), args.end(), arg) != args.end();
}

TEST_F(ChartTest, HelmLintPassesStrict) {
  const CommandOutput out = RunCommand(Tool("helm") + " lint --strict " + kChart);
  EXPECT_EQ(out.code, 0) << out.text;
  EXPECT_NE(out.text.find("0 chart(s) failed"), std::string::npos) << out.text;
}

// What an API server would refuse for its shape: selectors that miss their pods, probes and
// mounts that name nothing, bindings to roles or accounts that do not exist.
TEST_F(ChartTest, EveryRenderedObjectIsWellFormed) {
  const std::map<std::string, Json> objects = Render();
  ASSERT_FALSE(objects.empty());
  std::set<std::string> kinds;
  for (const auto& [key, object] : objects) {
    kinds.insert(object["kind"].get<std::string>());
    EXPECT_TRUE(object.contains("apiVersion")) << key;
    const Json& meta = object["metadata"];
    EXPECT_EQ(meta["labels"]["app.kubernetes.io/part-of"], "agentry") << key;
    const std::string kind = object["kind"];
    const bool cluster_scoped =
        kind == "ClusterRole" || kind == "ClusterRoleBinding" || kind == "PriorityClass";
    EXPECT_EQ(meta.contains("namespace"), !cluster_scoped) << key;
    if (kind == "ClusterRoleBinding" || kind == "RoleBinding") {
      const Json& ref = object["roleRef"];
      const bool builtin = ref["name"].get<std::string>().rfind("system:", 0) == 0;
      EXPECT_TRUE(builtin || objects.count(ref["kind"].get<std::string>() + "/" +
                                           ref["name"].get<std::string>()) != 0)
          << key << " binds a role the chart does not render";
      for (const Json& s : object["subjects"]) {
        if (s["kind"] != "ServiceAccount") continue;
        EXPECT_EQ(objects.count("ServiceAccount/" + s["name"].get<std::string>()), 1u) << key;
      }
    }
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"ClusterRole", "ClusterRoleBinding", "DaemonSet",
                                          "Deployment", "PriorityClass", "Role", "RoleBinding",
                                          "Service", "ServiceAccount"}));
  for (const auto& [key, object] : objects) {
    if (object["kind"] != "Deployment" && object["kind"] != "DaemonSet") continue;
    const Json& labels = object["spec"]["template"]["metadata"]["labels"];
    for (const auto& [k, v] : object["spec"]["selector"]["matchLabels"].items()) {
      EXPECT_EQ(labels.value(k, ""), v) << key << ": the selector misses its pods at " << k;
    }
    const Json& pod = object["spec"]["template"]["spec"];
    std::set<std::string> volumes;
    for (const Json& v : pod.value("volumes", Json::array())) volumes.insert(v["name"]);
    for (const char* list : {"containers", "initContainers"}) {
      for (const Json& c : pod.value(list, Json::array())) {
        const std::string image = c["image"];
        EXPECT_NE(image.find(":0.1.0"), std::string::npos) << key << ": " << image;
        std::set<std::string> ports;
        for (const Json& p : c.value("ports", Json::array())) ports.insert(p["name"]);
        for (const char* probe : {"readinessProbe", "livenessProbe"}) {
          if (!c.contains(probe)) continue;
          EXPECT_EQ(ports.count(c[probe]["httpGet"]["port"].get<std::string>()), 1u)
              << key << " " << probe;
        }
        for (const Json& m : c.value("volumeMounts", Json::array())) {
          EXPECT_EQ(volumes.count(m["name"].get<std::string>()), 1u) << key << " " << m.dump();
        }
      }
    }
  }
  // The Service reaches the operator's metrics port.
  const Json& service = objects.at("Service/agentry-operator");
  EXPECT_EQ(service["spec"]["ports"][0]["targetPort"], "metrics");
}

// The operator's role holds what the operator does, taken from its own render of an agent,
// and nothing more: no wildcard, no listing of Secrets.
TEST_F(ChartTest, TheOperatorMayDoExactlyWhatItReconciles) {
  const std::map<std::string, Json> objects = Render();
  const Json& role = objects.at("ClusterRole/agentry-operator");
  std::map<std::string, std::set<std::string>> allowed;  // "group/resource" -> verbs
  for (const Json& rule : role["rules"]) {
    for (const Json& group : rule["apiGroups"]) {
      for (const Json& resource : rule["resources"]) {
        for (const Json& verb : rule["verbs"]) {
          EXPECT_NE(verb, "*");
          allowed[group.get<std::string>() + "/" + resource.get<std::string>()].insert(verb);
        }
      }
    }
  }
  std::map<std::string, std::set<std::string>> needed = {
      {"agentry.dev/managedagents", {"get", "list", "watch"}},
      {"agentry.dev/managedagents/status", {"get", "patch"}},
      {"/persistentvolumeclaims", {"get", "list", "watch"}},
      {"/secrets", {"get"}},
      {"events.k8s.io/events", {"create", "patch"}},
  };
  // Every kind the operator renders for an agent with every optional object.
  YAML::Node manifest = YAML::LoadFile(kSource + "/examples/triage-agent.yaml");
  manifest["spec"]["replicas"] = 2;  // a PodDisruptionBudget too
  Json agent = ToJson(manifest);
  agent["metadata"]["uid"] = "u-1";
  StatusOr<config::ManagedAgent> decoded = operator_::DecodeAgent(agent);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  for (const operator_::RenderedObject& r : operator_::RenderOwnedObjects(agent, *decoded, {})) {
    needed[std::string(r.resource->group) + "/" + std::string(r.resource->plural)] = {
        "get", "list", "watch", "create", "patch", "delete"};
  }
  EXPECT_EQ(allowed, needed);
  // Leader election: the Lease in the release's namespace only.
  const Json& lease = objects.at("Role/agentry-operator-leader-election");
  EXPECT_EQ(lease["metadata"]["namespace"], "agentry-system");
  EXPECT_EQ(lease["rules"], Json::parse(R"([{"apiGroups": ["coordination.k8s.io"],
      "resources": ["leases"], "verbs": ["get", "create", "update"]}])"));
  // The runtimes: TokenReview, nothing else.
  EXPECT_EQ(objects.at("ClusterRole/agentry-runtime-tokenreview")["rules"],
            Json::parse(R"([{"apiGroups": ["authentication.k8s.io"],
                "resources": ["tokenreviews"], "verbs": ["create"]}])"));
  EXPECT_EQ(objects.at("ClusterRoleBinding/agentry-runtime-tokenreview")["subjects"][0]["name"],
            "system:serviceaccounts");
  // The node daemon needs no API access at all.
  const Json& daemon = objects.at("DaemonSet/agentry-nodeagent-cpu");
  EXPECT_EQ(daemon["spec"]["template"]["spec"]["automountServiceAccountToken"], false);
}

TEST_F(ChartTest, ANamespacedInstallGetsRolesNotClusterRoles) {
  const std::map<std::string, Json> objects =
      Render("operator: {watchNamespace: team-a}\nagent: {tokenReviewNamespaces: [team-a]}\n");
  EXPECT_EQ(objects.count("ClusterRole/agentry-operator"), 0u);
  ASSERT_EQ(objects.count("Role/agentry-operator"), 1u);
  EXPECT_EQ(objects.at("Role/agentry-operator")["metadata"]["namespace"], "team-a");
  EXPECT_EQ(objects.at("RoleBinding/agentry-operator")["roleRef"]["kind"], "Role");
  const Json& operator_pod = objects.at("Deployment/agentry-operator")["spec"]["template"]["spec"];
  EXPECT_TRUE(HasArg(*Container(operator_pod, "operator"), "--namespace=team-a"));
  EXPECT_TRUE(HasArg(*Container(operator_pod, "operator"), "--lease-namespace=agentry-system"));
  EXPECT_EQ(objects.at("ClusterRoleBinding/agentry-runtime-tokenreview")["subjects"][0]["name"],
            "system:serviceaccounts:team-a");
}

// Non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp:
// for every container of every value set. The one exception, said here: the init container
// that hands the node's socket directory to the non-root user runs as root with CHOWN only.
TEST_F(ChartTest, EveryContainerRunsNonRootWithAReadOnlyRoot) {
  const std::string all_pools =
      "nodeagent: {pools: {gpu: {enabled: true}, neuron: {enabled: true}}}\n";
  int containers = 0;
  for (const std::string& values : {std::string(), all_pools}) {
    for (const auto& [key, pod_template] : PodTemplates(Render(values))) {
      const Json& pod = pod_template["spec"];
      EXPECT_EQ(pod["securityContext"]["runAsNonRoot"], true) << key;
      EXPECT_EQ(pod["securityContext"]["runAsUser"], 65532) << key;
      EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault") << key;
      EXPECT_FALSE(pod.value("hostNetwork", false)) << key;
      for (const char* list : {"containers", "initContainers"}) {
        for (const Json& c : pod.value(list, Json::array())) {
          ++containers;
          const Json& sc = c["securityContext"];
          const std::string where = key + " " + c["name"].get<std::string>();
          EXPECT_EQ(sc["readOnlyRootFilesystem"], true) << where;
          EXPECT_EQ(sc["allowPrivilegeEscalation"], false) << where;
          EXPECT_EQ(sc["capabilities"]["drop"], Json::array({"ALL"})) << where;
          EXPECT_FALSE(sc.value("privileged", false)) << where;
          if (c["name"] == "socket-dir") {
            EXPECT_EQ(sc["runAsUser"], 0) << where;
            EXPECT_EQ(sc["capabilities"]["add"], Json::array({"CHOWN"})) << where;
            EXPECT_EQ(c["command"], Json::parse(R"(["chown", "65532:65532", "/socket"])"));
          } else {
            EXPECT_FALSE(sc.contains("runAsUser")) << where << ": runs as the pod's user";
            EXPECT_FALSE(sc["capabilities"].contains("add")) << where;
          }
        }
      }
    }
  }
  EXPECT_GE(containers, 7);  // operator, and 3 pools x (daemon + init)
}

TEST_F(ChartTest, GpuAndNeuronNodesGetDaemonSetsOfTheirOwn) {
  const std::map<std::string, Json> objects = Render(R"(
nodeagent:
  models:
    - {name: smollm2, path: /models/smollm2.gguf}
    - {name: qwen, path: /models/qwen.gguf, template: chatml}
  pools: {gpu: {enabled: true}, neuron: {enabled: true}}
)");
  const Json& cpu = objects.at("DaemonSet/agentry-nodeagent-cpu")["spec"]["template"]["spec"];
  const Json& gpu = objects.at("DaemonSet/agentry-nodeagent-gpu")["spec"]["template"]["spec"];
  const Json& neuron = objects.at("DaemonSet/agentry-nodeagent-neuron")["spec"]["template"]["spec"];
  // The CPU pool keeps off the accelerator nodes.
  std::set<std::string> away;
  for (const Json& e :
       cpu["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
          ["nodeSelectorTerms"][0]["matchExpressions"]) {
    EXPECT_EQ(e["operator"], "DoesNotExist");
    away.insert(e["key"]);
  }
  EXPECT_EQ(away,
            (std::set<std::string>{"aws.amazon.com/neuron.present", "nvidia.com/gpu.present"}));
  // The GPU pool: on GPU nodes, through the NVIDIA runtime, every GPU, none from the plugin.
  EXPECT_EQ(gpu["runtimeClassName"], "nvidia");
  EXPECT_EQ(gpu["nodeSelector"]["nvidia.com/gpu.present"], "true");
  EXPECT_EQ(gpu["tolerations"][0]["key"], "nvidia.com/gpu");
  const Json& gpu_daemon = *Container(gpu, "nodeagent");
  EXPECT_EQ(gpu_daemon["env"][0],
            Json::parse(R"({"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"})"));
  EXPECT_FALSE(gpu_daemon["resources"]["limits"].contains("nvidia.com/gpu"));
  // The Neuron pool: its devices through the device plugin.
  EXPECT_EQ(Container(neuron, "nodeagent")->at("resources")["limits"]["aws.amazon.com/neuron"], 1);
  EXPECT_EQ(neuron["tolerations"][0]["key"], "aws.amazon.com/neuron");
  // Every pool serves the models, from /models, and shares the socket with the agents.
  for (const Json* pod : {&cpu, &gpu, &neuron}) {
    const Json& daemon = *Container(*pod, "nodeagent");
    EXPECT_TRUE(HasArg(daemon, "--model=smollm2=/models/smollm2.gguf"));
    EXPECT_TRUE(HasArg(daemon, "--model=qwen=/models/qwen.gguf,template=chatml"));
    EXPECT_TRUE(HasArg(daemon, "--socket=/var/run/agentry/nodeagent.sock"));
    EXPECT_TRUE(HasArg(daemon, "--metrics-host=0.0.0.0"));
    // The image's entrypoint names the subcommand; the args are flags only.
    EXPECT_EQ(Args(daemon)[0].rfind("--", 0), 0u) << Args(daemon)[0];
    EXPECT_EQ((*pod)["priorityClassName"], "agentry-nodeagent");
    EXPECT_EQ((*pod)["terminationGracePeriodSeconds"], 60);  // the daemon's 30 s, plus 30
  }
  // Updated one node at a time.
  EXPECT_EQ(objects.at("DaemonSet/agentry-nodeagent-gpu")["spec"]["updateStrategy"]["rollingUpdate"]
                                                         ["maxUnavailable"],
            1);
}

TEST_F(ChartTest, MonitoringRendersMonitorsTheAlertsAndTheDashboard) {
  const std::map<std::string, Json> objects = Render(R"(
monitoring:
  serviceMonitor: {enabled: true, labels: {release: kube-prometheus}}
  podMonitor: {enabled: true}
  prometheusRule: {enabled: true}
  dashboard: {enabled: true}
)");
  EXPECT_EQ(objects.at("ServiceMonitor/agentry-operator")["metadata"]["labels"]["release"],
            "kube-prometheus");
  const Json& agents = objects.at("PodMonitor/agentry-agents");
  std::set<std::string> jobs;
  for (const Json& e : agents["spec"]["podMetricsEndpoints"]) {
    jobs.insert(e["relabelings"][0]["replacement"].get<std::string>());
  }
  EXPECT_EQ(jobs, (std::set<std::string>{"agentry-runtime", "agentry-state"}));
  EXPECT_EQ(objects.count("PodMonitor/agentry-nodeagent"), 1u);
  // The PrometheusRule carries the alerts file as it is (which promtool tests).
  const Json alerts = ToJson(YAML::LoadFile(kChart + "/files/alerts.yaml"));
  EXPECT_EQ(objects.at("PrometheusRule/agentry")["spec"]["groups"], alerts["groups"]);
  const Json& dashboard = objects.at("ConfigMap/agentry-dashboard");
  EXPECT_EQ(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
  const Json parsed =
      Json::parse(dashboard["data"]["agentry.json"].get<std::string>(), nullptr, false);
  ASSERT_FALSE(parsed.is_discarded());
  EXPECT_FALSE(parsed.value("panels", Json::array()).empty());
}

// values.schema.json and the templates refuse bad values at install time, naming the field.
TEST_F(ChartTest, BadValuesAreRefusedNamingTheField) {
  const struct {
    const char* values;
    const char* message;
  } cases[] = {
      {"operator: {replicas: 0}", "/operator/replicas"},
      {"operator: {replica: 2}", "'replica' not allowed"},
      {"nodeagent: {cacheType: q4}", "/nodeagent/cacheType"},
      {"nodeagent: {models: [{name: m, path: /tmp/m.gguf}]}", "/nodeagent/models/0/path"},
      {"nodeagent: {models: [{path: /models/m.gguf}]}", "/nodeagent/models/0"},
      {"image: {pullPolicy: Sometimes}", "/image/pullPolicy"},
      {"image: {registry: registry.example.com}", "/image/registry"},
      {"monitoring: {serviceMonitor: {enabled: yes-please}}", "/monitoring/serviceMonitor/enabled"},
      {"operator: {leaderElection: false}", "operator.replicas: more than one replica needs"},
  };
  for (const auto& c : cases) {
    const CommandOutput out = Template(c.values);
    EXPECT_NE(out.code, 0) << c.values;
    EXPECT_NE(out.text.find(c.message), std::string::npos) << c.values << ":\n" << out.text;
  }
  EXPECT_EQ(Template("operator: {leaderElection: false, replicas: 1}").code, 0);
}

TEST_F(ChartTest, TheChartsCrdIsTheProjects) {
  std::ifstream a(kSource + "/crds/managedagents.agentry.dev.yaml");
  std::ifstream b(kChart + "/crds/managedagents.agentry.dev.yaml");
  std::stringstream x, y;
  x << a.rdbuf();
  y << b.rdbuf();
  ASSERT_FALSE(x.str().empty());
  EXPECT_TRUE(x.str() == y.str())
      << "charts/agentry/crds/ must be a copy of crds/managedagents.agentry.dev.yaml";
  // helm installs it with --include-crds / on install; template shows it with the flag.
  const CommandOutput out = Template("", "--include-crds");
  ASSERT_EQ(out.code, 0) << out.text;
  EXPECT_EQ(Objects(out.text).count("CustomResourceDefinition/managedagents.agentry.dev"), 1u);
}

// The GitOps example: what `kubectl kustomize` makes of its production overlay is a valid
// agent (the CRD's schema, defaults applied, and the decoder) with the overlay's changes.
TEST_F(ChartTest, TheGitOpsOverlayRendersAValidAgent) {
  if (!fs::exists(Tool("kubectl"))) GTEST_SKIP() << Tool("kubectl") << " is missing";
  const CommandOutput out = RunCommand(Tool("kubectl") + " kustomize " + kSource +
                                       "/examples/gitops/overlays/production");
  ASSERT_EQ(out.code, 0) << out.text;
  YAML::Node manifest = YAML::Load(out.text);
  const YAML::Node crd = YAML::LoadFile(kSource + "/crds/managedagents.agentry.dev.yaml");
  const YAML::Node schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  crds::ApplyDefaults(schema, manifest);
  EXPECT_TRUE(crds::Validate(schema, manifest).empty())
      << ::testing::PrintToString(crds::Validate(schema, manifest));
  YAML::Emitter text;
  text << manifest;
  StatusOr<config::ManagedAgent> agent = config::ParseManagedAgent(text.c_str(), "overlay");
  ASSERT_TRUE(agent.ok()) << agent.status().message();
  EXPECT_EQ(agent->metadata.namespace_name, "support-prod");
  EXPECT_EQ(agent->spec.replicas, 2);
  EXPECT_EQ(agent->spec.budget.tokens_per_day, 2000000);
}

}  // namespace
}  // namespace agentry
