// operator/leader_election.cc — see leader_election.h.
#include "operator/leader_election.h"

#include <cctype>
#include <charconv>
#include <ctime>
#include <string_view>
#include <thread>

#include "operator/status.h"

namespace agentry::operator_ {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::system_clock;

// A number of `width` digits at text[at]; -1 when they are not all digits.
int Digits(std::string_view text, size_t at, size_t width) {
  int value = -1;
  if (at + width > text.size()) return -1;
  const auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + width, value);
  return ec == std::errc() && end == text.data() + at + width ? value : -1;
}

// A MicroTime ("2026-12-07T04:37:46.123456Z") or Time back to a time point; the epoch
// (long expired) when it does not parse.
Clock::time_point ParseTime(std::string_view text) {
  std::tm tm{};
  tm.tm_year = Digits(text, 0, 4) - 1900;
  tm.tm_mon = Digits(text, 5, 2) - 1;
  tm.tm_mday = Digits(text, 8, 2);
  tm.tm_hour = Digits(text, 11, 2);
  tm.tm_min = Digits(text, 14, 2);
  tm.tm_sec = Digits(text, 17, 2);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 || tm.tm_min < 0 ||
      tm.tm_sec < 0) {
    return Clock::time_point{};
  }
  int64_t micros = 0;
  if (text.size() > 20 && text[19] == '.') {
    size_t digits = 0;
    for (size_t k = 20;
         k < text.size() && digits < 6 && std::isdigit(static_cast<unsigned char>(text[k]));
         ++k, ++digits) {
      micros = micros * 10 + (text[k] - '0');
    }
    for (; digits < 6; ++digits) micros *= 10;
  }
  return Clock::from_time_t(timegm(&tm)) + std::chrono::microseconds(micros);
}

}  // namespace

bool LeaderElector::TryAcquireOrRenew() {
  const auto now = Clock::now();
  const Json spec_now = {{"holderIdentity", options_.identity},
                         {"leaseDurationSeconds", options_.lease_duration.count()},
                         {"renewTime", MicroTime(now)}};
  StatusOr<Json> lease = client_->Get(kube::kLeases, options_.ns, options_.name);
  if (!lease.ok()) {
    if (lease.status().code() != StatusCode::kNotFound) {
      if (lease.status().message() != last_error_) {  // once per new error, not every retry
        last_error_ = lease.status().message();
        log_.Warn("lease not readable",
                  {{"lease", options_.ns + "/" + options_.name}, {"error", last_error_}});
      }
      return false;
    }
    Json fresh = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", options_.name}, {"namespace", options_.ns}}},
                  {"spec", spec_now}};
    fresh["spec"]["acquireTime"] = MicroTime(now);
    fresh["spec"]["leaseTransitions"] = 0;
    return client_->Create(kube::kLeases, options_.ns, fresh).ok();  // AlreadyExists: lost
  }
  Json& spec = (*lease)["spec"];
  const std::string holder = spec.value("holderIdentity", "");
  if (holder != options_.identity && !holder.empty()) {
    const auto renewed = ParseTime(spec.value("renewTime", ""));
    const auto duration = std::chrono::seconds(spec.value("leaseDurationSeconds", int64_t{15}));
    if (renewed + duration > now) return false;  // the holder is alive
  }
  if (holder != options_.identity) {
    spec["acquireTime"] = MicroTime(now);
    spec["leaseTransitions"] = spec.value("leaseTransitions", int64_t{0}) + 1;
  }
  for (const auto& [k, v] : spec_now.items()) spec[k] = v;
  // The read resourceVersion goes back with it: a candidate that raced us gets a Conflict.
  return client_->Update(kube::kLeases, options_.ns, *lease).ok();
}

void LeaderElector::Release() {
  StatusOr<Json> lease = client_->Get(kube::kLeases, options_.ns, options_.name);
  if (!lease.ok() || (*lease)["spec"].value("holderIdentity", "") != options_.identity) return;
  (*lease)["spec"]["holderIdentity"] = "";
  (*lease)["spec"]["leaseDurationSeconds"] = 1;
  const Status s = client_->Update(kube::kLeases, options_.ns, *lease).status();
  if (!s.ok()) log_.Warn("lease not released", {{"error", s.message()}});
}

void LeaderElector::Sleep(const std::atomic<bool>* stop, std::chrono::milliseconds d) const {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop->load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void LeaderElector::Run(const std::atomic<bool>* stop, const std::function<void()>& started,
                        const std::function<void()>& stopped) {
  while (!stop->load()) {
    if (!TryAcquireOrRenew()) {
      Sleep(stop, options_.retry_period);
      continue;
    }
    leading_ = true;
    ++transitions_;
    log_.Info("leading",
              {{"lease", options_.ns + "/" + options_.name}, {"identity", options_.identity}});
    started();
    auto last_renew = std::chrono::steady_clock::now();
    while (!stop->load()) {
      Sleep(stop, options_.retry_period);
      if (stop->load()) break;
      if (TryAcquireOrRenew()) {
        last_renew = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last_renew > options_.renew_deadline) {
        break;  // someone else may hold it now: stop acting before they start
      }
    }
    leading_ = false;
    stopped();
    if (stop->load()) {
      Release();
      return;
    }
    log_.Warn("lost the lease", {{"lease", options_.ns + "/" + options_.name}});
  }
}

}  // namespace agentry::operator_
