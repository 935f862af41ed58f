// operator/usage.h — the agent's usage and its BudgetExhausted condition, summed from what
// its runtime pods report in status.runtimes.
//
// Each runtime pod applies its own element of status.runtimes (keyed by pod, under the field
// manager agentry-runtime-POD): its open sessions, its counters for a UTC day, and whether it
// refuses turns because its share of spec.budget.tokensPerDay is used up. The operator owns
// status.usage and the conditions, so one writer decides each condition. Only the pods the
// StatefulSet wants now are counted (NAME-0 .. NAME-(replicas-1)): a pod scaled away leaves
// its element behind, and a stale element must not hold the agent's numbers up. Counters
// count only when they are for `today`; the runtime rewrites its element when its day rolls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace agentry::operator_ {

struct AgentUsage {
  nlohmann::json usage;  // {"sessions", "tokensToday", "toolCallsToday"}
  bool budget_exhausted = false;
  std::string reason;   // TokensPerDayExhausted, or WithinBudget
  std::string message;  // which pods refuse turns and why; else what is used of the budget
  // Which pods' node daemons cannot run the model, and why ("": none reported a problem).
  std::string model_error;
};

// `runtimes`: status.runtimes (an array, or null); `today`: YYYY-MM-DD (UTC).
AgentUsage SumRuntimeReports(const nlohmann::json& runtimes, const std::string& agent_name,
                             int64_t replicas, const std::string& today,
                             std::optional<int64_t> tokens_per_day);

}  // namespace agentry::operator_
