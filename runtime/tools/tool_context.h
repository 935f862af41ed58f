// runtime/tools/tool_context.h — who a tool call is for, passed to every tool.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace agentry::tools {

struct ToolContext {
  std::string agent;  // "namespace/name"
  std::string session_id{};
  std::string on_behalf_of{};  // the person the agent acts for; "" when none
  std::string call_id{};
  const std::atomic<bool>* stop = nullptr;  // set: abandon the call at once
  // The longest the call may take, whatever the tool's own timeout (the session's
  // maxDuration left).
  std::chrono::milliseconds max_time = std::chrono::milliseconds::max();
};

}  // namespace agentry::tools
