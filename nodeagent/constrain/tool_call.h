// nodeagent/constrain/tool_call.h — the grammar of one tool call, for a given set of tools:
// the JSON object a model writes after the call's opening tag, then the closing tag.
//
//   {"name":"get_ticket","arguments":{"id":4821}}</tool_call>
//
// The name is one of the tools' (written as nlohmann::json writes it), the arguments a value
// of that tool's parameters schema (json_schema.h), name first. As everywhere in constrained
// JSON, one optional space may follow each ':' and ',', so {"name": "x", "arguments": {}}
// fits too. The node daemon applies it to a reply that opens with the tag (GenerateRequest's
// tool_calls); the runtime checks a call against it before running the tool.
//
//   StatusOr<Grammar> g = ToolCallGrammar({{"get_ticket", schema}}, "</tool_call>");
//   Matcher m(*g);  // start constraining once the model has written "<tool_call>"
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "nodeagent/constrain/grammar.h"

namespace agentry::constrain {

// A tool as the constraint sees it: its name and the JSON schema of its arguments.
struct ToolSchema {
  std::string name;
  nlohmann::json parameters;  // an object schema; null or {} when the tool takes no arguments
};

// InvalidArgument for no tools, an empty or repeated name, or a parameters schema that
// CompileJsonSchema refuses or that allows non-objects; messages name the tool:
// "tools[1] (jira_search).parameters.properties.q.pattern: unsupported keyword". A null
// parameters schema, or `{}`, means the tool takes no arguments: they must be {}. `close`
// (the closing tag) may be empty.
StatusOr<Grammar> ToolCallGrammar(const std::vector<ToolSchema>& tools, std::string_view close);

// ToolCallGrammar, remembered by its tools and closing tag. The runtime sends an agent's
// tools with every Generate of a tool loop; compiling them takes 150 us for two tools and
// 760 us for eight, a remembered grammar about 1 % of that (bench/constrain_bench.cc,
// PERFORMANCE.md), since a Grammar shares its nodes. Errors are not remembered. Thread-safe;
// the oldest entry goes when `capacity` is reached.
class ToolCallGrammarCache {
 public:
  explicit ToolCallGrammarCache(size_t capacity = 64) : capacity_(capacity) {}

  StatusOr<Grammar> Get(const std::vector<ToolSchema>& tools, std::string_view close);

  size_t size() const;
  int64_t compiled() const;  // grammars compiled (cache misses), errors included

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Grammar> grammars_;
  std::deque<std::string> order_;  // keys, oldest first
  int64_t compiled_ = 0;
};

}  // namespace agentry::constrain
