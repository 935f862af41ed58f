// runtime/api/config_watcher.h — follows the runtime's rendered agent config as the operator
// changes it. In a pod the config is a mounted ConfigMap, which the kubelet replaces (an
// atomic symlink swap) some seconds after the object changes; there is no event to wait on,
// so the file is read every `interval` and compared with what was last applied.
//
//   ConfigWatcher watcher(path, std::chrono::seconds(1), [&](const config::ManagedAgent& a) {
//     api.SetSuspended(a.spec.suspend);
//   });
//   watcher.Start();
//
// A changed file that does not parse is logged with its field errors and counted
// (agentry_runtime_config_errors_total); the last good config stays in force.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/config/agent_spec.h"
#include "common/log/log.h"
#include "common/metrics/registry.h"
#include "common/periodic_task.h"

namespace agentry::api {

class ConfigWatcher {
 public:
  using OnChange = std::function<void(const config::ManagedAgent& agent)>;

  // `applied_text`: the config the runtime started with (a change is a different text).
  ConfigWatcher(std::string path, std::string applied_text, std::chrono::milliseconds interval,
                OnChange on_change, metrics::Registry* metrics = nullptr);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  void Start();
  void Stop();
  // One look at the file (what the thread does each interval).
  void CheckOnce();

 private:
  std::string path_;
  std::string applied_text_;
  std::string refused_text_;  // the last text that did not parse (logged once)
  OnChange on_change_;
  metrics::Counter* errors_ = nullptr;
  log::Logger log_{"config"};
  PeriodicTask task_;  // last: stopped before the members its runs use go
};

}  // namespace agentry::api
