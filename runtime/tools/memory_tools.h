// runtime/tools/memory_tools.h — the built-in remember and recall tools over the agent's
// long-term memory in the state sidecar (it survives restarts with the state volume).
//
//   remember {"text": "..."}  keeps a fact;           -> {"remembered":true,"id":12}
//   recall   {"query": "..."} finds the best matches;  -> {"memories":[{"text":...,"score":...}]}
//
// Memory is per agent and, unless spec.memory.shared, per on-behalf-of user: one user's
// facts never come back to another's session. The scope is the sidecar's key for that:
// "agent:team-a/triage" when shared, else "agent:team-a/triage/user:alice" (a session that
// acts for no one has its own "user:" scope, shared with other such sessions only).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "runtime/harness/state_client.h"
#include "runtime/tools/tool_context.h"
#include "runtime/tools/tool_result.h"

namespace agentry::tools {

// The tools' argument schemas, as the model sees them.
nlohmann::json RememberParameters();
nlohmann::json RecallParameters();

class MemoryTools {
 public:
  MemoryTools(harness::StateClient* state, bool shared) : state_(state), shared_(shared) {}

  std::string Scope(const ToolContext& context) const;
  ToolRun Remember(const nlohmann::json& arguments, const ToolContext& context) const;
  ToolRun Recall(const nlohmann::json& arguments, const ToolContext& context) const;

 private:
  harness::StateClient* state_;
  bool shared_;
};

}  // namespace agentry::tools
