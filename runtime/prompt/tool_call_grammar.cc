// runtime/prompt/tool_call_grammar.cc — see tool_call_grammar.h.
#include "runtime/prompt/tool_call_grammar.h"

namespace agentry::runtime {

std::vector<constrain::ToolSchema> ToolSchemas(const std::vector<ToolDecl>& tools) {
  std::vector<constrain::ToolSchema> schemas;
  schemas.reserve(tools.size());
  for (const ToolDecl& tool : tools) schemas.push_back({tool.name, tool.parameters});
  return schemas;
}

StatusOr<constrain::Grammar> ToolCallGrammar(const std::vector<ToolDecl>& tools) {
  return constrain::ToolCallGrammar(ToolSchemas(tools), kToolCallClose);
}

}  // namespace agentry::runtime
