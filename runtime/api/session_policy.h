// runtime/api/session_policy.h — the spec's session limits (spec.sessions), decided from a
// session's record and the clock; the routes turn the answers into HTTP.
//
//   maxConcurrent  sessions open at once: active or waiting for approval, and used within
//                  idleTimeout. A new
//                  session beyond it is RESOURCE_EXHAUSTED (429) with the seconds until the
//                  least recently used one idles out (Retry-After).
//   idleTimeout    a session unused this long expires: its next message is refused and it is
//                  marked "expired"; it no longer counts against maxConcurrent.
//   maxDuration    a session older than this expires the same way; a turn still running at
//                  that moment ends with finish_reason budget_exhausted.
//   maxTurns       a session with this many turns takes no more messages.
// Refusals for maxDuration and maxTurns start "budget_exhausted:", as the token budgets' do.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agentry/state/v1/state.pb.h"

#include "common/status.h"

namespace agentry::api {

struct SessionLimits {
  int64_t max_concurrent = 8;
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(15);
  std::chrono::milliseconds max_duration = std::chrono::hours(2);
  int64_t max_turns = 50;
  // A call paused for approval this long is settled as denied by the next message.
  std::chrono::milliseconds approval_timeout = std::chrono::hours(1);
};

class SessionPolicy {
 public:
  explicit SessionPolicy(SessionLimits limits) : limits_(limits) {}

  // OK when a new session may open beside `sessions` (the active ones); otherwise
  // RESOURCE_EXHAUSTED, with `*retry_after_seconds` set.
  Status MayOpen(const std::vector<agentry::state::v1::Session>& sessions, int64_t now_ms,
                 int64_t* retry_after_seconds) const;
  // Why `session` has expired ("idle for 15m0s", "older than maxDuration 2h0m0s"), or "".
  std::string Expiry(const agentry::state::v1::Session& session, int64_t now_ms) const;
  // When `session` reaches maxDuration (unix ms).
  int64_t Deadline(const agentry::state::v1::Session& session) const;
  // OK when `session`, with `turns` turns so far, may take another message.
  Status MayTakeTurn(const agentry::state::v1::Session& session, int64_t turns,
                     int64_t now_ms) const;

  const SessionLimits& limits() const { return limits_; }

 private:
  SessionLimits limits_;
};

}  // namespace agentry::api
