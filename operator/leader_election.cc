// operator/leader_election.cc — see leader_election.h.
#include "operator/leader_election.h"

#include <cstdio>
#include <ctime>
#include <thread>

#include "operator/status.h"

namespace agentry::operator_ {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::system_clock;

// A MicroTime (or Time) back to a time point; the epoch when it does not parse.
Clock::time_point ParseTime(const std::string& text) {
  std::tm tm{};
  int micros = 0;
  char frac[16] = {};
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%15s", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, frac) < 6) {
    return Clock::time_point{};
  }
  if (frac[0] == '.') micros = std::atoi(frac + 1);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
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
