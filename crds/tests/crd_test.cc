// The ManagedAgent CRD against the decoder every Agentry binary reads manifests with
// (common/config/agent_spec.h): the two must accept the same manifests with the same
// defaults, or a manifest `agentry validate` passes would be refused (or changed) by the API
// server. The CEL rules need an API server and are checked in e2e/kube.
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "crds/tests/openapi_schema.h"
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "common/config/agent_spec.h"

namespace agentry::crds {
namespace {

// Paths built once at start; an allocation failure there just fails the test binary.
// NOLINTBEGIN(cert-err58-cpp)
const std::string kSource = AGENTRY_SOURCE_DIR;
// NOLINTEND(cert-err58-cpp)

YAML::Node Crd() { return YAML::LoadFile(kSource + "/crds/managedagents.agentry.dev.yaml"); }

YAML::Node Schema() { return Crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]; }

std::string ToYaml(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

// A manifest that sets every field the decoder reads.
constexpr const char* kEveryField = R"(apiVersion: agentry.dev/v1alpha1
kind: ManagedAgent
metadata: {name: every, namespace: team-a, labels: {team: support}, annotations: {a: b}}
spec:
  model: {name: m, source: {pvc: models, path: m.gguf}, contextLength: 2048}
  accelerator: {type: nvidia.com/gpu, count: 2}
  instructions: Help.
  tools:
    - name: get_ticket
      description: Fetch a ticket.
      parameters: {type: object, properties: {id: {type: integer}}, required: [id]}
      requiresApproval: false
      http:
        url: "http://tickets.svc/api/{id}"
        method: POST
        headers:
          - {name: X-Team, value: support}
          - {name: Authorization, valueFrom: {secretKeyRef: {name: tickets-token, key: token}}}
        timeout: 30s
        maxResponseSize: 2Mi
        serviceAccountToken: true
    - name: jira
      mcp: {url: "http://jira.svc/mcp", allowedTools: [search], serviceAccountToken: true}
      requiresApproval: true
    - {name: remember, builtin: remember}
  identity: {serviceAccountName: triage, onBehalfOf: required}
  egress: {allow: [{host: tickets.svc, ports: [80, 443]}, {host: "*.jira.svc"}]}
  memory: {size: 2Gi, storageClassName: fast, retentionDays: 7, shared: true}
  sessions: {maxConcurrent: 4, idleTimeout: 10m, maxDuration: 1h, maxTurns: 20,
             maxToolSteps: 4, approvalTimeout: 30m}
  budget: {tokensPerSession: 1000, tokensPerDay: 100000, toolCallsPerSession: 10}
  replicas: 2
  suspend: false
)";

TEST(CrdTest, IsTheManagedAgentKindWithItsSubresourcesAndColumns) {
  const YAML::Node crd = Crd();
  EXPECT_EQ(crd["metadata"]["name"].as<std::string>(), "managedagents.agentry.dev");
  EXPECT_EQ(crd["spec"]["names"]["kind"].as<std::string>(), config::kAgentKind);
  EXPECT_EQ(crd["spec"]["names"]["shortNames"][0].as<std::string>(), "ma");
  EXPECT_EQ(crd["spec"]["scope"].as<std::string>(), "Namespaced");
  const YAML::Node version = crd["spec"]["versions"][0];
  EXPECT_EQ(crd["spec"]["group"].as<std::string>() + "/" + version["name"].as<std::string>(),
            config::kAgentApiVersion);
  EXPECT_TRUE(version["subresources"]["status"].IsDefined());
  EXPECT_EQ(version["subresources"]["scale"]["specReplicasPath"].as<std::string>(),
            ".spec.replicas");

  // Every printer column names a field the schema has.
  std::set<std::string> paths;
  for (const std::string& p : PropertyPaths(Schema())) paths.insert("." + p);
  std::vector<std::string> columns;
  for (const auto& column : version["additionalPrinterColumns"]) {
    columns.push_back(column["name"].as<std::string>());
    const std::string path = column["jsonPath"].as<std::string>();
    if (path != ".metadata.creationTimestamp") {
      EXPECT_TRUE(paths.count(path)) << column["name"] << ": " << path;
    }
  }
  EXPECT_EQ(columns, (std::vector<std::string>{"Model", "Accelerator", "Replicas", "Ready",
                                               "Sessions", "Age"}));
}

// A structural schema: every property has a type (or is int-or-string) and says what it is.
TEST(CrdTest, EveryFieldHasATypeAndADescription) {
  std::vector<std::string> missing;
  std::function<void(const YAML::Node&, const std::string&)> walk = [&](const YAML::Node& s,
                                                                        const std::string& path) {
    if (!s["type"] && !s["x-kubernetes-int-or-string"]) missing.push_back(path + ": no type");
    if (path != "metadata" && !s["description"]) {
      missing.push_back(path + ": no description");
    }
    for (const auto& p : s["properties"]) {
      const std::string key = p.first.as<std::string>();
      walk(p.second, path.empty() ? key : path + "." + key);
    }
    if (s["items"] && s["items"]["properties"]) {
      for (const auto& p : s["items"]["properties"]) {
        walk(p.second, path + "[]." + p.first.as<std::string>());
      }
    }
  };
  const YAML::Node schema = Schema();
  for (const auto& p : schema["properties"]) walk(p.second, p.first.as<std::string>());
  EXPECT_TRUE(missing.empty()) << ::testing::PrintToString(missing);
}

// Every field the decoder reads is in the schema (the API server would prune or refuse it),
// and a manifest the schema accepts after defaulting decodes.
TEST(CrdTest, EveryFieldTheDecoderReadsIsInTheSchema) {
  YAML::Node manifest = YAML::Load(kEveryField);
  ASSERT_TRUE(config::ParseManagedAgent(kEveryField, "every").ok())
      << config::ParseManagedAgent(kEveryField, "every").status().message();
  const YAML::Node schema = Schema();
  ApplyDefaults(schema, manifest);
  const std::vector<std::string> errors = Validate(schema, manifest);
  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
  const StatusOr<config::ManagedAgent> defaulted = config::ParseManagedAgent(ToYaml(manifest), "d");
  EXPECT_TRUE(defaulted.ok()) << defaulted.status().message();
}

TEST(CrdTest, EveryExampleManifestIsValid) {
  const YAML::Node schema = Schema();
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kSource + "/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    for (YAML::Node doc : YAML::LoadAllFromFile(entry.path().string())) {
      if (!doc["kind"] || doc["kind"].as<std::string>() != config::kAgentKind) continue;
      ApplyDefaults(schema, doc);
      const std::vector<std::string> errors = Validate(schema, doc);
      EXPECT_TRUE(errors.empty()) << entry.path() << ": " << ::testing::PrintToString(errors);
      ++checked;
    }
  }
  EXPECT_GE(checked, 2);
}

// What the API server fills in is what the decoder assumes: a minimal manifest decodes to
// the same agent with and without the CRD's defaults.
TEST(CrdTest, TheSchemasDefaultsAreTheDecodersDefaults) {
  const std::string minimal = R"(apiVersion: agentry.dev/v1alpha1
kind: ManagedAgent
metadata: {name: small}
spec:
  model: {name: m, source: {pvc: models, path: m.gguf}}
  tools:
    - {name: t, http: {url: "http://t.svc/"}}
    - {name: j, mcp: {url: "http://j.svc/mcp"}}
  budget: {}
)";
  YAML::Node defaulted = YAML::Load(minimal);
  ApplyDefaults(Schema(), defaulted);
  const StatusOr<config::ManagedAgent> plain = config::ParseManagedAgent(minimal, "plain");
  const StatusOr<config::ManagedAgent> server = config::ParseManagedAgent(ToYaml(defaulted), "crd");
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  ASSERT_TRUE(server.ok()) << server.status().message();
  const config::AgentSpec& a = plain->spec;
  const config::AgentSpec& b = server->spec;
  EXPECT_EQ(a.model.context_length, b.model.context_length);
  EXPECT_EQ(a.accelerator.type, b.accelerator.type);
  EXPECT_EQ(a.accelerator.count, b.accelerator.count);
  EXPECT_EQ(a.tools[0].http->method, b.tools[0].http->method);
  EXPECT_EQ(a.tools[0].http->timeout, b.tools[0].http->timeout);
  EXPECT_EQ(a.tools[0].http->max_response_size.value, b.tools[0].http->max_response_size.value);
  EXPECT_EQ(a.tools[0].http->service_account_token, b.tools[0].http->service_account_token);
  EXPECT_EQ(a.tools[0].requires_approval, b.tools[0].requires_approval);
  EXPECT_EQ(a.tools[1].mcp->service_account_token, b.tools[1].mcp->service_account_token);
  EXPECT_EQ(a.identity.on_behalf_of, b.identity.on_behalf_of);
  EXPECT_EQ(a.memory.size.value, b.memory.size.value);
  EXPECT_EQ(a.memory.retention_days, b.memory.retention_days);
  EXPECT_EQ(a.memory.shared, b.memory.shared);
  EXPECT_EQ(a.sessions.max_concurrent, b.sessions.max_concurrent);
  EXPECT_EQ(a.sessions.idle_timeout, b.sessions.idle_timeout);
  EXPECT_EQ(a.sessions.max_duration, b.sessions.max_duration);
  EXPECT_EQ(a.sessions.max_turns, b.sessions.max_turns);
  EXPECT_EQ(a.sessions.max_tool_steps, b.sessions.max_tool_steps);
  EXPECT_EQ(a.sessions.approval_timeout, b.sessions.approval_timeout);
  EXPECT_EQ(a.budget.tokens_per_day, b.budget.tokens_per_day);  // unset: unlimited
  EXPECT_EQ(a.replicas, b.replicas);
  EXPECT_EQ(a.suspend, b.suspend);
  // And the defaulted copy spells each default out, so the comparison above compared values.
  EXPECT_EQ(defaulted["spec"]["sessions"]["maxDuration"].as<std::string>(), "2h");
  EXPECT_EQ(defaulted["spec"]["tools"][0]["http"]["timeout"].as<std::string>(), "10s");
}

// Mistakes the schema alone catches are the decoder's mistakes too (the rest are CEL's).
TEST(CrdTest, TheSchemaAndTheDecoderRefuseTheSameBadFields) {
  struct Case {
    std::string path;  // spec field set to `value`
    std::string value;
  };
  const Case cases[] = {
      {"replicas", "-1"},
      {"replicas", "1001"},
      {"accelerator", "{type: tpu}"},
      {"accelerator", "{count: 65}"},
      {"model", "{name: m, source: {pvc: models, path: m}, contextLength: 0}"},
      {"model", "{name: m, source: {pvc: Models, path: m}}"},
      {"identity", "{onBehalfOf: sometimes}"},
      {"sessions", "{idleTimeout: 15 minutes}"},
      {"sessions", "{maxToolSteps: 65}"},
      {"tools", "[{name: 'a b', builtin: recall}]"},
      {"tools", "[{name: a, builtin: forget}]"},
      {"tools", "[{name: a, http: {url: 'ftp://x/'}}]"},
      {"tools", "[{name: a, http: {url: 'http://x/', method: HEAD}}]"},
      {"egress", "{allow: [{host: x, ports: [70000]}]}"},
      {"budget", "{tokensPerDay: 0}"},
      {"memory", "{retentionDays: 0}"},
      {"suspend", "maybe"},
      {"colour", "blue"},
  };
  const YAML::Node schema = Schema();
  for (const Case& c : cases) {
    const std::string text =
        "apiVersion: agentry.dev/v1alpha1\nkind: ManagedAgent\nmetadata: {name: bad}\nspec:\n"
        "  model: {name: m, source: {pvc: models, path: m.gguf}}\n  " +
        c.path + ": " + c.value + "\n";
    YAML::Node doc = YAML::Load(text);
    ApplyDefaults(schema, doc);
    EXPECT_FALSE(Validate(schema, doc).empty())
        << "the schema accepts " << c.path << ": " << c.value;
    EXPECT_FALSE(config::ParseManagedAgent(text, "bad").ok())
        << "the decoder accepts " << c.path << ": " << c.value;
  }
}

}  // namespace
}  // namespace agentry::crds
