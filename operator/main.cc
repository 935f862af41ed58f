// operator/main.cc — agentry-operator: reconciles ManagedAgents (docs/operator.md).
//
//   agentry-operator [--kubeconfig FILE] [--namespace NS] [--workers N] [--image IMAGE]
//                    [--metrics-port 8081] [--no-leader-elect] [--lease-namespace NS]
//
// In a pod it uses its service account; elsewhere $KUBECONFIG or ~/.kube/config. With leader
// election (the default) only the replica holding the Lease reconciles; the others wait,
// ready, to take over. /healthz, /readyz and /metrics on the metrics port. SIGTERM stops the
// workers after their current reconcile and releases the Lease.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include "common/http/server.h"
#include "common/kube/client.h"
#include "common/log/log.h"
#include "common/metrics/process_metrics.h"
#include "common/metrics/registry.h"
#include "common/stop_signals.h"
#include "common/version.h"
#include "operator/controller.h"
#include "operator/leader_election.h"

namespace {

using agentry::OkStatus;
using agentry::Status;
using agentry::StatusOr;
using agentry::StopSignals;
using agentry::UnavailableError;
using agentry::operator_::Controller;
using agentry::operator_::ControllerOptions;
using agentry::operator_::EventRecorder;
using agentry::operator_::LeaderElectionOptions;
using agentry::operator_::LeaderElector;
namespace http = agentry::http;
namespace kube = agentry::kube;
namespace log = agentry::log;
namespace metrics = agentry::metrics;

struct Options {
  std::string kubeconfig;
  std::string watch_namespace;
  int workers = 4;
  std::string image = "agentry:" + std::string(agentry::Version());
  std::string admin_group = "agentry:admins";
  std::string metrics_host = "0.0.0.0";
  int metrics_port = 8081;
  bool leader_elect = true;
  std::string lease_namespace;
  double kube_qps = 200;
  int kube_burst = 400;
  std::string identity;
};

std::string Hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "agentry-operator";
  return name;
}

int Run(const Options& options) {
  StopSignals stop_signals;
  log::Logger log("operator");
  StatusOr<kube::KubeConfig> config = options.kubeconfig.empty()
                                          ? kube::LoadDefaultKubeConfig()
                                          : kube::LoadKubeConfig(options.kubeconfig);
  if (!config.ok()) {
    std::fprintf(stderr, "agentry-operator: %s\n", config.status().message().c_str());
    return 2;
  }
  StatusOr<std::unique_ptr<kube::Client>> client = kube::Client::Create(
      *config, {.qps = options.kube_qps,
                .burst = options.kube_burst,
                .user_agent = "agentry-operator/" + std::string(agentry::Version())});
  if (!client.ok()) {
    std::fprintf(stderr, "agentry-operator: %s\n", client.status().message().c_str());
    return 2;
  }
  const std::string identity = options.identity.empty() ? Hostname() : options.identity;
  metrics::Registry registry;
  metrics::RegisterProcessMetrics(&registry, std::string(agentry::Version()));
  auto& leader = registry.AddGauge("agentry_operator_leader",
                                   "1 while this replica holds the Lease and reconciles");
  leader.WithLabels({}).Set(0);  // a standby reports 0, not nothing
  EventRecorder events(client->get(), identity);
  ControllerOptions controller_options{.workers = options.workers,
                                       .watch_namespace = options.watch_namespace,
                                       .registry = &registry};
  controller_options.reconciler.render.image = options.image;
  controller_options.reconciler.render.admin_group = options.admin_group;
  Controller controller(client->get(), &events, controller_options);

  http::HttpServer server({.host = options.metrics_host,
                           .port = static_cast<uint16_t>(options.metrics_port),
                           .registry = &registry});
  // Ready once leading with synced caches, or while waiting (ready to take over).
  std::atomic<bool> leading{false};
  server.AddReadinessCheck("watch caches", [&]() -> Status {
    if (!leading.load() || controller.synced()) return OkStatus();
    return UnavailableError("the watch caches have not synced");
  });
  if (Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "agentry-operator: %s\n", s.message().c_str());
    return 1;
  }
  log.Info("starting",
           {{"version", std::string(agentry::Version())},
            {"server", config->server},
            {"namespace", options.watch_namespace.empty() ? "*" : options.watch_namespace},
            {"identity", identity},
            {"metrics", server.base_url()}});

  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  const auto start = [&] {
    leading = true;
    leader.WithLabels({}).Set(1);
    if (Status s = controller.Start(&stop); !s.ok() && !stop.load()) {
      log.Error("controller did not start", {{"error", s.message()}});
      failed = true;
      stop = true;
    }
  };
  const auto stopped = [&] {
    leading = false;
    leader.WithLabels({}).Set(0);
    controller.Stop();
    // A controller is started once; a replica that lost the lease exits and is restarted
    // fresh by its Deployment rather than reconcile from caches another leader moved past.
    if (!stop.load()) failed = true, stop = true;
  };
  std::thread signals([&] {
    stop_signals.Wait();
    stop = true;
  });
  signals.detach();
  std::thread campaign;
  if (options.leader_elect) {
    LeaderElectionOptions lease{.name = "agentry-operator", .identity = identity};
    lease.ns = !options.lease_namespace.empty()   ? options.lease_namespace
               : !options.watch_namespace.empty() ? options.watch_namespace
                                                  : config->namespace_name;
    campaign = std::thread([&, lease] {
      LeaderElector elector(client->get(), lease);
      elector.Run(&stop, start, stopped);
    });
  } else {
    start();
  }
  while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  log.Info("stopping", {});
  if (campaign.joinable()) campaign.join();
  controller.Stop();
  server.Stop();
  log.Info("stopped", {});
  return failed.load() ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"agentry-operator: reconciles ManagedAgents into the pods that run them"};
  Options options;
  app.add_option("--kubeconfig", options.kubeconfig,
                 "kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config)");
  app.add_option("--namespace", options.watch_namespace, "watch one namespace (default: all)");
  app.add_option("--workers", options.workers, "agents reconciled at once (default 4)")
      ->check(CLI::Range(1, 64));
  app.add_option("--image", options.image, "the image the agents' pods run (runtime and state)");
  app.add_option("--admin-group", options.admin_group,
                 "the group whose members see every session (default agentry:admins)");
  app.add_option("--metrics-host", options.metrics_host, "address of /metrics (default 0.0.0.0)");
  app.add_option("--metrics-port", options.metrics_port, "/metrics, /healthz, /readyz (8081)");
  app.add_flag("!--no-leader-elect", options.leader_elect, "reconcile without holding the Lease");
  app.add_option("--lease-namespace", options.lease_namespace,
                 "where the Lease lives (default: --namespace, else the context's)");
  app.add_option("--identity", options.identity, "this replica in the Lease (default: hostname)");
  app.add_option("--kube-qps", options.kube_qps,
                 "API requests a second on average (default 200; bench/operator_scale_bench)")
      ->check(CLI::Range(1.0, 10000.0));
  app.add_option("--kube-burst", options.kube_burst, "API requests in a burst (default 400)")
      ->check(CLI::Range(1, 100000));
  CLI11_PARSE(app, argc, argv);
  return Run(options);
}
