// runtime/tools/memory_tools.cc — see memory_tools.h.
#include "runtime/tools/memory_tools.h"

namespace agentry::tools {
namespace {

namespace statepb = agentry::state::v1;

constexpr int kRecallLimit = 5;

ToolRun Failed(const Status& s) {
  ToolRun run;
  run.ok = false;
  run.error = s.message();
  return run;
}

ToolRun JsonBody(const nlohmann::json& value) {
  ToolRun run;
  run.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return run;
}

}  // namespace

nlohmann::json RememberParameters() {
  return {{"type", "object"},
          {"properties", {{"text", {{"type", "string"}, {"minLength", 1u}, {"maxLength", 2000u}}}}},
          {"required", {"text"}}};
}

nlohmann::json RecallParameters() {
  return {{"type", "object"},
          {"properties", {{"query", {{"type", "string"}, {"minLength", 1u}, {"maxLength", 200u}}}}},
          {"required", {"query"}}};
}

std::string MemoryTools::Scope(const ToolContext& context) const {
  std::string scope = "agent:" + context.agent;
  if (!shared_) scope += "/user:" + context.on_behalf_of;
  return scope;
}

ToolRun MemoryTools::Remember(const nlohmann::json& arguments, const ToolContext& context) const {
  if (!arguments.contains("text") || !arguments["text"].is_string()) {
    return Failed(InvalidArgumentError("remember needs a string \"text\""));
  }
  statepb::PutMemoryRequest put;
  put.set_scope(Scope(context));
  put.set_content(arguments["text"].get<std::string>());
  StatusOr<statepb::MemoryEntry> entry = state_->PutMemory(put);
  if (!entry.ok()) return Failed(entry.status());
  return JsonBody({{"remembered", true}, {"id", entry->id()}});
}

ToolRun MemoryTools::Recall(const nlohmann::json& arguments, const ToolContext& context) const {
  if (!arguments.contains("query") || !arguments["query"].is_string()) {
    return Failed(InvalidArgumentError("recall needs a string \"query\""));
  }
  statepb::SearchMemoryRequest search;
  search.set_scope(Scope(context));
  search.set_query(arguments["query"].get<std::string>());
  search.set_limit(kRecallLimit);
  StatusOr<statepb::SearchMemoryResponse> found = state_->SearchMemory(search);
  if (!found.ok()) return Failed(found.status());
  nlohmann::json memories = nlohmann::json::array();
  for (const statepb::MemoryEntry& e : found->entries()) {
    memories.push_back({{"text", e.content()}, {"score", e.score()}});
  }
  return JsonBody({{"memories", memories}});
}

}  // namespace agentry::tools
