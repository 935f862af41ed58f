// runtime/tools/toolbox.h — an agent's tools, built from its spec: what the model is told
// about them (runtime::ToolDecl) and how each call is run.
//
//   StatusOr<std::unique_ptr<Toolbox>> box = Toolbox::Create(agent, options, &state);
//   harness_options.tools = (*box)->decls();
//   ToolOutcome out = (*box)->Run(call, {.agent = ..., .session_id = ..., .call_id = ...});
//
// Create refuses a spec whose tools cannot constrain a call (a parameters schema the
// constraint does not support, say), naming the tool, so a bad spec fails at start rather
// than at the first call. Run never fails: whatever goes wrong (an unknown tool, arguments
// that do not fit its schema, egress refused, a timeout, an HTTP error) is the call's result,
// which the model reads and the audit log records.
//
// MCP tools (spec.tools[].mcp): Create asks each server for its tools (tools/list) and
// offers those allowedTools names (all when it names none), with the server's descriptions
// and schemas. A server that cannot be reached, or a tool whose schema the call constraint
// cannot express or whose name another tool has, is left out and listed in `skipped()` with
// why: the model is never told about a tool that cannot run, and the runtime still starts.
// Whether a call may run without a person's approval is the caller's to decide
// (decl.requires_approval): Run runs what it is given.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config/agent_spec.h"
#include "nodeagent/constrain/grammar.h"
#include "runtime/harness/state_client.h"
#include "runtime/prompt/agent_prompt.h"
#include "runtime/tools/egress_policy.h"
#include "runtime/tools/http_tool.h"
#include "runtime/tools/mcp_client.h"
#include "runtime/tools/memory_tools.h"
#include "runtime/tools/tool_context.h"
#include "runtime/tools/tool_result.h"

namespace agentry::tools {

struct ToolboxOptions {
  HttpToolOptions http;
  McpClientOptions mcp;
  size_t max_result_bytes = 8192;  // of a result's text in the prompt
};

class Toolbox {
 public:
  static StatusOr<std::unique_ptr<Toolbox>> Create(const config::ManagedAgent& agent,
                                                   ToolboxOptions options,
                                                   harness::StateClient* state);

  const std::vector<runtime::ToolDecl>& decls() const { return decls_; }
  // Tools in the spec that are not offered to the model, with why.
  const std::vector<std::string>& skipped() const { return skipped_; }
  // The declaration of tool `name`, or null.
  const runtime::ToolDecl* Find(const std::string& name) const;

  ToolOutcome Run(const runtime::ToolCall& call, const ToolContext& context) const;

 private:
  struct Entry {
    runtime::ToolDecl decl;
    constrain::Grammar arguments;  // what valid arguments look like
    std::unique_ptr<HttpTool> http;
    McpClient* mcp = nullptr;  // owned by mcp_servers_
    std::string builtin;
  };

  Toolbox(const config::ManagedAgent& agent, ToolboxOptions options, harness::StateClient* state);
  // Lists an MCP server's tools into mcp_pending_ (or why not into skipped_).
  void AddMcpServer(const config::ToolSpec& spec);

  ToolboxOptions options_;
  EgressPolicy egress_;
  MemoryTools memory_;
  std::vector<runtime::ToolDecl> decls_;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> skipped_;
  std::vector<std::unique_ptr<McpClient>> mcp_servers_;
  std::vector<Entry> mcp_pending_;  // listed, added after the spec's own tools
};

}  // namespace agentry::tools
