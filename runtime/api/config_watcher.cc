// runtime/api/config_watcher.cc — see config_watcher.h.
#include "runtime/api/config_watcher.h"

#include "common/file.h"

namespace agentry::api {

ConfigWatcher::ConfigWatcher(std::string path, std::string applied_text,
                             std::chrono::milliseconds interval, OnChange on_change,
                             metrics::Registry* metrics)
    : path_(std::move(path)),
      applied_text_(std::move(applied_text)),
      on_change_(std::move(on_change)),
      task_(interval, [this] { CheckOnce(); }) {
  if (metrics != nullptr) {
    errors_ = &metrics
                   ->AddCounter("agentry_runtime_config_errors_total",
                                "Changed agent configs the runtime refused (the last good one "
                                "stays in force).")
                   .WithLabels({});
  }
}

ConfigWatcher::~ConfigWatcher() { Stop(); }

void ConfigWatcher::Start() { task_.Start(); }

void ConfigWatcher::Stop() { task_.Stop(); }

void ConfigWatcher::CheckOnce() {
  StatusOr<std::string> text = ReadFileToString(path_);
  // Missing for a moment while the kubelet swaps it: look again next time.
  if (!text.ok() || *text == applied_text_ || *text == refused_text_) return;
  StatusOr<config::ManagedAgent> agent = config::ParseManagedAgent(*text, path_);
  if (!agent.ok()) {
    refused_text_ = *text;
    log_.Error("changed config refused; the last good one stays in force",
               {{"path", path_}, {"error", agent.status().message()}});
    if (errors_ != nullptr) errors_->Increment();
    return;
  }
  applied_text_ = *std::move(text);
  refused_text_.clear();
  log_.Info("config changed", {{"path", path_}, {"suspend", agent->spec.suspend}});
  on_change_(*agent);
}

}  // namespace agentry::api
