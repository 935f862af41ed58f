#include "cli/state.h"

#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>

#include "common/http/server.h"
#include "common/log/log.h"
#include "common/metrics/process_metrics.h"
#include "common/metrics/registry.h"
#include "common/stop_signals.h"
#include "common/version.h"
#include "runtime/state/state_service.h"
#include "runtime/state/store.h"

namespace agentry::cli {

int RunState(const StateOptions& options) {
  log::Logger log("state");
  StopSignals stop;

  StatusOr<std::unique_ptr<state::StateStore>> store = state::StateStore::Open(options.dir);
  if (!store.ok()) {
    std::fprintf(stderr, "agentry state: %s\n", store.status().message().c_str());
    return 1;
  }
  metrics::Registry registry;
  metrics::RegisterProcessMetrics(&registry, std::string(Version()));
  metrics::Gauge& disk_bytes =
      registry
          .AddGauge("agentry_state_disk_bytes",
                    "Bytes of the state volume's files (database and snapshots).")
          .WithLabels({});
  // The filesystem the volume is on, so "nearly full" is a ratio an alert can read before
  // writes start failing (docs/operations.md); kubelet's volume stats need another scrape
  // job and do not cover every volume type.
  metrics::Gauge& volume_capacity =
      registry
          .AddGauge("agentry_state_volume_capacity_bytes",
                    "Size of the filesystem that holds the state volume.")
          .WithLabels({});
  metrics::Gauge& volume_available =
      registry
          .AddGauge("agentry_state_volume_available_bytes",
                    "Bytes of that filesystem still free for the sidecar to write.")
          .WithLabels({});
  registry.AddCollectHook([&] {
    disk_bytes.Set(static_cast<double>((*store)->DiskBytes()));
    std::error_code error;
    const std::filesystem::space_info space = std::filesystem::space(options.dir, error);
    if (error) return;  // the gauges keep their last values; the store's errors say why
    volume_capacity.Set(static_cast<double>(space.capacity));
    volume_available.Set(static_cast<double>(space.available));
  });

  std::unique_ptr<http::HttpServer> metrics_server;
  if (options.metrics) {
    metrics_server = std::make_unique<http::HttpServer>(http::HttpServerOptions{
        .host = options.metrics_host, .port = options.metrics_port, .registry = &registry});
    if (Status s = metrics_server->Start(); !s.ok()) {
      std::fprintf(stderr, "agentry state: metrics: %s\n", s.message().c_str());
      return 1;
    }
  }
  state::StateServer server(store->get(), {.socket_path = options.socket}, &registry);
  if (Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "agentry state: %s\n", s.message().c_str());
    return 1;
  }
  // The audit chain is checked once at start: a broken chain is logged loudly (and counted
  // by every VerifyAudit) but does not stop the sidecar, which must keep serving transcripts.
  if (StatusOr<state::v1::VerifyAuditResponse> v = (*store)->VerifyAudit(); v.ok() && !v->ok()) {
    // Counted with the VerifyAudit calls, so an alert sees a chain found broken at start
    // without waiting for someone to verify it.
    registry.AddCounter("agentry_state_audit_verify_failures_total", "").WithLabels({}).Increment();
    log.Error("audit chain broken",
              {{"reason", v->reason()}, {"first_bad_seq", v->first_bad_seq()}});
  }
  log.Info("serving",
           {{"socket", options.socket},
            {"dir", options.dir},
            {"metrics_port", static_cast<int64_t>(metrics_server ? metrics_server->port() : 0)}});
  const int signal = stop.Wait();
  log.Info("stopping", {{"signal", signal}, {"grace_seconds", options.grace_seconds}});
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(
                            std::chrono::duration<double>(options.grace_seconds));
  // gRPC's Shutdown can keep waiting well past its deadline while a client holds its channel
  // open (seen: 10 s with a 2 s deadline). Every acknowledged write is already durable, so
  // once the grace period is over the process exits whether or not gRPC has finished.
  std::promise<void> stopped;
  std::future<void> stopped_future = stopped.get_future();
  std::thread stopper([&] {
    server.Shutdown(deadline);
    stopped.set_value();
  });
  if (stopped_future.wait_until(deadline + std::chrono::milliseconds(500)) !=
      std::future_status::ready) {
    log.Warn("gRPC still shutting down after the grace period; exiting now");
    std::_Exit(0);
  }
  stopper.join();
  if (metrics_server) metrics_server->Stop();
  log.Info("stopped");
  return 0;
}

}  // namespace agentry::cli
