// operator/event_recorder.h — events.k8s.io/v1 Events about the objects the operator acts on:
// what `kubectl describe ma/triage` and `kubectl events` show.
//
// The same reason and note about the same object are recorded once per 10 minutes: a
// reconcile that fails the same way each retry does not flood the API server. An Event that
// cannot be written is logged and dropped; it never fails a reconcile.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "common/kube/client.h"
#include "common/log/log.h"

namespace agentry::operator_ {

class EventRecorder {
 public:
  EventRecorder(kube::Client* client, std::string instance,
                std::string controller = "agentry.dev/operator")
      : client_(client), instance_(std::move(instance)), controller_(std::move(controller)) {}

  // `type` is Normal or Warning; `action` what the operator did ("Apply", "Reconcile").
  void Record(const nlohmann::json& regarding, const std::string& type, const std::string& reason,
              const std::string& action, const std::string& note);

  int64_t recorded() const;

 private:
  kube::Client* client_;
  const std::string instance_;
  const std::string controller_;
  log::Logger log_{"operator"};
  mutable std::mutex mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> recent_;  // by object+reason+note
  int64_t recorded_ = 0;
  uint64_t sequence_ = 0;
};

}  // namespace agentry::operator_
