#include "common/config/agent_spec.h"

#include <set>

namespace agentry::config {
namespace {

// OpenAI-style function names: what every chat template we render accepts.
Rule<std::string> ToolName() {
  return [](const std::string& v) {
    bool ok = !v.empty() && v.size() <= 64;
    for (char c : v) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-');
    }
    return ok ? std::string() : "must be 1 to 64 letters, digits, '_' or '-', got \"" + v + "\"";
  };
}

Rule<std::string> HttpUrl() {
  return [](const std::string& v) {
    const bool ok = (v.rfind("http://", 0) == 0 && v.size() > 7) ||
                    (v.rfind("https://", 0) == 0 && v.size() > 8);
    return ok ? std::string() : "must be an http:// or https:// URL, got \"" + v + "\"";
  };
}

template <typename T>
Rule<std::vector<T>> AtMostItems(size_t max) {
  return [max](const std::vector<T>& v) {
    return v.size() <= max
               ? std::string()
               : "at most " + std::to_string(max) + " entries, got " + std::to_string(v.size());
  };
}

void DecodeMetadata(ObjectDecoder meta, ObjectMeta* out) {
  meta.Required("name", &out->name, DnsLabel());
  meta.Optional("namespace", &out->namespace_name, DnsLabel());
  meta.Optional("labels", &out->labels);
  meta.Optional("annotations", &out->annotations);
  // uid, resourceVersion, managedFields, ... belong to the API server; accept them.
  meta.AllowUnknownFields();
  meta.RejectUnknownFields();
}

}  // namespace

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, ModelSpec* out) {
  ObjectDecoder model(node, path, errors);
  model.Required("name", &out->name, NonEmpty());
  model.Optional("contextLength", &out->context_length, InRange<int64_t>(1, 1 << 20));
  if (!model.Has("source")) model.Error("source", "required field is missing");
  ObjectDecoder source = model.Nested("source");
  source.Optional("pvc", &out->source.pvc, DnsLabel());
  source.Optional("path", &out->source.path, NonEmpty());
  source.Optional("file", &out->source.file, NonEmpty());
  source.RejectUnknownFields();
  if (model.Has("source")) {
    const bool pvc = source.Has("pvc");
    const bool file = source.Has("file");
    if (pvc == file) {
      model.Error("source", "set exactly one of pvc (with path) or file");
    } else if (pvc && !source.Has("path")) {
      source.Error("path", "required when pvc is set");
    } else if (file && source.Has("path")) {
      source.Error("path", "only valid with pvc");
    }
  }
  return model.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 AcceleratorSpec* out) {
  ObjectDecoder acc(node, path, errors);
  acc.Optional("type", &out->type,
               OneOf({std::string(kAcceleratorCpu), std::string(kAcceleratorNvidiaGpu),
                      std::string(kAcceleratorNeuronCore)}));
  // A cpu agent may say count 0 (the node daemon's CPU is shared, not requested); a device
  // type needs at least one, as the CRD's rule says.
  if (acc.Optional("count", &out->count, InRange<int64_t>(0, 64)) && out->count < 1 &&
      out->type != kAcceleratorCpu) {
    acc.Error("count",
              "at least 1 for a GPU or Neuron accelerator, got " + std::to_string(out->count));
  }
  return acc.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 HttpToolSpec* out) {
  ObjectDecoder http(node, path, errors);
  http.Required("url", &out->url, HttpUrl());
  http.Optional("method", &out->method, OneOf({"GET", "POST", "PUT", "PATCH", "DELETE"}));
  http.Optional("headers", &out->headers);
  http.Optional("timeout", &out->timeout, Positive<Duration>());
  http.Optional<Quantity>("maxResponseSize", &out->max_response_size, [](const Quantity& q) {
    return q.value > 0 && q.value <= (int64_t{64} << 20) ? std::string()
                                                         : "must be between 1 and 64Mi";
  });
  http.Optional("serviceAccountToken", &out->service_account_token);
  return http.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 HttpHeaderSpec* out) {
  ObjectDecoder header(node, path, errors);
  header.Required("name", &out->name, NonEmpty());
  header.Optional("value", &out->value);
  ObjectDecoder from = header.Nested("valueFrom");
  ObjectDecoder ref = from.Nested("secretKeyRef");
  ref.Optional("name", &out->secret_name, DnsLabel());
  ref.Optional("key", &out->secret_key, NonEmpty());
  ref.RejectUnknownFields();
  from.RejectUnknownFields();
  if (header.Has("value") == header.Has("valueFrom")) {
    header.Error("value", "set exactly one of value or valueFrom.secretKeyRef");
  } else if (header.Has("valueFrom") && (out->secret_name.empty() || out->secret_key.empty())) {
    header.Error("valueFrom", "secretKeyRef needs name and key");
  }
  return header.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 McpToolSpec* out) {
  ObjectDecoder mcp(node, path, errors);
  mcp.Required("url", &out->url, HttpUrl());
  mcp.Optional("allowedTools", &out->allowed_tools);
  mcp.Optional("serviceAccountToken", &out->service_account_token);
  return mcp.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, ToolSpec* out) {
  ObjectDecoder tool(node, path, errors);
  tool.Required("name", &out->name, ToolName());
  tool.Optional("description", &out->description);
  tool.Optional<nlohmann::json>("parameters", &out->parameters, [](const nlohmann::json& j) {
    return j.is_object() ? std::string() : "must be a JSON schema object";
  });
  tool.Optional("http", &out->http);
  tool.Optional("mcp", &out->mcp);
  tool.Optional("builtin", &out->builtin,
                OneOf({std::string(kBuiltinRemember), std::string(kBuiltinRecall)}));
  tool.Optional("requiresApproval", &out->requires_approval);
  const int kinds = int{tool.Has("http")} + int{tool.Has("mcp")} + int{tool.Has("builtin")};
  if (kinds != 1) tool.Error("http", "set exactly one of http, mcp or builtin");
  if (tool.Has("builtin") && tool.Has("parameters")) {
    tool.Error("parameters", "a builtin tool has its own parameters");
  }
  return tool.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 IdentitySpec* out) {
  ObjectDecoder id(node, path, errors);
  id.Optional("serviceAccountName", &out->service_account_name, NonEmpty());
  id.Optional("onBehalfOf", &out->on_behalf_of, OneOf({"required", "optional", "never"}));
  return id.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, EgressRule* out) {
  ObjectDecoder rule(node, path, errors);
  rule.Required("host", &out->host, NonEmpty());
  rule.Optional<std::vector<int64_t>>("ports", &out->ports, [](const std::vector<int64_t>& ports) {
    for (int64_t p : ports) {
      if (p < 1 || p > 65535) return "ports must be between 1 and 65535, got " + std::to_string(p);
    }
    return std::string();
  });
  return rule.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, MemorySpec* out) {
  ObjectDecoder mem(node, path, errors);
  mem.Optional<Quantity>("size", &out->size, [](const Quantity& q) {
    return q.value > 0 ? std::string() : "must be larger than zero";
  });
  mem.Optional("storageClassName", &out->storage_class_name, NonEmpty());
  mem.Optional("retentionDays", &out->retention_days, Positive<int64_t>());
  mem.Optional("shared", &out->shared);
  return mem.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 SessionsSpec* out) {
  ObjectDecoder s(node, path, errors);
  s.Optional("maxConcurrent", &out->max_concurrent, Positive<int64_t>());
  const bool idle_ok = s.Optional("idleTimeout", &out->idle_timeout, Positive<Duration>());
  const bool max_ok = s.Optional("maxDuration", &out->max_duration, Positive<Duration>());
  s.Optional("maxTurns", &out->max_turns, Positive<int64_t>());
  s.Optional("maxToolSteps", &out->max_tool_steps, InRange<int64_t>(0, 64));
  s.Optional("approvalTimeout", &out->approval_timeout, Positive<Duration>());
  if (idle_ok && max_ok && out->idle_timeout > out->max_duration) {
    s.Error("idleTimeout",
            "must not be longer than maxDuration (" + FormatDuration(out->max_duration) + ")");
  }
  return s.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, BudgetSpec* out) {
  ObjectDecoder b(node, path, errors);
  auto positive = [](const std::optional<int64_t>& v) {
    return !v || *v > 0 ? std::string() : "must be a positive integer, got " + std::to_string(*v);
  };
  const bool session_ok =
      b.Optional<std::optional<int64_t>>("tokensPerSession", &out->tokens_per_session, positive);
  const bool day_ok =
      b.Optional<std::optional<int64_t>>("tokensPerDay", &out->tokens_per_day, positive);
  b.Optional<std::optional<int64_t>>("toolCallsPerSession", &out->tool_calls_per_session, positive);
  if (session_ok && day_ok && out->tokens_per_session && out->tokens_per_day &&
      *out->tokens_per_session > *out->tokens_per_day) {
    b.Error("tokensPerSession",
            "must not exceed tokensPerDay (" + std::to_string(*out->tokens_per_day) + ")");
  }
  return b.Finish();
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, AgentSpec* out) {
  ObjectDecoder spec(node, path, errors);
  spec.Required("model", &out->model);
  spec.Optional("accelerator", &out->accelerator);
  spec.Optional("instructions", &out->instructions);
  if (spec.Optional("tools", &out->tools, AtMostItems<ToolSpec>(kMaxTools))) {
    std::set<std::string> names;
    for (size_t i = 0; i < out->tools.size(); ++i) {
      if (!names.insert(out->tools[i].name).second) {
        errors->Add(IndexPath(spec.FieldPath("tools"), i) + ".name",
                    "duplicate tool name \"" + out->tools[i].name + "\"",
                    node["tools"][i]["name"].Mark());
      }
    }
  }
  spec.Optional("identity", &out->identity);
  ObjectDecoder egress = spec.Nested("egress");
  egress.Optional("allow", &out->egress_allow, AtMostItems<EgressRule>(kMaxEgressRules));
  egress.RejectUnknownFields();
  spec.Optional("memory", &out->memory);
  spec.Optional("sessions", &out->sessions);
  spec.Optional("budget", &out->budget);
  spec.Optional("replicas", &out->replicas, InRange<int64_t>(0, 1000));
  spec.Optional("suspend", &out->suspend);
  return spec.Finish();
}

StatusOr<ManagedAgent> DecodeManagedAgent(const YAML::Node& document) {
  Errors errors;
  ManagedAgent agent;
  ObjectDecoder root(document, "", &errors);
  std::string api_version;
  std::string kind;
  root.Required<std::string>("apiVersion", &api_version, [](const std::string& v) {
    return v == kAgentApiVersion
               ? std::string()
               : "must be " + std::string(kAgentApiVersion) + ", got \"" + v + "\"";
  });
  root.Required<std::string>("kind", &kind, [](const std::string& v) {
    return v == kAgentKind ? std::string()
                           : "must be " + std::string(kAgentKind) + ", got \"" + v + "\"";
  });
  DecodeMetadata(root.Nested("metadata"), &agent.metadata);
  root.Required("spec", &agent.spec);
  // status is written by the operator and the runtime, never by the user.
  root.Ignore("status");
  root.RejectUnknownFields();
  AGENTRY_RETURN_IF_ERROR(errors.ToStatus());
  return agent;
}

StatusOr<ManagedAgent> ParseManagedAgent(std::string_view text, std::string_view source) {
  AGENTRY_ASSIGN_OR_RETURN(YAML::Node doc, ParseYaml(text, source));
  StatusOr<ManagedAgent> agent = DecodeManagedAgent(doc);
  if (!agent.ok()) return agent.status().WithPrefix(source);
  return agent;
}

}  // namespace agentry::config
