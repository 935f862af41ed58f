// operator/event_recorder.cc — see event_recorder.h.
#include "operator/event_recorder.h"

#include <cstdio>
#include <ctime>

#include "operator/status.h"

namespace agentry::operator_ {
void EventRecorder::Record(const nlohmann::json& regarding, const std::string& type,
                           const std::string& reason, const std::string& action,
                           const std::string& note) {
  const nlohmann::json& meta = regarding["metadata"];
  const std::string name = meta.value("name", "");
  const std::string ns = meta.value("namespace", "default");
  const std::string dedupe = ns + "/" + name + "|" + reason + "|" + note;
  const auto now = std::chrono::steady_clock::now();
  uint64_t sequence = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = recent_.find(dedupe);
    if (it != recent_.end() && now - it->second < std::chrono::minutes(10)) return;
    recent_[dedupe] = now;
    sequence = ++sequence_;
    if (recent_.size() > 10000) recent_.clear();  // bounded; a repeat is then recorded again
  }
  const auto wall = std::chrono::system_clock::now();
  char suffix[24];
  std::snprintf(
      suffix, sizeof(suffix), "%llx%04llx",
      static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::microseconds>(wall.time_since_epoch()).count()),
      static_cast<unsigned long long>(sequence & 0xFFFF));
  const nlohmann::json event = {
      {"apiVersion", "events.k8s.io/v1"},
      {"kind", "Event"},
      {"metadata", {{"name", name + "." + suffix}, {"namespace", ns}}},
      {"eventTime", MicroTime(wall)},
      {"reportingController", controller_},
      {"reportingInstance", instance_},
      {"action", action},
      {"reason", reason},
      {"note", note.substr(0, 1024)},
      {"type", type},
      {"regarding",
       {{"apiVersion", regarding.value("apiVersion", "")},
        {"kind", regarding.value("kind", "")},
        {"name", name},
        {"namespace", ns},
        {"uid", meta.value("uid", "")}}},
  };
  const Status s = client_->Create(kube::kEvents, ns, event).status();
  if (!s.ok()) {
    log_.Warn("event not recorded", {{"reason", reason}, {"error", s.message()}});
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++recorded_;
}

int64_t EventRecorder::recorded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recorded_;
}

}  // namespace agentry::operator_
