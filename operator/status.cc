// operator/status.cc — see status.h.
#include "operator/status.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace agentry::operator_ {

void SetCondition(Json* conditions, const std::string& type, bool status, const std::string& reason,
                  const std::string& message, int64_t generation, const std::string& now) {
  if (!conditions->is_array()) *conditions = Json::array();
  const std::string value = status ? "True" : "False";
  for (Json& c : *conditions) {
    if (c.value("type", "") != type) continue;
    if (c.value("status", "") != value) c["lastTransitionTime"] = now;
    c["status"] = value;
    c["reason"] = reason;
    c["message"] = message;
    c["observedGeneration"] = generation;
    return;
  }
  conditions->push_back({{"type", type},
                         {"status", value},
                         {"reason", reason},
                         {"message", message},
                         {"observedGeneration", generation},
                         {"lastTransitionTime", now}});
}

bool Covers(const Json& actual, const Json& desired) {
  if (desired.is_object()) {
    if (!actual.is_object()) return false;
    for (const auto& [key, value] : desired.items()) {
      const auto it = actual.find(key);
      if (it == actual.end() || !Covers(*it, value)) return false;
    }
    return true;
  }
  if (desired.is_array()) {
    if (!actual.is_array() || actual.size() != desired.size()) return false;
    for (size_t i = 0; i < desired.size(); ++i) {
      if (!Covers(actual[i], desired[i])) return false;
    }
    return true;
  }
  // The API server may write 2 where we wrote 2.0, or a quantity as we gave it: compare as
  // JSON values, with numbers by value.
  if (desired.is_number() && actual.is_number()) {
    return desired.get<double>() == actual.get<double>();
  }
  return actual == desired;
}

std::string MicroTime(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  const int64_t micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(micros));
  return buf;
}

std::string NowRfc3339() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace agentry::operator_
