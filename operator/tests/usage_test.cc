// The agent's usage and BudgetExhausted, summed from its runtime pods' reports: only the pods
// the StatefulSet wants, only today's counters, and a message that names the refusing pods.
#include "operator/usage.h"

#include <gtest/gtest.h>

namespace agentry::operator_ {
namespace {

using Json = nlohmann::json;

TEST(UsageTest, SumsTheWantedPodsAndOnlyTodaysCounters) {
  const Json runtimes = Json::parse(R"([
    {"pod": "triage-0", "day": "2026-12-07", "sessions": 2, "tokensToday": 100,
     "toolCallsToday": 3},
    {"pod": "triage-1", "day": "2026-12-06", "sessions": 1, "tokensToday": 900,
     "budgetExhausted": true, "message": "yesterday"},
    {"pod": "triage-2", "day": "2026-12-07", "sessions": 5, "tokensToday": 50},
    {"pod": "triage-x", "day": "2026-12-07", "sessions": 5, "tokensToday": 50},
    {"pod": "triage-01x", "day": "2026-12-07", "sessions": 5},
    {"pod": "other-0", "day": "2026-12-07", "sessions": 5, "tokensToday": 50},
    {"pod": "triage-1", "day": "2026-12-07", "sessions": -4, "tokensToday": "lots"}
  ])");
  const AgentUsage usage = SumRuntimeReports(runtimes, "triage", 2, "2026-12-07", 1000);
  // triage-0 in full, triage-1's open sessions (yesterday's counters and exhaustion do not
  // count), nothing from triage-2 (scaled away), other names or bad numbers.
  EXPECT_EQ(usage.usage, (Json{{"sessions", 3}, {"tokensToday", 100}, {"toolCallsToday", 3}}));
  EXPECT_FALSE(usage.budget_exhausted);
  EXPECT_EQ(usage.reason, "WithinBudget");
  EXPECT_EQ(usage.message, "100 of 1000 tokens (spec.budget.tokensPerDay) used today (UTC)");

  const AgentUsage unlimited = SumRuntimeReports(runtimes, "triage", 1, "2026-12-07", {});
  EXPECT_EQ(unlimited.message, "100 tokens used today (UTC); spec.budget.tokensPerDay is not set");
  const AgentUsage suspended = SumRuntimeReports(runtimes, "triage", 0, "2026-12-07", 1000);
  EXPECT_EQ(suspended.usage["sessions"], 0);
  const AgentUsage none = SumRuntimeReports(nullptr, "triage", 2, "2026-12-07", 1000);
  EXPECT_EQ(none.usage, (Json{{"sessions", 0}, {"tokensToday", 0}, {"toolCallsToday", 0}}));
}

TEST(UsageTest, AnyWantedPodRefusingTurnsExhaustsTheAgentAndIsNamed) {
  const Json runtimes = Json::parse(R"([
    {"pod": "a-0", "day": "2026-12-07", "tokensToday": 500, "budgetExhausted": true,
     "message": "budget_exhausted: 500 of 500"},
    {"pod": "a-1", "day": "2026-12-07", "tokensToday": 10},
    {"pod": "a-2", "day": "2026-12-07", "tokensToday": 500, "budgetExhausted": true,
     "modelError": "no model m"},
    {"pod": "a-3", "day": "2026-12-07", "modelError": "scaled away"}
  ])");
  const AgentUsage usage = SumRuntimeReports(runtimes, "a", 3, "2026-12-07", 1500);
  EXPECT_TRUE(usage.budget_exhausted);
  EXPECT_EQ(usage.reason, "TokensPerDayExhausted");
  EXPECT_EQ(usage.message,
            "a-0: budget_exhausted: 500 of 500; a-2: its share of spec.budget.tokensPerDay is "
            "used up");
  EXPECT_EQ(usage.usage["tokensToday"], 1010);
  EXPECT_EQ(usage.model_error, "a-2: no model m");
}

}  // namespace
}  // namespace agentry::operator_
