// runtime/tools/tool_context.h — who a tool call is for, passed to every tool.
#pragma once

#include <atomic>
#include <string>

namespace agentry::tools {

struct ToolContext {
  std::string agent;  // "namespace/name"
  std::string session_id{};
  std::string on_behalf_of{};  // the person the agent acts for; "" when none
  std::string call_id{};
  const std::atomic<bool>* stop = nullptr;  // set: abandon the call at once
};

}  // namespace agentry::tools
