// runtime/api/status_reporter.cc — see status_reporter.h.
#include "runtime/api/status_reporter.h"

#include <utility>

namespace agentry::api {

StatusReporter::StatusReporter(ReadReport read, StatusReporterOptions options)
    : read_(std::move(read)),
      options_(std::move(options)),
      task_(options_.interval, [this] { (void)ReportOnce(); }) {
  if (options_.metrics != nullptr) {
    reports_ = &options_.metrics->AddCounter(
        "agentry_runtime_status_reports_total",
        "Reports on this pod in its ManagedAgent's status.runtimes by result: written, "
        "unchanged (nothing to write), error (not read or not written; see the log).",
        {"result"});
  }
}

StatusReporter::~StatusReporter() { Stop(); }

void StatusReporter::Start() { task_.Start(); }

void StatusReporter::Stop() { task_.Stop(); }

nlohmann::json StatusReporter::Patch(const ReplicaReport& report) const {
  nlohmann::json entry = {{"pod", options_.pod},
                          {"day", report.day},
                          {"sessions", report.sessions},
                          {"tokensToday", report.tokens_today},
                          {"toolCallsToday", report.tool_calls_today},
                          {"budgetExhausted", report.budget_exhausted}};
  if (!report.message.empty()) entry["message"] = report.message;
  if (!report.model_error.empty()) entry["modelError"] = report.model_error;
  return {{"apiVersion", kube::kManagedAgents.ApiVersion()},
          {"kind", std::string(kube::kManagedAgents.kind)},
          {"metadata", {{"name", options_.agent}, {"namespace", options_.ns}}},
          {"status", {{"runtimes", nlohmann::json::array({std::move(entry)})}}}};
}

Status StatusReporter::ReportOnce() {
  StatusOr<ReplicaReport> report = read_();
  Status result = report.status();
  if (report.ok() && written_ == *report) {
    if (reports_ != nullptr) reports_->WithLabels({"unchanged"}).Increment();
    return OkStatus();
  }
  if (report.ok()) {
    // Forced: the element is this pod's alone; an earlier pod of the same name (a restart)
    // wrote it under the same manager.
    result = options_.client
                 ->ApplyStatus(kube::kManagedAgents, options_.ns, Patch(*report),
                               {.field_manager = field_manager(), .force = true})
                 .status();
    if (result.ok()) written_ = *std::move(report);
  }
  Count(result);
  return result;
}

void StatusReporter::Count(const Status& result) {
  if (reports_ != nullptr) reports_->WithLabels({result.ok() ? "written" : "error"}).Increment();
  const std::string error = result.ok() ? "" : result.message();
  if (error == last_error_) return;
  if (error.empty()) {
    log_.Info("status report written again",
              {{"agent", options_.ns + "/" + options_.agent}, {"pod", options_.pod}});
  } else {
    log_.Warn(
        "status report not written; the agent's usage and BudgetExhausted lag",
        {{"agent", options_.ns + "/" + options_.agent}, {"pod", options_.pod}, {"error", error}});
  }
  last_error_ = error;
}

}  // namespace agentry::api
