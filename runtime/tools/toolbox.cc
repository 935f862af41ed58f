// runtime/tools/toolbox.cc — see toolbox.h.
#include "runtime/tools/toolbox.h"

#include <algorithm>
#include <chrono>

#include "nodeagent/constrain/json_schema.h"
#include "nodeagent/constrain/matcher.h"
#include "nodeagent/constrain/tool_call.h"

namespace agentry::tools {

Toolbox::Toolbox(const config::ManagedAgent& agent, ToolboxOptions options,
                 harness::StateClient* state)
    : options_(std::move(options)),
      egress_(agent.spec.egress_allow),
      memory_(state, agent.spec.memory.shared) {}

StatusOr<std::unique_ptr<Toolbox>> Toolbox::Create(const config::ManagedAgent& agent,
                                                   ToolboxOptions options,
                                                   harness::StateClient* state) {
  std::unique_ptr<Toolbox> box(new Toolbox(agent, std::move(options), state));
  for (const config::ToolSpec& spec : agent.spec.tools) {
    if (spec.mcp.has_value()) {
      box->AddMcpServer(spec);
      continue;
    }
    Entry entry;
    entry.decl = {spec.name, spec.description, spec.parameters, spec.requires_approval};
    entry.builtin = spec.builtin;
    if (spec.builtin == config::kBuiltinRemember) {
      entry.decl.parameters = RememberParameters();
      if (entry.decl.description.empty()) {
        entry.decl.description = "Keep a fact for later conversations.";
      }
    } else if (spec.builtin == config::kBuiltinRecall) {
      entry.decl.parameters = RecallParameters();
      if (entry.decl.description.empty()) {
        entry.decl.description = "Find facts kept by remember.";
      }
    } else if (spec.http.has_value()) {
      entry.http = std::make_unique<HttpTool>(*spec.http, &box->egress_, box->options_.http);
    }
    box->decls_.push_back(entry.decl);
    box->entries_.emplace(spec.name, std::move(entry));
  }
  // MCP tools whose names the spec's own tools took are left out.
  for (auto it = box->mcp_pending_.begin(); it != box->mcp_pending_.end(); ++it) {
    if (box->entries_.count(it->decl.name) > 0) {
      box->skipped_.push_back(it->decl.name + ": another tool has this name");
      continue;
    }
    box->decls_.push_back(it->decl);
    box->entries_.emplace(it->decl.name, std::move(*it));
  }
  box->mcp_pending_.clear();
  // Every schema must compile into the call constraint: checked all together, as the node
  // daemon will, so the errors name the tool as the spec lists it.
  if (!box->decls_.empty()) {
    std::vector<constrain::ToolSchema> schemas;
    for (const runtime::ToolDecl& d : box->decls_) schemas.push_back({d.name, d.parameters});
    StatusOr<constrain::Grammar> call = constrain::ToolCallGrammar(schemas, "");
    if (!call.ok()) return InvalidArgumentError("spec." + call.status().message());
  }
  for (auto& [name, entry] : box->entries_) {
    const nlohmann::json& p = entry.decl.parameters;
    if (p.is_null() || (p.is_object() && p.empty())) {
      entry.arguments = constrain::Grammar::Literal("{}");
    } else {
      AGENTRY_ASSIGN_OR_RETURN(entry.arguments, constrain::CompileJsonSchema(p, name));
    }
  }
  return box;
}

void Toolbox::AddMcpServer(const config::ToolSpec& spec) {
  McpClientOptions mcp_options = options_.mcp;
  if (spec.mcp->service_account_token) {
    mcp_options.token_file = options_.http.service_account_token_file;
  }
  auto client = std::make_unique<McpClient>(spec.mcp->url, &egress_, mcp_options);
  StatusOr<std::vector<McpTool>> listed = client->ListTools(nullptr);
  if (!listed.ok()) {
    skipped_.push_back(spec.name + ": " + listed.status().message());
    return;
  }
  const std::vector<std::string>& allowed = spec.mcp->allowed_tools;
  for (const McpTool& tool : *listed) {
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), tool.name) == allowed.end()) {
      continue;  // not in allowedTools: never offered
    }
    const std::string where = spec.name + "/" + tool.name;
    Entry entry;
    entry.decl = {tool.name, tool.description, tool.input_schema, spec.requires_approval};
    entry.mcp = client.get();
    // A server's schema is checked as the constraint will compile it; one it cannot express
    // leaves that tool out rather than stopping the runtime.
    const nlohmann::json& p = tool.input_schema;
    const bool none = p.is_null() || (p.is_object() && p.empty());
    StatusOr<constrain::Grammar> call =
        constrain::ToolCallGrammar({{tool.name, none ? nlohmann::json() : p}}, "");
    if (!call.ok()) {
      skipped_.push_back(where + ": " + call.status().message());
      continue;
    }
    bool taken = false;
    for (const Entry& e : mcp_pending_) taken = taken || e.decl.name == tool.name;
    if (taken) {
      skipped_.push_back(where + ": another tool has this name");
      continue;
    }
    if (none) entry.decl.parameters = nullptr;
    mcp_pending_.push_back(std::move(entry));
  }
  for (const std::string& name : allowed) {
    bool listed_here = false;
    for (const McpTool& tool : *listed) listed_here = listed_here || tool.name == name;
    if (!listed_here) skipped_.push_back(spec.name + "/" + name + ": the server does not list it");
  }
  mcp_servers_.push_back(std::move(client));
}

const runtime::ToolDecl* Toolbox::Find(const std::string& name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second.decl;
}

ToolOutcome Toolbox::Run(const runtime::ToolCall& call, const ToolContext& context) const {
  const auto start = std::chrono::steady_clock::now();
  const auto it = entries_.find(call.name);
  if (it == entries_.end()) return ToolError("no tool named \"" + call.name + "\"");
  const Entry& entry = it->second;
  // The node daemon's constraint wrote these arguments; check them again here, since a
  // daemon without it (or a replayed transcript) could have written anything.
  constrain::Matcher matcher(entry.arguments);
  const std::string args =
      call.arguments.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!matcher.AdvanceAll(args) || !matcher.IsComplete()) {
    return ToolError("arguments do not match the parameters of " + call.name);
  }
  ToolRun run;
  if (entry.builtin == config::kBuiltinRemember) {
    run = memory_.Remember(call.arguments, context);
  } else if (entry.builtin == config::kBuiltinRecall) {
    run = memory_.Recall(call.arguments, context);
  } else if (entry.mcp != nullptr) {
    run = entry.mcp->CallTool(call.name, call.arguments, context);
  } else {
    run = entry.http->Call(call.arguments, context);
  }
  ToolOutcome out = RenderToolRun(run, options_.max_result_bytes);
  out.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  return out;
}

}  // namespace agentry::tools
