// runtime/api/status_reporter.h — the runtime pod's report on itself in its ManagedAgent's
// status: one element of status.runtimes (keyed by pod), server-side applied under the field
// manager agentry-runtime-POD, so each pod owns its element and nothing else. The operator
// sums the elements into status.usage and the BudgetExhausted condition (operator/usage.h).
//
//   StatusReporter reporter([&api] { return api.ReadReplicaReport(); },
//                           {.client = client.get(), .ns = "team-a", .agent = "triage",
//                            .pod = "triage-0"});
//   reporter.Start();  // every interval; a write only when the report changed
//
// Read every `interval` (10 s by default): a busy agent costs the API server one write per pod
// per interval at most, an idle one none. A report that cannot be written (the Role missing,
// the API server away) is logged when the error changes and counted; the next interval tries
// again.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "common/kube/client.h"
#include "common/log/log.h"
#include "common/metrics/registry.h"
#include "common/periodic_task.h"
#include "common/status.h"
#include "runtime/api/session_api.h"

namespace agentry::api {

struct StatusReporterOptions {
  kube::Client* client = nullptr;
  std::string ns;     // the agent's namespace
  std::string agent;  // the ManagedAgent's name
  std::string pod;    // this pod: the element's key and the field manager's suffix
  std::chrono::milliseconds interval = std::chrono::seconds(10);
  metrics::Registry* metrics = nullptr;  // may be null
};

class StatusReporter {
 public:
  using ReadReport = std::function<StatusOr<ReplicaReport>()>;

  StatusReporter(ReadReport read, StatusReporterOptions options);
  ~StatusReporter();
  StatusReporter(const StatusReporter&) = delete;
  StatusReporter& operator=(const StatusReporter&) = delete;

  void Start();
  void Stop();
  // One report (what each interval does): read it and, when it differs from the last one
  // written, apply it. The error of the read or the write, if any.
  Status ReportOnce();

  // The apply patch for `report`: status.runtimes with this pod's element only.
  nlohmann::json Patch(const ReplicaReport& report) const;
  std::string field_manager() const { return "agentry-runtime-" + options_.pod; }

 private:
  void Count(const Status& result);

  ReadReport read_;
  StatusReporterOptions options_;
  std::optional<ReplicaReport> written_;
  std::string last_error_;  // logged once until it changes
  metrics::Family<metrics::Counter>* reports_ = nullptr;
  log::Logger log_{"status"};
  PeriodicTask task_;  // last: stopped before the members its runs use go
};

}  // namespace agentry::api
