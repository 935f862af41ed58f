#include "cli/validate.h"

#include <cstdio>
#include <sstream>

#include "common/config/agent_spec.h"
#include "common/file.h"
#include "nodeagent/constrain/tool_call.h"

namespace agentry::cli {
namespace {

// Checks every ManagedAgent in one file; other kinds (a Service beside the agent in a GitOps
// file) are listed as skipped.
bool ValidateFile(const std::string& path) {
  StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) {
    std::printf("%s\n", text.status().message().c_str());
    return false;
  }
  StatusOr<std::vector<YAML::Node>> docs = config::ParseYamlDocuments(*text, path);
  if (!docs.ok()) {
    std::printf("%s\n", docs.status().message().c_str());
    return false;
  }
  bool all_ok = true;
  int agents = 0;
  for (size_t i = 0; i < docs->size(); ++i) {
    const YAML::Node& doc = (*docs)[i];
    const std::string where =
        docs->size() > 1 ? path + " (document " + std::to_string(i + 1) + ")" : path;
    const YAML::Node kind = doc.IsMap() ? doc["kind"] : YAML::Node();
    if (kind.IsScalar() && kind.Scalar() != config::kAgentKind) {
      std::printf("%s: skipped (kind %s)\n", where.c_str(), kind.Scalar().c_str());
      continue;
    }
    ++agents;
    StatusOr<config::ManagedAgent> agent = config::DecodeManagedAgent(doc);
    if (agent.ok()) {
      // The tools' schemas must compile into the call constraint, as the runtime will.
      // (MCP and builtin tools bring their own schemas: checked as taking none here, which
      // keeps the indexes in messages those of spec.tools.)
      std::vector<constrain::ToolSchema> schemas;
      for (const config::ToolSpec& t : agent->spec.tools) {
        const bool own = t.mcp.has_value() || !t.builtin.empty();
        schemas.push_back({t.name, own ? nlohmann::json() : t.parameters});
      }
      if (!schemas.empty()) {
        if (StatusOr<constrain::Grammar> call = constrain::ToolCallGrammar(schemas, "");
            !call.ok()) {
          agent = InvalidArgumentError("spec." + call.status().message());
        }
      }
    }
    if (agent.ok()) {
      std::printf("%s: ok (ManagedAgent %s/%s)\n", where.c_str(),
                  agent->metadata.namespace_name.c_str(), agent->metadata.name.c_str());
      continue;
    }
    all_ok = false;
    std::printf("%s: invalid\n", where.c_str());
    std::istringstream lines(agent.status().message());
    for (std::string line; std::getline(lines, line);) std::printf("  %s\n", line.c_str());
  }
  if (agents == 0) {
    std::printf("%s: no ManagedAgent documents\n", path.c_str());
    return false;
  }
  return all_ok;
}

}  // namespace

int RunValidate(const std::vector<std::string>& files) {
  bool ok = true;
  for (const std::string& file : files) ok = ValidateFile(file) && ok;
  return ok ? 0 : 1;
}

}  // namespace agentry::cli
