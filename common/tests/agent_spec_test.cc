#include "common/config/agent_spec.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace agentry::config {
namespace {

const char* kMinimal = R"(apiVersion: agentry.dev/v1alpha1
kind: ManagedAgent
metadata: {name: helper}
spec:
  model: {name: tiny, source: {file: /models/tiny.gguf}}
)";

std::string Errors(const std::string& yaml) {
  StatusOr<ManagedAgent> agent = ParseManagedAgent(yaml, "agent.yaml");
  return agent.ok() ? "" : agent.status().message();
}

// kMinimal with `spec_extra` appended under spec (indented by two spaces).
std::string WithSpec(const std::string& spec_extra) { return std::string(kMinimal) + spec_extra; }

TEST(AgentSpecTest, MinimalManifestGetsDefaults) {
  StatusOr<ManagedAgent> agent = ParseManagedAgent(kMinimal, "agent.yaml");
  ASSERT_TRUE(agent.ok()) << agent.status().message();
  EXPECT_EQ(agent->metadata.name, "helper");
  EXPECT_EQ(agent->metadata.namespace_name, "default");
  EXPECT_EQ(agent->spec.model.source.file, "/models/tiny.gguf");
  EXPECT_EQ(agent->spec.model.context_length, 4096);
  EXPECT_EQ(agent->spec.accelerator.type, "cpu");
  EXPECT_EQ(agent->spec.sessions.max_turns, 50);
  EXPECT_EQ(agent->spec.sessions.idle_timeout, std::chrono::minutes(15));
  EXPECT_EQ(agent->spec.memory.size.value, int64_t{1} << 30);
  EXPECT_EQ(agent->spec.identity.on_behalf_of, "optional");
  EXPECT_FALSE(agent->spec.budget.tokens_per_day.has_value());
  EXPECT_EQ(agent->spec.replicas, 1);
  EXPECT_FALSE(agent->spec.suspend);
}

TEST(AgentSpecTest, ShippedExampleIsValid) {
  std::ifstream in(std::string(AGENTRY_EXAMPLES_DIR) + "/triage-agent.yaml");
  ASSERT_TRUE(in) << "examples/triage-agent.yaml missing";
  std::stringstream text;
  text << in.rdbuf();
  StatusOr<ManagedAgent> agent = ParseManagedAgent(text.str(), "triage-agent.yaml");
  ASSERT_TRUE(agent.ok()) << agent.status().message();
  const AgentSpec& spec = agent->spec;
  EXPECT_EQ(agent->metadata.namespace_name, "team-a");
  EXPECT_EQ(spec.model.source.pvc, "models");
  ASSERT_EQ(spec.tools.size(), 2u);
  EXPECT_EQ(spec.tools[0].http->url, "http://tickets.team-a.svc/api/tickets/{id}");
  EXPECT_EQ(spec.tools[0].parameters["required"][0], "id");
  EXPECT_EQ(spec.tools[0].parameters["properties"]["id"]["type"], "integer");
  EXPECT_FALSE(spec.tools[0].mcp.has_value());
  EXPECT_EQ(spec.tools[1].mcp->allowed_tools, (std::vector<std::string>{"search"}));
  EXPECT_TRUE(spec.tools[1].requires_approval);
  ASSERT_EQ(spec.egress_allow.size(), 2u);
  EXPECT_EQ(spec.egress_allow[0].ports, (std::vector<int64_t>{80}));
  EXPECT_EQ(spec.budget.tokens_per_session, 20000);
  EXPECT_EQ(spec.sessions.max_duration, std::chrono::hours(2));
  EXPECT_EQ(spec.identity.on_behalf_of, "required");
}

TEST(AgentSpecTest, TheIssueExampleError) {
  EXPECT_EQ(Errors(WithSpec("  sessions: {maxTurns: 0}\n")),
            "agent.yaml: spec.sessions.maxTurns: must be a positive integer, got 0 "
            "(line 6, column 24)");
}

TEST(AgentSpecTest, EachRuleNamesItsField) {
  struct Case {
    std::string spec_extra;
    std::string expected;
  };
  const Case cases[] = {
      {"  replicas: -1\n", "spec.replicas: must be between 0 and 1000, got -1"},
      {"  suspend: maybe\n", "spec.suspend: must be true or false"},
      {"  accelerator: {type: tpu}\n",
       "spec.accelerator.type: must be one of cpu, nvidia.com/gpu or aws.amazon.com/neuroncore"},
      {"  accelerator: {type: nvidia.com/gpu, count: 0}\n",
       "spec.accelerator.count: at least 1 for a GPU or Neuron accelerator, got 0"},
      {"  accelerator: {type: cpu, count: 65}\n",
       "spec.accelerator.count: must be between 0 and 64, got 65"},
      {"  tools: [{name: a, http: {url: 'http://x/'}, mcp: {url: 'http://y/'}}]\n",
       "spec.tools[0].http: set exactly one of http, mcp or builtin"},
      {"  tools: [{name: a}]\n", "spec.tools[0].http: set exactly one of http, mcp or builtin"},
      {"  tools: [{name: a, builtin: forget}]\n",
       "spec.tools[0].builtin: must be one of remember or recall"},
      {"  tools: [{name: a, builtin: recall, parameters: {type: object}}]\n",
       "spec.tools[0].parameters: a builtin tool has its own parameters"},
      {"  tools: [{name: a, http: {url: 'http://x/', headers: [{name: X}]}}]\n",
       "spec.tools[0].http.headers[0].value: set exactly one of value or valueFrom"},
      {"  tools: [{name: a, http: {url: 'http://x/', headers: [{name: X, valueFrom: "
       "{secretKeyRef: {name: s}}}]}}]\n",
       "spec.tools[0].http.headers[0].valueFrom: secretKeyRef needs name and key"},
      {"  tools: [{name: a, http: {url: 'http://x/', maxResponseSize: 1Gi}}]\n",
       "spec.tools[0].http.maxResponseSize: must be between 1 and 64Mi"},
      {"  tools: [{name: a, http: {url: 'http://x/', timeout: 0s}}]\n",
       "spec.tools[0].http.timeout: must be a positive duration"},
      {"  sessions: {maxToolSteps: 65}\n",
       "spec.sessions.maxToolSteps: must be between 0 and 64, got 65"},
      {"  tools: [{name: a, http: {url: 'http://x/'}}, {name: a, http: {url: 'http://y/'}}]\n",
       "spec.tools[1].name: duplicate tool name \"a\""},
      {"  tools: [{name: 'bad name', http: {url: 'http://x/'}}]\n",
       "spec.tools[0].name: must be 1 to 64 letters"},
      {"  tools: [{name: a, http: {url: 'ftp://x/'}}]\n",
       "spec.tools[0].http.url: must be an http:// or https:// URL"},
      {"  tools: [{name: a, http: {url: 'http://x/', method: FETCH}}]\n",
       "spec.tools[0].http.method: must be one of GET, POST, PUT, PATCH or DELETE"},
      {"  tools: [{name: a, parameters: [1], http: {url: 'http://x/'}}]\n",
       "spec.tools[0].parameters: must be a JSON schema object"},
      {"  identity: {onBehalfOf: sometimes}\n",
       "spec.identity.onBehalfOf: must be one of required, optional or never"},
      {"  egress: {allow: [{host: a.svc, ports: [0]}]}\n",
       "spec.egress.allow[0].ports: ports must be between 1 and 65535, got 0"},
      {"  egress: {allow: [{ports: [80]}]}\n", "spec.egress.allow[0].host: required field"},
      {"  egress: {deny: []}\n", "spec.egress.deny: unknown field"},
      {"  memory: {size: 1GB}\n", "spec.memory.size: must be a quantity"},
      {"  memory: {size: 0}\n", "spec.memory.size: must be larger than zero"},
      {"  sessions: {idleTimeout: 3h}\n",
       "spec.sessions.idleTimeout: must not be longer than maxDuration (2h)"},
      {"  sessions: {maxDuration: forever}\n", "spec.sessions.maxDuration: must be a duration"},
      {"  budget: {tokensPerSession: 5000, tokensPerDay: 100}\n",
       "spec.budget.tokensPerSession: must not exceed tokensPerDay (100)"},
      {"  budget: {toolCallsPerSession: 0}\n",
       "spec.budget.toolCallsPerSession: must be a positive integer, got 0"},
      {"  sesions: {}\n", "spec.sesions: unknown field"},
  };
  for (const Case& c : cases) {
    const std::string errors = Errors(WithSpec(c.spec_extra));
    EXPECT_NE(errors.find(c.expected), std::string::npos)
        << "spec extra: " << c.spec_extra << "got: " << errors;
  }
}

TEST(AgentSpecTest, ModelSourceRules) {
  const std::string head =
      "apiVersion: agentry.dev/v1alpha1\nkind: ManagedAgent\nmetadata: {name: a}\nspec:\n";
  EXPECT_NE(Errors(head + "  model: {name: m}\n").find("spec.model.source: required field"),
            std::string::npos);
  EXPECT_NE(Errors(head + "  model: {name: m, source: {pvc: models}}\n")
                .find("spec.model.source.path: required when pvc is set"),
            std::string::npos);
  EXPECT_NE(Errors(head + "  model: {name: m, source: {pvc: models, path: a, file: b}}\n")
                .find("spec.model.source: set exactly one of pvc (with path) or file"),
            std::string::npos);
  EXPECT_NE(Errors(head + "  model: {name: m, source: {file: a}, contextLength: 0}\n")
                .find("spec.model.contextLength: must be between 1 and"),
            std::string::npos);
  EXPECT_NE(Errors(head + "  model: {source: {file: a}}\n").find("spec.model.name: required"),
            std::string::npos);
}

TEST(AgentSpecTest, EnvelopeRules) {
  EXPECT_NE(Errors("apiVersion: v1\nkind: ManagedAgent\nmetadata: {name: a}\nspec: {}\n")
                .find("apiVersion: must be agentry.dev/v1alpha1, got \"v1\""),
            std::string::npos);
  EXPECT_NE(Errors("apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {name: a}\n")
                .find("kind: must be ManagedAgent"),
            std::string::npos);
  EXPECT_NE(Errors("apiVersion: agentry.dev/v1alpha1\nkind: ManagedAgent\nspec: {}\n")
                .find("metadata.name: required field is missing"),
            std::string::npos);
  EXPECT_NE(Errors("apiVersion: agentry.dev/v1alpha1\nkind: ManagedAgent\n"
                   "metadata: {name: Bad_Name}\nspec: {}\n")
                .find("metadata.name: must be a DNS label"),
            std::string::npos);
  EXPECT_NE(Errors("- just\n- a list\n").find("(document): must be an object"), std::string::npos);
}

TEST(AgentSpecTest, ServerOwnedFieldsAreAccepted) {
  const std::string yaml = std::string(kMinimal) + "status: {readyReplicas: 1}\n";
  std::string with_meta = yaml;
  with_meta.replace(with_meta.find("metadata: {name: helper}"), 24,
                    "metadata: {name: helper, uid: 1234, resourceVersion: '7', generation: 2}");
  EXPECT_EQ(Errors(with_meta), "");
}

TEST(AgentSpecTest, TooManyToolsIsRefused) {
  std::string tools = "  tools:\n";
  for (size_t i = 0; i <= kMaxTools; ++i) {
    tools += "    - {name: t" + std::to_string(i) + ", http: {url: 'http://x/'}}\n";
  }
  EXPECT_NE(Errors(WithSpec(tools)).find("spec.tools: at most 128 entries, got 129"),
            std::string::npos);
}

}  // namespace
}  // namespace agentry::config
