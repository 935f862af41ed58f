// train/agent_eval.h — does the trained model do the agent's job? Measured on held-out
// conversations (unseen names, numbers and phrasings) through the engine, as the runtime will
// run it: greedy decoding, and once the model opens a <tool_call>, the rest of the call
// decoded under the tools' JSON schemas through the engine's token mask (nodeagent/constrain).
//
// Each conversation's history is the ground truth up to the assistant message under test
// (teacher forcing), so one early mistake does not hide every later figure. The figures:
//   tool choice  — a message that should call a tool calls the right one
//   arguments    — and its arguments are exactly the expected JSON
//   key fact     — an answer after a tool result states the result's key fact
//   recall       — an answer states what the user said in an earlier turn
//   no tool      — a message that should not call a tool does not
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace agentry::train {

struct AgentEvalCase {
  std::string kind;    // "tool", "key_fact", "recall", "no_tool"
  std::string before;  // the message the model answers: "user: ..." or "tool: ..."
  bool passed = false;
  std::string expected;
  std::string generated;
};

struct AgentEvalOptions {
  std::string model;            // GGUF file
  int32_t conversations = 200;  // held-out conversations 0..n-1
  int threads = 1;
  uint64_t seed = 1;        // the corpus seed
  int32_t max_tokens = 96;  // per generated message
  std::function<void(const AgentEvalCase&)> on_case;
};

struct Figure {
  int64_t passed = 0;
  int64_t total = 0;
  double rate() const { return total == 0 ? 0.0 : static_cast<double>(passed) / total; }
};

struct AgentEvalReport {
  Figure tool_choice, arguments, key_fact, recall, no_tool;
  int64_t conversations = 0;
  int64_t generated_tokens = 0;
  double seconds = 0.0;
};

StatusOr<AgentEvalReport> EvaluateAgent(const AgentEvalOptions& options);
// One line per figure, with the target beside it.
std::string FormatReport(const AgentEvalReport& report);
nlohmann::json ReportJson(const AgentEvalReport& report);

}  // namespace agentry::train
