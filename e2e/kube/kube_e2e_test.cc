// e2e/kube: the operator against a real API server — whatever $KUBECONFIG points at (a
// conformant cluster, or a bare kube-apiserver + etcd with no controllers, kubelets or
// pods: ../shared/tools/kube). Nothing here waits for a pod to run.
//
// It applies the CRD, starts agentry-operator out of cluster in a namespace of its own,
// applies every ManagedAgent in examples/ there, and checks: the owned objects and their
// owner references, server-side apply field ownership, status conditions, Events, the
// CRD's CEL rules refusing bad manifests with the rule's message, `kubectl get ma` columns
// (when kubectl is installed). It deletes its namespace at the end, and the CRD if it
// installed it. Without $KUBECONFIG every test skips, saying so.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/config/decoder.h"
#include "common/kube/client.h"

namespace agentry::kube {
namespace {

constexpr Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
constexpr Resource kCrds{"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                         "CustomResourceDefinition", false};

// YAML as the JSON the API server takes (common/config's decoder: plain scalars keep their
// YAML type, quoted ones are strings).
Json ToJson(const YAML::Node& n) {
  config::Errors errors;
  Json out;
  if (!config::DecodeValue(n, "", &errors, &out)) ADD_FAILURE() << errors.ToStatus().message();
  return out;
}

bool Eventually(const std::function<bool()>& done,
                std::chrono::seconds limit = std::chrono::seconds(60)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return done();
}

class KubeE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* kubeconfig = std::getenv("KUBECONFIG");
    if (kubeconfig == nullptr || *kubeconfig == '\0') return;
    StatusOr<KubeConfig> config = LoadKubeConfig(kubeconfig);
    if (!config.ok()) {
      setup_error_ = config.status().message();
      return;
    }
    client_ = std::move(Client::Create(*config).value()).release();
    ns_ = "agentry-e2e-" + std::to_string(getpid());
    const Json crd = ToJson(
        YAML::LoadFile(std::string(AGENTRY_SOURCE_DIR) + "/crds/managedagents.agentry.dev.yaml"));
    installed_crd_ = !client_->Get(kCrds, "", "managedagents.agentry.dev").ok();
    if (Status s = client_->Apply(kCrds, "", crd, {.field_manager = "agentry-e2e", .force = true})
                       .status();
        !s.ok()) {
      setup_error_ = "CRD: " + s.message();
      return;
    }
    const bool established = Eventually([] {
      StatusOr<Json> c = client_->Get(kCrds, "", "managedagents.agentry.dev");
      if (!c.ok()) return false;
      for (const Json& cond : (*c)["status"].value("conditions", Json::array())) {
        if (cond.value("type", "") == "Established" && cond.value("status", "") == "True") {
          return true;
        }
      }
      return false;
    });
    if (!established) {
      setup_error_ = "the CRD did not become Established";
      return;
    }
    (void)client_->Create(
        kNamespaces, "",
        {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}});
    (void)client_->Create(kPersistentVolumeClaims, ns_,
                          {{"apiVersion", "v1"},
                           {"kind", "PersistentVolumeClaim"},
                           {"metadata", {{"name", "models"}, {"namespace", ns_}}},
                           {"spec",
                            {{"accessModes", Json::array({"ReadOnlyMany"})},
                             {"resources", {{"requests", {{"storage", "1Gi"}}}}}}}});
    operator_pid_ = fork();
    if (operator_pid_ == 0) {
      execl(AGENTRY_OPERATOR_BINARY, AGENTRY_OPERATOR_BINARY, "--kubeconfig", kubeconfig,
            "--namespace", ns_.c_str(), "--metrics-port", "0", static_cast<char*>(nullptr));
      _exit(127);
    }
    // Every ManagedAgent of examples/, in the test's namespace.
    for (const auto& entry :
         std::filesystem::directory_iterator(std::string(AGENTRY_SOURCE_DIR) + "/examples")) {
      if (entry.path().extension() != ".yaml") continue;
      for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
        Json agent = ToJson(doc);
        if (agent.value("kind", "") != "ManagedAgent") continue;
        agent["metadata"]["namespace"] = ns_;
        agent["metadata"]["name"] =
            agent["metadata"].value("name", "") + "-" + entry.path().stem().string().substr(0, 10);
        if (Status s = client_->Apply(kManagedAgents, ns_, agent, {.field_manager = "agentry-e2e"})
                           .status();
            !s.ok()) {
          setup_error_ = entry.path().string() + ": " + s.message();
          return;
        }
        agents_.push_back(agent["metadata"]["name"]);
      }
    }
  }
  static void TearDownTestSuite() {
    if (operator_pid_ > 0) {
      kill(operator_pid_, SIGTERM);
      waitpid(operator_pid_, nullptr, 0);
    }
    if (client_ == nullptr) return;
    for (const std::string& name : agents_) (void)client_->Delete(kManagedAgents, ns_, name);
    (void)client_->Delete(kNamespaces, "", ns_);
    if (installed_crd_) (void)client_->Delete(kCrds, "", "managedagents.agentry.dev");
    delete client_;
    client_ = nullptr;
  }
  void SetUp() override {
    if (std::getenv("KUBECONFIG") == nullptr) {
      GTEST_SKIP() << "no KUBECONFIG: the suite against a real API server is skipped "
                      "(kube-apiserver is not packaged here; see e2e/kube/README.md)";
    }
    ASSERT_EQ(setup_error_, "");
    ASSERT_FALSE(agents_.empty());
  }
  static std::string Condition(const std::string& agent, const std::string& type,
                               std::string* reason = nullptr) {
    StatusOr<Json> a = client_->Get(kManagedAgents, ns_, agent);
    if (!a.ok() || !a->contains("status")) return "";
    for (const Json& c : (*a)["status"].value("conditions", Json::array())) {
      if (c.value("type", "") != type) continue;
      if (reason != nullptr) *reason = c.value("reason", "");
      return c.value("status", "");
    }
    return "";
  }

  static inline Client* client_ = nullptr;
  static inline std::string ns_;
  static inline std::string setup_error_;
  static inline std::vector<std::string> agents_;
  static inline bool installed_crd_ = false;
  static inline pid_t operator_pid_ = -1;
};

TEST_F(KubeE2eTest, EveryExampleGetsItsOwnedObjects) {
  for (const std::string& agent : agents_) {
    ASSERT_TRUE(Eventually([&] { return client_->Get(kStatefulSets, ns_, agent).ok(); })) << agent;
    for (const Resource* r :
         {&kServiceAccounts, &kServices, &kNetworkPolicies, &kRoles, &kRoleBindings}) {
      const std::string name = r == &kRoles || r == &kRoleBindings ? agent + "-runtime" : agent;
      StatusOr<Json> object = client_->Get(*r, ns_, name);
      ASSERT_TRUE(object.ok()) << agent << " " << r->kind << ": " << object.status().message();
      const Json& owner = (*object)["metadata"]["ownerReferences"][0];
      EXPECT_EQ(owner["kind"], "ManagedAgent");
      EXPECT_EQ(owner["name"], agent);
      EXPECT_EQ(owner["controller"], true);
    }
    EXPECT_TRUE(client_->Get(kConfigMaps, ns_, agent + "-config").ok()) << agent;
  }
}

TEST_F(KubeE2eTest, TheOperatorOwnsWhatItAppliedAndTheUserTheSpec) {
  const std::string& agent = agents_.front();
  ASSERT_TRUE(Eventually([&] { return client_->Get(kStatefulSets, ns_, agent).ok(); }));
  const Json sts = *client_->Get(kStatefulSets, ns_, agent);
  bool operator_owns_spec = false;
  for (const Json& m : sts["metadata"]["managedFields"]) {
    if (m.value("manager", "") == "agentry-operator" && m.value("operation", "") == "Apply") {
      operator_owns_spec = m["fieldsV1"].contains("f:spec");
    }
  }
  EXPECT_TRUE(operator_owns_spec) << sts["metadata"]["managedFields"].dump();
  const Json ma = *client_->Get(kManagedAgents, ns_, agent);
  bool user_owns_spec = false;
  for (const Json& m : ma["metadata"]["managedFields"]) {
    if (m.value("manager", "") == "agentry-e2e") user_owns_spec = m["fieldsV1"].contains("f:spec");
  }
  EXPECT_TRUE(user_owns_spec);
}

TEST_F(KubeE2eTest, StatusConditionsAndEventsAreReported) {
  for (const std::string& agent : agents_) {
    EXPECT_TRUE(Eventually([&] { return !Condition(agent, "Ready").empty(); })) << agent;
    std::string reason;
    const std::string model = Condition(agent, "ModelAvailable", &reason);
    // The local example reads its model from a file: no good in a cluster, and said so.
    EXPECT_TRUE((model == "True" && reason == "ModelClaimFound") ||
                (model == "False" && reason == "LocalFileSource"))
        << agent << ": " << model << " " << reason;
    EXPECT_EQ(Condition(agent, "Suspended"), "False");
  }
  StatusOr<Json> events = client_->List(kEvents, ns_);
  ASSERT_TRUE(events.ok());
  bool applied = false;
  for (const Json& e : (*events)["items"]) applied = applied || e.value("reason", "") == "Applied";
  EXPECT_TRUE(applied);
}

// Two runtime pods report on themselves as the runtime does (StatusReporter: one element of
// status.runtimes each, under its own field manager). The real server's associative-list
// merge keeps both, and the operator sums them into usage and BudgetExhausted without taking
// them over.
TEST_F(KubeE2eTest, RuntimeReportsMergeAndBecomeUsageAndBudgetExhausted) {
  const std::string& agent = agents_.front();
  ASSERT_TRUE(Eventually([&] { return !Condition(agent, "Ready").empty(); }));
  StatusOr<Json> object = client_->Get(kManagedAgents, ns_, agent);
  ASSERT_TRUE(object.ok());
  const int64_t replicas = (*object)["spec"].value("replicas", int64_t{1});
  const std::string day = [] {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[16];
    std::strftime(text, sizeof(text), "%Y-%m-%d", &tm);
    return std::string(text);
  }();
  for (int64_t i = 0; i < std::min<int64_t>(replicas, 2); ++i) {
    const std::string pod = agent + "-" + std::to_string(i);
    const Json patch = {{"apiVersion", "agentry.dev/v1alpha1"},
                        {"kind", "ManagedAgent"},
                        {"metadata", {{"name", agent}, {"namespace", ns_}}},
                        {"status",
                         {{"runtimes", Json::array({{{"pod", pod},
                                                     {"day", day},
                                                     {"sessions", 2},
                                                     {"tokensToday", 100},
                                                     {"toolCallsToday", 1},
                                                     {"budgetExhausted", i == 0},
                                                     {"message", "budget_exhausted: test"}}})}}}};
    const Status s = client_
                         ->ApplyStatus(kManagedAgents, ns_, patch,
                                       {.field_manager = "agentry-runtime-" + pod, .force = true})
                         .status();
    ASSERT_TRUE(s.ok()) << s.message();
  }
  const int64_t reporting = std::min<int64_t>(replicas, 2);
  std::string reason;
  EXPECT_TRUE(Eventually([&] { return Condition(agent, "BudgetExhausted", &reason) == "True"; }));
  EXPECT_EQ(reason, "TokensPerDayExhausted");
  ASSERT_TRUE(Eventually([&] {
    StatusOr<Json> a = client_->Get(kManagedAgents, ns_, agent);
    return a.ok() && (*a)["status"].value("usage", Json::object()).value("sessions", int64_t{-1}) ==
                         2 * reporting;
  }));
  const Json after = *client_->Get(kManagedAgents, ns_, agent);
  EXPECT_EQ(after["status"]["runtimes"].size(), static_cast<size_t>(reporting));
  EXPECT_EQ(after["status"]["usage"]["tokensToday"], 100 * reporting);
  for (const Json& m : after["metadata"]["managedFields"]) {
    if (m.value("manager", "") != "agentry-operator") continue;
    EXPECT_FALSE(m["fieldsV1"].value("f:status", Json::object()).contains("f:runtimes"))
        << m.dump();
  }
}

TEST_F(KubeE2eTest, TheCelRulesRefuseBadManifestsNamingTheRule) {
  const Json base = {
      {"apiVersion", "agentry.dev/v1alpha1"},
      {"kind", "ManagedAgent"},
      {"metadata", {{"name", "bad"}, {"namespace", ns_}}},
      {"spec", {{"model", {{"name", "m"}, {"source", {{"pvc", "models"}, {"path", "m"}}}}}}}};
  struct Case {
    Json spec_extra;
    std::string message;
  };
  const Case cases[] = {
      {{{"tools", Json::array({{{"name", "a"}, {"builtin", "recall"}},
                               {{"name", "a"}, {"builtin", "remember"}}})}},
       "tool names must be unique"},
      {{{"tools", Json::array({{{"name", "a"},
                                {"http", {{"url", "http://x/"}}},
                                {"mcp", {{"url", "http://y/"}}}}})}},
       "set exactly one of http, mcp or builtin"},
      {{{"accelerator", {{"type", "nvidia.com/gpu"}, {"count", 0}}}},
       "count: at least 1 for a GPU or Neuron accelerator"},
      {{{"budget", {{"tokensPerSession", 10}, {"tokensPerDay", 5}}}},
       "tokensPerSession: must not exceed tokensPerDay"},
      {{{"sessions", {{"idleTimeout", "3h"}, {"maxDuration", "2h"}}}},
       "idleTimeout: must not be longer than maxDuration"},
      {{{"replicas", -1}}, "spec.replicas"},
  };
  for (const Case& c : cases) {
    Json agent = base;
    for (const auto& [k, v] : c.spec_extra.items()) agent["spec"][k] = v;
    const Status s = client_->Create(kManagedAgents, ns_, agent).status();
    EXPECT_EQ(Reason(s), "Invalid") << c.message << ": " << s.message();
    EXPECT_NE(s.message().find(c.message), std::string::npos) << s.message();
  }
}

// The Helm chart's objects, as the defaults and the GPU, Neuron and namespaced value sets
// render them, are accepted by the real API server (server-side dry run: nothing is created).
// helm and kubectl come from scripts/kubetools-install. The monitoring objects need the
// Prometheus Operator's CRDs, which a bare API server lacks, so they are left off.
TEST_F(KubeE2eTest, TheChartAppliesToTheServer) {
  const char* home = std::getenv("HOME");
  const std::string tools = std::string(std::getenv("AGENTRY_CACHE") != nullptr
                                            ? std::getenv("AGENTRY_CACHE")
                                            : std::string(home ? home : "") + "/.cache/agentry") +
                            "/kubetools/";
  if (!std::filesystem::exists(tools + "helm") || !std::filesystem::exists(tools + "kubectl")) {
    GTEST_SKIP() << "helm or kubectl missing in " << tools << " (scripts/kubetools-install)";
  }
  const std::string out = "/tmp/agentry-e2e-chart." + std::to_string(getpid());
  for (const std::string& set : {std::string(),
                                 std::string("--set nodeagent.pools.gpu.enabled=true "
                                             "--set nodeagent.pools.neuron.enabled=true"),
                                 std::string("--set operator.watchNamespace=") + ns_}) {
    const std::string command =
        tools + "helm template agentry " AGENTRY_SOURCE_DIR "/charts/agentry --namespace " + ns_ +
        " " + set + " | " + tools + "kubectl apply --dry-run=server -f - > " + out + " 2>&1";
    const int rc = std::system(command.c_str());
    std::ifstream in(out);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(rc, 0) << set << ":\n" << text;
    EXPECT_NE(text.find("deployment.apps/agentry-operator created (server dry run)"),
              std::string::npos)
        << text;
  }
  std::remove(out.c_str());
}

TEST_F(KubeE2eTest, KubectlShowsThePrinterColumns) {
  if (std::system("command -v kubectl >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "kubectl is not installed";
  }
  const std::string out = "/tmp/agentry-e2e-kubectl." + std::to_string(getpid());
  ASSERT_EQ(std::system(("kubectl get ma -n " + ns_ + " > " + out + " 2>&1").c_str()), 0);
  std::ifstream in(out);
  std::string header;
  std::getline(in, header);
  std::remove(out.c_str());
  for (const char* column :
       {"NAME", "MODEL", "ACCELERATOR", "REPLICAS", "READY", "SESSIONS", "AGE"}) {
    EXPECT_NE(header.find(column), std::string::npos) << header;
  }
}

}  // namespace
}  // namespace agentry::kube
