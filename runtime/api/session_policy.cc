#include "runtime/api/session_policy.h"

#include <algorithm>

namespace agentry::api {
namespace {

namespace statepb = agentry::state::v1;

std::string Seconds(std::chrono::milliseconds d) { return std::to_string(d.count() / 1000) + "s"; }

}  // namespace

std::string SessionPolicy::Expiry(const statepb::Session& session, int64_t now_ms) const {
  if (now_ms - session.updated_unix_ms() > limits_.idle_timeout.count()) {
    return "idle longer than idleTimeout (" + Seconds(limits_.idle_timeout) + ")";
  }
  if (now_ms >= Deadline(session)) {
    return "older than maxDuration (" + Seconds(limits_.max_duration) + ")";
  }
  return "";
}

int64_t SessionPolicy::Deadline(const statepb::Session& session) const {
  return session.created_unix_ms() + limits_.max_duration.count();
}

Status SessionPolicy::MayOpen(const std::vector<statepb::Session>& sessions, int64_t now_ms,
                              int64_t* retry_after_seconds) const {
  int64_t open = 0;
  int64_t soonest_ms = limits_.idle_timeout.count();
  for (const statepb::Session& s : sessions) {
    if ((s.state() != "active" && s.state() != "waiting_approval") || !Expiry(s, now_ms).empty()) {
      continue;
    }
    ++open;
    const int64_t idle_in = s.updated_unix_ms() + limits_.idle_timeout.count() - now_ms;
    const int64_t over_in = s.created_unix_ms() + limits_.max_duration.count() - now_ms;
    soonest_ms = std::min(soonest_ms, std::min(idle_in, over_in));
  }
  if (open < limits_.max_concurrent) return OkStatus();
  *retry_after_seconds = std::max<int64_t>(1, (soonest_ms + 999) / 1000);
  return ResourceExhaustedError("this agent has " + std::to_string(open) +
                                " open sessions, its maxConcurrent; retry in " +
                                std::to_string(*retry_after_seconds) + " s");
}

Status SessionPolicy::MayTakeTurn(const statepb::Session& session, int64_t turns,
                                  int64_t now_ms) const {
  if (session.state() != "active") {
    return FailedPreconditionError("session " + session.id() + ": " + session.state());
  }
  // maxDuration and maxTurns are budgets: their errors name themselves the way the token
  // budgets' do, so a client tells "start a new session" from any other refusal.
  if (now_ms >= Deadline(session)) {
    return FailedPreconditionError("budget_exhausted: session " + session.id() +
                                   " is older than its maxDuration (" +
                                   Seconds(limits_.max_duration) + "); start a new session");
  }
  if (const std::string why = Expiry(session, now_ms); !why.empty()) {
    return FailedPreconditionError("session " + session.id() + ": expired, " + why);
  }
  if (turns >= limits_.max_turns) {
    return FailedPreconditionError("budget_exhausted: session " + session.id() +
                                   " has taken its maxTurns (" + std::to_string(limits_.max_turns) +
                                   ") turns; start a new session");
  }
  return OkStatus();
}

}  // namespace agentry::api
