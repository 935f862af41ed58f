// operator/leader_election.h — one active operator among replicas, by a coordination.k8s.io
// Lease, as client-go's leader election does it:
//   - acquire: create the Lease, or take it over once its holder has not renewed it for
//     leaseDurationSeconds (an Update with the read resourceVersion, so two candidates
//     cannot both win);
//   - lead: renew every retry period; if renewing fails for longer than the renew deadline,
//     stop leading (the callback) before another candidate may take over;
//   - release on shutdown: clear the holder so a successor need not wait out the lease.
//
//   LeaderElector elector(&client, {.ns = "agentry-system", .name = "agentry-operator",
//                                   .identity = pod_name});
//   elector.Run(&stop, on_started_leading, on_stopped_leading);   // blocks until stop
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "common/kube/client.h"
#include "common/log/log.h"

namespace agentry::operator_ {

struct LeaderElectionOptions {
  std::string ns = "agentry-system";
  std::string name = "agentry-operator";
  std::string identity;  // this candidate: the pod's name, unique among candidates
  std::chrono::seconds lease_duration{15};
  std::chrono::seconds renew_deadline{10};
  std::chrono::milliseconds retry_period{2000};
};

class LeaderElector {
 public:
  LeaderElector(kube::Client* client, LeaderElectionOptions options)
      : client_(client), options_(std::move(options)) {}

  // Campaigns until `*stop`; calls `started` on winning and `stopped` on losing the lease
  // (then campaigns again). Releases the lease when it stops while leading.
  void Run(const std::atomic<bool>* stop, const std::function<void()>& started,
           const std::function<void()>& stopped);

  bool leading() const { return leading_.load(); }
  int64_t transitions() const { return transitions_.load(); }

 private:
  // One try to acquire or renew; true when this candidate holds the lease afterwards.
  bool TryAcquireOrRenew();
  void Release();
  void Sleep(const std::atomic<bool>* stop, std::chrono::milliseconds d) const;

  kube::Client* client_;
  const LeaderElectionOptions options_;
  log::Logger log_{"operator"};
  std::atomic<bool> leading_{false};
  std::atomic<int64_t> transitions_{0};
  std::string last_error_;  // the last lease error logged (Run's thread only)
};

}  // namespace agentry::operator_
