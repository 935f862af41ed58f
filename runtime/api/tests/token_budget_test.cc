#include "runtime/api/token_budget.h"

#include <gtest/gtest.h>

#include "common/utc_day.h"

namespace agentry::api {
namespace {

constexpr int64_t kNoon = int64_t{1764979200000} + int64_t{12} * 3600 * 1000;  // 2025-12-06

TEST(TokenBudgetTest, TheTighterBudgetBindsAndAUsedUpOneSaysWhichAndWhen) {
  int64_t retry = 0;
  EXPECT_TRUE(TokenBudget({}).Allow(1000000, 1000000, kNoon, &retry)->unlimited);
  const TokenBudget both({.per_session = 100, .per_day = 1000});
  StatusOr<BudgetAllowance> a = both.Allow(30, 500, kNoon, &retry);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->unlimited);
  EXPECT_EQ(a->tokens, 70);
  EXPECT_EQ(both.Allow(30, 950, kNoon, &retry)->tokens, 50);
  const Status session = both.Allow(100, 0, kNoon, &retry).status();
  EXPECT_EQ(session.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(session.message().find("tokensPerSession budget (100 of 100 tokens)"),
            std::string::npos);
  retry = 0;
  const Status day = both.Allow(0, 1200, kNoon, &retry).status();
  EXPECT_EQ(day.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(day.message().find("tokensPerDay budget (1200 of 1000 tokens today)"),
            std::string::npos);
  EXPECT_EQ(retry, 12 * 3600);  // noon to midnight UTC
  EXPECT_EQ(UtcDay(kNoon), "2025-12-06");
  EXPECT_EQ(UtcDay(kNoon + int64_t{12} * 3600 * 1000), "2025-12-07");
}

// Each replica counts the day in its own state volume, so each allows an even share: the
// agent as a whole never goes over tokensPerDay.
TEST(TokenBudgetTest, TheDayBudgetIsSharedEvenlyBetweenReplicas) {
  int64_t retry = 0;
  const TokenBudget three({.per_day = 3000, .replicas = 3});
  EXPECT_EQ(three.Allow(0, 400, kNoon, &retry)->tokens, 600);
  const Status used = three.Allow(0, 1000, kNoon, &retry).status();
  EXPECT_EQ(used.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(used.message(),
            "budget_exhausted: the agent has used its tokensPerDay budget (1000 of 1000 tokens "
            "today on this replica, its share of 3000 for 3 replicas); it resets at 00:00 UTC");
  // Fewer tokens than replicas: no replica may spend any.
  EXPECT_EQ(TokenBudget({.per_day = 2, .replicas = 3}).Allow(0, 0, kNoon, &retry).status().code(),
            StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace agentry::api
