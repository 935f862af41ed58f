// operator/usage.cc — see usage.h.
#include "operator/usage.h"

#include <charconv>

namespace agentry::operator_ {
namespace {

using Json = nlohmann::json;

// Whether `pod` is NAME-i with 0 <= i < replicas: a pod the StatefulSet wants now.
bool IsWantedPod(const std::string& pod, const std::string& agent_name, int64_t replicas) {
  if (pod.size() <= agent_name.size() + 1 || pod.compare(0, agent_name.size(), agent_name) != 0 ||
      pod[agent_name.size()] != '-') {
    return false;
  }
  const char* first = pod.data() + agent_name.size() + 1;
  const char* last = pod.data() + pod.size();
  int64_t ordinal = -1;
  const auto [end, error] = std::from_chars(first, last, ordinal);
  return error == std::errc() && end == last && ordinal >= 0 && ordinal < replicas;
}

int64_t Count(const Json& report, const char* field) {
  const auto it = report.find(field);
  return it != report.end() && it->is_number_integer() && it->get<int64_t>() > 0
             ? it->get<int64_t>()
             : 0;
}

}  // namespace

AgentUsage SumRuntimeReports(const Json& runtimes, const std::string& agent_name, int64_t replicas,
                             const std::string& today, std::optional<int64_t> tokens_per_day) {
  int64_t sessions = 0;
  int64_t tokens = 0;
  int64_t tool_calls = 0;
  std::string refusing;
  std::string model_error;
  if (runtimes.is_array()) {
    for (const Json& report : runtimes) {
      if (!report.is_object()) continue;
      const std::string pod = report.value("pod", "");
      if (!IsWantedPod(pod, agent_name, replicas)) continue;
      sessions += Count(report, "sessions");
      if (const std::string error = report.value("modelError", ""); !error.empty()) {
        model_error += (model_error.empty() ? "" : "; ") + pod + ": " + error;
      }
      if (report.value("day", "") != today) continue;  // yesterday's counters
      tokens += Count(report, "tokensToday");
      tool_calls += Count(report, "toolCallsToday");
      if (report.value("budgetExhausted", false)) {
        refusing += (refusing.empty() ? "" : "; ") + pod + ": " +
                    report.value("message", "its share of spec.budget.tokensPerDay is used up");
      }
    }
  }
  AgentUsage out;
  out.model_error = model_error;
  out.usage = {{"sessions", sessions}, {"tokensToday", tokens}, {"toolCallsToday", tool_calls}};
  if (!refusing.empty()) {
    out.budget_exhausted = true;
    out.reason = "TokensPerDayExhausted";
    out.message = refusing;
  } else {
    out.reason = "WithinBudget";
    out.message = tokens_per_day.has_value()
                      ? std::to_string(tokens) + " of " + std::to_string(*tokens_per_day) +
                            " tokens (spec.budget.tokensPerDay) used today (UTC)"
                      : std::to_string(tokens) +
                            " tokens used today (UTC); spec.budget.tokensPerDay is not set";
  }
  return out;
}

}  // namespace agentry::operator_
