// runtime/api/token_budget.cc — see token_budget.h.
#include "runtime/api/token_budget.h"

#include <algorithm>

namespace agentry::api {

StatusOr<BudgetAllowance> TokenBudget::Allow(int64_t session_used, int64_t day_used, int64_t now_ms,
                                             int64_t* retry_after_seconds) const {
  BudgetAllowance allowance;
  if (budgets_.per_session) {
    const int64_t left = *budgets_.per_session - session_used;
    if (left <= 0) {
      return FailedPreconditionError(
          "budget_exhausted: this session has used its tokensPerSession budget (" +
          std::to_string(session_used) + " of " + std::to_string(*budgets_.per_session) +
          " tokens); start a new session");
    }
    allowance = {left, false};
  }
  if (budgets_.per_day) {
    const int64_t replicas = std::max<int64_t>(1, budgets_.replicas);
    const int64_t share = *budgets_.per_day / replicas;
    const int64_t left = share - day_used;
    if (left <= 0) {
      constexpr int64_t kDayMs = int64_t{86400} * 1000;
      *retry_after_seconds = (kDayMs - now_ms % kDayMs + 999) / 1000;
      const std::string where = replicas == 1 ? ""
                                              : " on this replica, its share of " +
                                                    std::to_string(*budgets_.per_day) + " for " +
                                                    std::to_string(replicas) + " replicas";
      return ResourceExhaustedError(
          "budget_exhausted: the agent has used its tokensPerDay budget (" +
          std::to_string(day_used) + " of " + std::to_string(share) + " tokens today" + where +
          "); it resets at 00:00 UTC");
    }
    allowance = {allowance.unlimited ? left : std::min(allowance.tokens, left), false};
  }
  return allowance;
}

}  // namespace agentry::api
