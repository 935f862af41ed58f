// bench/constrain_bench.cc — what a tool-loop Generate pays for its tools' grammar.
//
// The runtime sends an agent's tools with every Generate; the node daemon compiles them into
// the tool-call grammar (nodeagent/constrain/tool_call.h) or takes it from its cache. Each is
// measured for the triage agent's two tools and for eight, and the table at the end prints
// cached / compiled.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include "nodeagent/constrain/tool_call.h"

namespace {

using agentry::constrain::ToolCallGrammar;
using agentry::constrain::ToolCallGrammarCache;
using agentry::constrain::ToolSchema;

// get_ticket and jira_search as the triage agent declares them, then copies of jira_search.
std::vector<ToolSchema> Tools(int64_t n) {
  std::vector<ToolSchema> tools = {
      {"get_ticket", nlohmann::json::parse(R"({"type":"object",
          "properties":{"id":{"type":"integer"}},"required":["id"]})")},
      {"jira_search", nlohmann::json::parse(R"({"type":"object","properties":{
          "query":{"type":"string"},"limit":{"type":"integer"},
          "fields":{"type":"array","items":{"type":"string","enum":["status","owner","team"]}}},
          "required":["query"]})")}};
  for (int64_t i = 2; i < n; ++i) {
    tools.push_back({"jira_search_" + std::to_string(i), tools[1].parameters});
  }
  return tools;
}

void BM_Compile(benchmark::State& state) {
  const std::vector<ToolSchema> tools = Tools(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(ToolCallGrammar(tools, "</tool_call>"));
}
void BM_Cached(benchmark::State& state) {
  const std::vector<ToolSchema> tools = Tools(state.range(0));
  ToolCallGrammarCache cache;
  for (auto _ : state) benchmark::DoNotOptimize(cache.Get(tools, "</tool_call>"));
}
BENCHMARK(BM_Compile)->Arg(2)->Arg(8)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Cached)->Arg(2)->Arg(8)->Unit(benchmark::kMicrosecond);

class Table : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) times_[r.benchmark_name()] = r.GetAdjustedRealTime();
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\n| tools | compiled | cached | cached / compiled |\n|---|---|---|---|\n");
    for (const char* n : {"2", "8"}) {
      const double compiled = times_[std::string("BM_Compile/") + n];
      const double cached = times_[std::string("BM_Cached/") + n];
      std::printf("| %s | %.1f us | %.2f us | %.4f |\n", n, compiled, cached, cached / compiled);
    }
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  Table table;
  benchmark::RunSpecifiedBenchmarks(&table);
  return 0;
}
