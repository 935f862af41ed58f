// runtime/api/token_budget.h — the spec's token budgets (spec.budget), decided from the state
// sidecar's usage counters; the session API turns the answers into HTTP.
//
//   tokensPerSession  prompt plus completion tokens one session may use. A session that has
//                     used them takes no more messages (400: start a new session).
//   tokensPerDay      the same for the whole agent per UTC day (the state volume's day
//                     counters). Used up, every turn is refused until midnight UTC (429 with
//                     Retry-After). Each replica has a state volume of its own, so with
//                     spec.replicas N each replica allows tokensPerDay / N: the agent as a
//                     whole can never spend more than its budget, at the price of one busy
//                     replica stopping while another still has tokens (docs/api.md).
// A turn that starts within both may generate at most what is left of the tighter one; one
// cut short by it ends with finish reason budget_exhausted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace agentry::api {

struct TokenBudgets {
  std::optional<int64_t> per_session{};
  std::optional<int64_t> per_day{};
  int64_t replicas = 1;  // per_day is split evenly between them
};

struct BudgetAllowance {
  int64_t tokens = 0;  // what a turn may still use; 0 with `unlimited`
  bool unlimited = true;
};

class TokenBudget {
 public:
  explicit TokenBudget(TokenBudgets budgets) : budgets_(budgets) {}

  bool enabled() const { return budgets_.per_session || budgets_.per_day; }
  // What a turn may use, given the tokens the session and the agent's day have used. A used
  // up budget is FAILED_PRECONDITION (the session's) or RESOURCE_EXHAUSTED (the day's, with
  // `*retry_after_seconds` until midnight UTC), naming the limit.
  StatusOr<BudgetAllowance> Allow(int64_t session_used, int64_t day_used, int64_t now_ms,
                                  int64_t* retry_after_seconds) const;

 private:
  TokenBudgets budgets_;
};

}  // namespace agentry::api
