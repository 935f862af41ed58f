// operator/status.h — the ManagedAgent's status as the operator writes it: conditions with
// reasons (Kubernetes API conventions: a transition time that moves only when the status
// does), and whether a desired object is already in place.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace agentry::operator_ {

using Json = nlohmann::json;

// Sets condition `type` in `conditions` (an array, possibly null) to status/reason/message
// for `generation`; lastTransitionTime is `now` when the status changes, else kept.
void SetCondition(Json* conditions, const std::string& type, bool status, const std::string& reason,
                  const std::string& message, int64_t generation, const std::string& now);

// Whether `actual` already holds everything `desired` says: every key of an object with an
// equal value (recursively), every list of the same length with each element covered, every
// scalar equal. What the API server adds (defaults, metadata, status) is ignored, so an
// object that needs no change needs no request.
bool Covers(const Json& actual, const Json& desired);

// metav1.MicroTime: RFC 3339 UTC with microseconds ("2026-12-07T04:37:46.123456Z"), as Events
// and Leases have it.
std::string MicroTime(std::chrono::system_clock::time_point t);

// RFC 3339 UTC, seconds ("2026-12-07T04:37:46Z"), as metav1.Time has it.
std::string NowRfc3339();

}  // namespace agentry::operator_
