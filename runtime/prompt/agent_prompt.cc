// runtime/prompt/agent_prompt.cc — see agent_prompt.h.
#include "runtime/prompt/agent_prompt.h"

#include <set>

namespace agentry::runtime {
namespace {

// "integer", "string", ... or "any" when the schema does not say.
std::string TypeName(const nlohmann::json& schema) {
  if (schema.is_object()) {
    auto type = schema.find("type");
    if (type != schema.end() && type->is_string()) return type->get<std::string>();
    if (schema.contains("enum")) return "enum";
  }
  return "any";
}

// "id: integer, note?: string" for an object schema's properties.
std::string Signature(const nlohmann::json& parameters) {
  if (!parameters.is_object()) return "";
  auto properties = parameters.find("properties");
  if (properties == parameters.end() || !properties->is_object()) return "";
  std::set<std::string> required;
  auto req = parameters.find("required");
  if (req != parameters.end() && req->is_array()) {
    for (const auto& name : *req) {
      if (name.is_string()) required.insert(name.get<std::string>());
    }
  }
  std::string out;
  for (auto it = properties->begin(); it != properties->end(); ++it) {
    if (!out.empty()) out += ", ";
    out += it.key();
    if (required.count(it.key()) == 0) out += "?";
    out += ": " + TypeName(it.value());
  }
  return out;
}

// The offset just past the JSON object or array that opens at `at`, not counting brackets
// inside strings; npos when it does not close.
size_t JsonEnd(std::string_view s, size_t at) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = at; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

}  // namespace

std::string RenderSystemPrompt(std::string_view instructions, const std::vector<ToolDecl>& tools) {
  std::string out(instructions);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (tools.empty()) return out;
  out += "\n\nTools:";
  for (const ToolDecl& tool : tools) {
    out += "\n- " + tool.name + "(" + Signature(tool.parameters) + ")";
    if (!tool.description.empty()) out += ": " + tool.description;
    if (tool.requires_approval) out += " Needs approval.";
  }
  return out;
}

std::string RenderToolCall(std::string_view name, const nlohmann::json& arguments) {
  std::string out(kToolCallOpen);
  out += "{\"name\":" + nlohmann::json(std::string(name)).dump() +
         ",\"arguments\":" + arguments.dump() + "}";
  out += kToolCallClose;
  return out;
}

StatusOr<ToolCall> ParseToolCall(std::string_view message) {
  size_t start = 0;
  while (start < message.size() && IsSpace(message[start])) ++start;
  if (message.substr(start, kToolCallOpen.size()) != kToolCallOpen) {
    return NotFoundError("not a tool call");
  }
  const size_t body = start + kToolCallOpen.size();
  // The call ends after its JSON object, so that a "</tool_call>" inside one of the object's
  // strings (an argument copied from the user) does not cut it short; failing that, at the
  // first "</tool_call>", and the JSON parse below reports what is wrong.
  size_t close = std::string_view::npos;
  size_t json = body;
  while (json < message.size() && IsSpace(message[json])) ++json;
  if (json < message.size() && message[json] == '{') {
    size_t end = JsonEnd(message, json);
    while (end < message.size() && IsSpace(message[end])) ++end;
    if (end < message.size() && message.substr(end, kToolCallClose.size()) == kToolCallClose) {
      close = end;
    }
  }
  if (close == std::string_view::npos) close = message.find(kToolCallClose, body);
  if (close == std::string_view::npos) {
    return InvalidArgumentError("tool call at byte " + std::to_string(start) +
                                " is not closed by " + std::string(kToolCallClose));
  }
  nlohmann::json call = nlohmann::json::parse(message.substr(body, close - body), nullptr,
                                              /*allow_exceptions=*/false);
  const std::string where = "tool call at byte " + std::to_string(body);
  if (!call.is_object()) return InvalidArgumentError(where + ": not a JSON object");
  auto name = call.find("name");
  if (name == call.end() || !name->is_string()) {
    return InvalidArgumentError(where + ": \"name\" must be a string");
  }
  auto arguments = call.find("arguments");
  if (arguments == call.end() || !arguments->is_object()) {
    return InvalidArgumentError(where + ": \"arguments\" must be an object");
  }
  return ToolCall{name->get<std::string>(), *arguments};
}

}  // namespace agentry::runtime
