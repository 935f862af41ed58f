// common/utc_day.h — the UTC calendar day of a time, "2026-12-06": the key of the state
// sidecar's day counters, which the runtime's day budget reads back, so both must use this.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace agentry {

inline std::string UtcDay(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char day[16];
  std::strftime(day, sizeof(day), "%Y-%m-%d", &tm);
  return day;
}

// Today, by the system clock.
inline std::string UtcToday() {
  return UtcDay(std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count());
}

}  // namespace agentry
