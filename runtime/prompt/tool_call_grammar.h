// runtime/prompt/tool_call_grammar.h — the grammar of a tool call in Agentry's format
// (runtime/prompt/agent_prompt.h), for a given set of tools: constrain::ToolCallGrammar
// (nodeagent/constrain/tool_call.h) with Agentry's closing tag.
//
// It covers everything after "<tool_call>":
//
//   {"name":"get_ticket","arguments":{"id":4821}}</tool_call>
//
// the name one of the tools' (written as nlohmann::json writes it), the arguments a value of
// that tool's parameters schema (nodeagent/constrain/json_schema.h). As everywhere in constrained
// JSON, one optional space may follow each ':' and ',', so {"name": "x", "arguments": {}} fits too.
// Whatever a model writes under this grammar parses with runtime::ParseToolCall, names a
// declared tool, and has arguments that satisfy its schema; RenderToolCall's output for such
// arguments is accepted byte for byte.
//
//   StatusOr<Grammar> g = ToolCallGrammar(agent.tools);
//   Matcher m(*g);  // start constraining once the model has written "<tool_call>"
#pragma once

#include <vector>

#include "common/status.h"
#include "nodeagent/constrain/grammar.h"
#include "nodeagent/constrain/tool_call.h"
#include "runtime/prompt/agent_prompt.h"

namespace agentry::runtime {

// The tools as the node daemon's constraint takes them.
std::vector<constrain::ToolSchema> ToolSchemas(const std::vector<ToolDecl>& tools);

// As constrain::ToolCallGrammar: InvalidArgument, naming the tool, for a tool list or schema
// that cannot constrain a call.
StatusOr<constrain::Grammar> ToolCallGrammar(const std::vector<ToolDecl>& tools);

}  // namespace agentry::runtime
