// common/config/agent_spec.h — the ManagedAgent resource (agentry.dev/v1alpha1) as typed
// structs, decoded from YAML with field-path errors.
//
// One definition serves every reader: `agentry validate` and `agentry up` read manifests,
// the operator reads them from the API server, and the runtime reads the rendered copy. The
// checks here mirror the CRD's schema and CEL rules, so a manifest that passes locally is
// one the API server accepts.
//
//   StatusOr<ManagedAgent> agent = ParseManagedAgent(text, "triage.yaml");
//   if (!agent.ok()) { std::cerr << agent.status().message(); ... }
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config/decoder.h"
#include "common/status.h"

namespace agentry::config {

inline constexpr std::string_view kAgentApiVersion = "agentry.dev/v1alpha1";
inline constexpr std::string_view kAgentKind = "ManagedAgent";

// Accelerator types the node daemon can pin sessions to.
inline constexpr std::string_view kAcceleratorCpu = "cpu";
inline constexpr std::string_view kAcceleratorNvidiaGpu = "nvidia.com/gpu";
inline constexpr std::string_view kAcceleratorNeuronCore = "aws.amazon.com/neuroncore";

struct ModelSource {
  std::string pvc;   // in a cluster: a PersistentVolumeClaim holding the file
  std::string path;  // path of the GGUF file inside the claim
  std::string file;  // locally (agentry up): a GGUF file on this machine
};

struct ModelSpec {
  std::string name;
  ModelSource source;
  int64_t context_length = 4096;
};

struct AcceleratorSpec {
  std::string type = std::string(kAcceleratorCpu);
  int64_t count = 1;
};

// A header an HTTP tool sends: a literal value, or one read from a mounted Secret.
struct HttpHeaderSpec {
  std::string name;
  std::string value;        // literal
  std::string secret_name;  // or valueFrom.secretKeyRef.name ...
  std::string secret_key;   // ... and .key
};

struct HttpToolSpec {
  std::string url;  // may hold "{argument}" placeholders, filled percent-escaped
  std::string method = "GET";
  std::vector<HttpHeaderSpec> headers;
  Duration timeout = std::chrono::seconds(10);
  Quantity max_response_size{int64_t{1} << 20, "1Mi"};  // bytes read; the rest is cut off
  // Send the pod's projected service-account token as "Authorization: Bearer ...".
  bool service_account_token = false;
};

// Tools the runtime provides itself.
inline constexpr std::string_view kBuiltinRemember = "remember";
inline constexpr std::string_view kBuiltinRecall = "recall";

struct McpToolSpec {
  std::string url;
  std::vector<std::string> allowed_tools;  // empty: every tool the server lists
  // Send the pod's projected service-account token as "Authorization: Bearer ...".
  bool service_account_token = false;
};

struct ToolSpec {
  std::string name;
  std::string description;
  nlohmann::json parameters;  // JSON schema of the arguments; null when the tool takes none
  std::optional<HttpToolSpec> http;
  std::optional<McpToolSpec> mcp;
  std::string builtin;  // "remember" or "recall": the agent's long-term memory
  bool requires_approval = false;
};

struct IdentitySpec {
  std::string service_account_name;       // empty: the operator creates one
  std::string on_behalf_of = "optional";  // required | optional | never
};

struct EgressRule {
  std::string host;
  std::vector<int64_t> ports;
};

struct MemorySpec {
  Quantity size{int64_t{1} << 30, "1Gi"};
  std::string storage_class_name;  // empty: the cluster default
  int64_t retention_days = 30;
  // One memory for all users of the agent; otherwise each on-behalf-of user has their own.
  bool shared = false;
};

struct SessionsSpec {
  int64_t max_concurrent = 8;
  Duration idle_timeout = std::chrono::minutes(15);
  Duration max_duration = std::chrono::hours(2);
  int64_t max_turns = 50;
  int64_t max_tool_steps = 8;                         // model calls that run a tool, per turn
  Duration approval_timeout = std::chrono::hours(1);  // a paused call is then denied
};

// Unset limits are unlimited.
struct BudgetSpec {
  std::optional<int64_t> tokens_per_session;
  std::optional<int64_t> tokens_per_day;
  std::optional<int64_t> tool_calls_per_session;
};

struct AgentSpec {
  ModelSpec model;
  AcceleratorSpec accelerator;
  std::string instructions;
  std::vector<ToolSpec> tools;
  IdentitySpec identity;
  std::vector<EgressRule> egress_allow;
  MemorySpec memory;
  SessionsSpec sessions;
  BudgetSpec budget;
  int64_t replicas = 1;
  bool suspend = false;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_name = "default";
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

struct ManagedAgent {
  ObjectMeta metadata;
  AgentSpec spec;
};

// Limits that keep a hostile manifest from costing unbounded work; the CRD uses the same.
inline constexpr size_t kMaxTools = 128;
inline constexpr size_t kMaxEgressRules = 64;

// Decodes one ManagedAgent document. All field errors are reported together, one a line.
StatusOr<ManagedAgent> DecodeManagedAgent(const YAML::Node& document);
// Parses `text` (one YAML document) and decodes it; errors start with `source`.
StatusOr<ManagedAgent> ParseManagedAgent(std::string_view text, std::string_view source);

// Struct decoders, found by argument-dependent lookup from ObjectDecoder.
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, ModelSpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 AcceleratorSpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, ToolSpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 HttpToolSpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 HttpHeaderSpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, McpToolSpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 IdentitySpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, EgressRule* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, MemorySpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 SessionsSpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, BudgetSpec* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, AgentSpec* out);

}  // namespace agentry::config
