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

}  // namespace
}  // namespace agentry::api
