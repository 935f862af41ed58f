// runtime/tools/tool_result.cc — see tool_result.h.
#include "runtime/tools/tool_result.h"

#include <nlohmann/json.hpp>

#include "common/sha256.h"

namespace agentry::tools {
namespace {

// Objects keep the order the tool wrote their keys in: the model reads the result as the
// service sent it (an API's "id, title, status" stays in that order), not sorted.
using Json = nlohmann::ordered_json;

// The largest body parsed as JSON, as a multiple of the prompt limit. Parsing keeps key order
// with a linear search per key, so a huge object would be quadratic; a body this much larger
// than the limit would not fit re-encoded anyway (short of being mostly whitespace).
constexpr size_t kMaxParsedBodyFactor = 8;

// Compact JSON with invalid UTF-8 replaced and every '<' escaped ('<' can only stand inside
// a string in JSON text, where \u003c means the same).
std::string Encode(const Json& value) {
  const std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '<') {
      out += "\\u003c";
    } else {
      out += c;
    }
  }
  return out;
}

// The longest prefix of `text` of at most `max` bytes that does not split a UTF-8 sequence.
std::string_view CutUtf8(std::string_view text, size_t max) {
  if (text.size() <= max) return text;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

}  // namespace

ToolOutcome RenderToolRun(const ToolRun& run, size_t max_prompt_bytes) {
  ToolOutcome out;
  out.ok = run.ok;
  out.error = run.error;
  out.bytes = static_cast<int64_t>(run.body.size());
  out.digest = Sha256Hex(run.body);
  out.http_status = run.http_status;
  out.truncated = run.truncated;
  Json value;  // null: the body goes in as text
  if (run.ok && !run.truncated && run.body.size() <= kMaxParsedBodyFactor * max_prompt_bytes) {
    Json parsed = Json::parse(run.body, nullptr, false);
    if (!parsed.is_discarded()) value = std::move(parsed);
  }
  if (!run.ok && run.body.empty()) value = {{"error", run.error}};
  if (value.is_null() || Encode(value).size() > max_prompt_bytes) {
    std::string_view kept = CutUtf8(run.body, max_prompt_bytes);
    Json text{{"text", std::string(kept)}};
    if (kept.size() < run.body.size() || run.truncated) {
      out.truncated = true;
      text["truncated"] = true;
      text["bytes"] = run.truncated ? "more than " + std::to_string(run.body.size())
                                    : std::to_string(run.body.size());
    }
    if (!run.ok) text["error"] = run.error;
    value = std::move(text);
  }
  out.content = Encode(value);
  return out;
}

ToolOutcome ToolError(const std::string& message) {
  ToolRun run;
  run.ok = false;
  run.error = message;
  return RenderToolRun(run, 4096);
}

}  // namespace agentry::tools
