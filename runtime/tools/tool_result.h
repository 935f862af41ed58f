// runtime/tools/tool_result.h — a tool's result as the model reads it, and as the audit log
// records it.
//
// A tool's output is data from outside the agent's trust boundary: it may be huge, not
// UTF-8, or written to look like instructions. So the model reads it as one compact JSON
// value in a "tool" message:
//   - a JSON body that fits is passed as JSON (re-encoded, so it is compact and valid);
//   - anything else becomes {"text":"...","truncated":true,"bytes":N}: invalid UTF-8 replaced
//     with U+FFFD, cut at the prompt limit with the marker fields saying how much was kept;
//   - a failure is {"error":"..."} (an HTTP error status also carries the body);
//   - every '<' is written \u003c, so no result can contain a chat-template tag or a
//     "<tool_call>" the model might take for its own.
#pragma once

#include <cstdint>
#include <string>

namespace agentry::tools {

// What a tool produced, before it is rendered for the model.
struct ToolRun {
  bool ok = true;
  std::string error{};     // when !ok: why
  std::string body{};      // the result's bytes (an HTTP body, a JSON document)
  int http_status = 0;     // HTTP tools
  bool truncated = false;  // the source had more than the tool's response cap
};

// What the runtime keeps of a finished call.
struct ToolOutcome {
  std::string content;  // the "tool" message the model reads
  bool ok = true;
  std::string error;
  int64_t bytes = 0;       // size of the raw result
  std::string digest;      // hex SHA-256 of the raw result
  bool truncated = false;  // cut at the response cap or the prompt limit
  int http_status = 0;
  int64_t duration_ms = 0;
};

// Renders `run` for the model (header comment), keeping at most `max_prompt_bytes` of a
// textual body.
ToolOutcome RenderToolRun(const ToolRun& run, size_t max_prompt_bytes);

// A failure before or instead of running the tool ("egress ... denied", "denied by alice:
// ..."), rendered the same way.
ToolOutcome ToolError(const std::string& message);

}  // namespace agentry::tools
