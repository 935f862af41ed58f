// nodeagent/constrain/tool_call.cc — see tool_call.h.
#include "nodeagent/constrain/tool_call.h"

#include <set>
#include <string>

#include "nodeagent/constrain/json_schema.h"
#include "nodeagent/constrain/matcher.h"

namespace agentry::constrain {

namespace {

// Whether every text `g` matches is a JSON object: '{' is the only byte that can start one.
// Callers insist on object arguments, so a schema that allows anything else (a bare
// string, `{"type": ["object", "null"]}`) cannot describe a tool's parameters.
bool OnlyObjects(const Grammar& g) {
  const Matcher start(g);
  if (start.IsComplete()) return false;
  for (int c = 0; c < 256; ++c) {
    Matcher m = start;
    if (m.Advance(static_cast<unsigned char>(c)) != (c == '{')) return false;
  }
  return true;
}

}  // namespace

StatusOr<Grammar> ToolCallGrammar(const std::vector<ToolSchema>& tools, std::string_view close) {
  if (tools.empty()) return InvalidArgumentError("tools: a tool call needs at least one tool");
  std::set<std::string> names;
  std::vector<Grammar> calls;
  for (size_t i = 0; i < tools.size(); ++i) {
    const ToolSchema& tool = tools[i];
    const std::string where = "tools[" + std::to_string(i) + "] (" + tool.name + ")";
    if (tool.name.empty()) return InvalidArgumentError(where + ".name: must not be empty");
    if (!names.insert(tool.name).second) {
      return InvalidArgumentError(where + ".name: another tool has this name");
    }
    std::string quoted;
    try {
      quoted = nlohmann::json(tool.name).dump();  // as the runtime renders a call
    } catch (const nlohmann::json::exception&) {
      return InvalidArgumentError(where + ".name: not valid UTF-8");
    }
    const nlohmann::json& parameters = tool.parameters;
    Grammar arguments = Grammar::Literal("{}");
    if (!parameters.is_null() && !(parameters.is_object() && parameters.empty())) {
      AGENTRY_ASSIGN_OR_RETURN(arguments, CompileJsonSchema(parameters, where + ".parameters"));
      if (!OnlyObjects(arguments)) {
        return InvalidArgumentError(where +
                                    ".parameters: must describe a JSON object (tool arguments "
                                    "are an object; use \"type\": \"object\")");
      }
    }
    calls.push_back(
        Grammar::Sequence({Grammar::Literal(quoted + ","), Grammar::JsonSpace(),
                           Grammar::Literal("\"arguments\":"), Grammar::JsonSpace(), arguments}));
  }
  return Grammar::Sequence({Grammar::Literal("{\"name\":"), Grammar::JsonSpace(),
                            Grammar::Choice(std::move(calls)), Grammar::Literal("}"),
                            Grammar::Literal(close)});
}

StatusOr<Grammar> ToolCallGrammarCache::Get(const std::vector<ToolSchema>& tools,
                                            std::string_view close) {
  // The key holds every byte the grammar depends on; names and schemas are separated by a
  // byte that neither a dumped schema nor the close tag's position can make ambiguous.
  std::string key(close);
  for (const ToolSchema& tool : tools) {
    key += '\0';
    key += tool.name;
    key += '\0';
    key += tool.parameters.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (const auto it = grammars_.find(key); it != grammars_.end()) return it->second;
    ++compiled_;
  }
  StatusOr<Grammar> grammar = ToolCallGrammar(tools, close);  // outside the lock: ~1 ms
  if (!grammar.ok() || capacity_ == 0) return grammar;
  std::lock_guard<std::mutex> lock(mu_);
  if (grammars_.emplace(key, *grammar).second) {
    order_.push_back(std::move(key));
    if (order_.size() > capacity_) {
      grammars_.erase(order_.front());
      order_.pop_front();
    }
  }
  return grammar;
}

size_t ToolCallGrammarCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return grammars_.size();
}

int64_t ToolCallGrammarCache::compiled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return compiled_;
}

}  // namespace agentry::constrain
