// runtime/prompt/agent_prompt.h — what an agent's model reads and writes besides plain text:
// the system message that declares its instructions and tools, and the tool-call format.
//
// The format is the one Agentry's own agent model is trained on (train/corpus) and the one
// the runtime parses; it follows the Hermes/Qwen2.5 convention of a JSON object inside
// <tool_call> tags, written compactly, name first:
//
//   <tool_call>{"name":"get_ticket","arguments":{"id":4821}}</tool_call>
//
// An assistant message that calls a tool holds only the call; the result comes back as a
// message with role "tool" holding the tool's JSON. Argument keys are in the order
// nlohmann::json iterates an object (sorted), which is also the order the schema
// constraint (tool_call_grammar.h) enforces, so what the model is taught and what decoding
// allows are the same bytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace agentry::runtime {

inline constexpr std::string_view kToolCallOpen = "<tool_call>";
inline constexpr std::string_view kToolCallClose = "</tool_call>";

// A tool as the model sees it.
struct ToolDecl {
  std::string name;
  std::string description;
  nlohmann::json parameters;  // JSON schema of the arguments (an object schema)
  bool requires_approval = false;
};

// The system message: the instructions, a blank line, then "Tools:" and one line per tool,
//   - get_ticket(id: integer): Fetch one support ticket by its numeric id.
// listing the schema's properties in iteration order with their JSON types ("?" after an
// optional one), and " Needs approval." for tools that require it.
std::string RenderSystemPrompt(std::string_view instructions, const std::vector<ToolDecl>& tools);

// "<tool_call>{"name":NAME,"arguments":ARGS}</tool_call>" with ARGS compact.
std::string RenderToolCall(std::string_view name, const nlohmann::json& arguments);

struct ToolCall {
  std::string name;
  nlohmann::json arguments;
};

// The tool call an assistant message holds. NotFound when the message does not start with
// <tool_call> (after leading whitespace): it is a plain answer. InvalidArgument, with the
// byte offset, when it starts a call that is not closed, not a JSON object, or lacks a
// string "name" or an object "arguments".
StatusOr<ToolCall> ParseToolCall(std::string_view message);

}  // namespace agentry::runtime
