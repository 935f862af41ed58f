// cli/nodeagent.cc — see nodeagent.h.
#include "cli/nodeagent.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "common/http/server.h"
#include "common/log/log.h"
#include "common/metrics/process_metrics.h"
#include "common/metrics/registry.h"
#include "common/stop_signals.h"
#include "common/version.h"
#include "nodeagent/devices/discovery.h"
#include "nodeagent/devices/visibility.h"
#include "nodeagent/engine/kv_cache.h"
#include "nodeagent/scheduler/model_registry.h"
#include "nodeagent/scheduler/session_manager.h"
#include "nodeagent/server/node_service.h"

namespace agentry::cli {
namespace {

int BadOption(const std::string& message) {
  std::fprintf(stderr, "agentry nodeagent: %s\n", message.c_str());
  return 2;
}

// NAME=PATH[,template=FORMAT] into the registry.
Status AddModel(const std::string& spec, scheduler::ModelRegistry* models) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InvalidArgumentError("--model " + spec + ": expected NAME=PATH[,template=FORMAT]");
  }
  std::string path = spec.substr(eq + 1);
  std::string chat_template;
  if (const size_t comma = path.find(",template="); comma != std::string::npos) {
    chat_template = path.substr(comma + 10);
    path.resize(comma);
  }
  return models->Add(spec.substr(0, eq), path, chat_template).WithPrefix("--model");
}

}  // namespace

int RunNodeagent(const NodeagentOptions& options) {
  log::Logger log("nodeagent");
  // Before the model loads and the session manager start their threads (see stop_signals.h).
  StopSignals stop;
  if (options.models.empty()) return BadOption("name at least one --model NAME=PATH");
  if (options.kv_memory_mib < 1) return BadOption("--kv-memory-mib: must be positive");
  if (options.prefill_chunk < 1) return BadOption("--prefill-chunk: must be positive");
  if (options.context < 0) return BadOption("--context: must be zero or more");
  if (options.grace_seconds < 0) return BadOption("--grace-period: must be zero or more");
  StatusOr<engine::KvCacheType> cache_type = engine::ParseKvCacheType(options.cache_type);
  if (!cache_type.ok()) return BadOption("--cache-type: " + cache_type.status().message());
  scheduler::ModelRegistry models;
  for (const std::string& spec : options.models) {
    if (Status s = AddModel(spec, &models); !s.ok()) return BadOption(s.message());
  }
  // Load every model now: a daemon that cannot serve its models should fail at start, not
  // on the first session.
  for (const std::string& name : models.names()) {
    if (StatusOr<std::shared_ptr<const scheduler::ServedModel>> m = models.Get(name); !m.ok()) {
      std::fprintf(stderr, "agentry nodeagent: %s\n", m.status().message().c_str());
      return 1;
    }
  }

  StatusOr<devices::Visibility> visibility = devices::Visibility::FromEnvironment();
  if (!visibility.ok()) return BadOption(visibility.status().message());
  devices::DiscoveryOptions discovery;
  discovery.dev_root = options.dev_root;
  discovery.proc_root = options.proc_root;
  discovery.sys_root = options.sys_root;
  discovery.visibility = *visibility;
  devices::Inventory inventory = devices::DiscoverDevices(discovery);
  for (const std::string& w : inventory.warnings) log.Warn("device discovery: " + w);
  for (const devices::Device& d : inventory.devices) {
    log.Info("device", {{"device", d.id}, {"description", devices::DescribeDevice(d)}});
  }
  const int cores = inventory.devices.empty() ? 1 : inventory.devices.front().cores;

  metrics::Registry registry;
  metrics::RegisterProcessMetrics(&registry, std::string(Version()));
  scheduler::SessionManagerOptions session_options;
  session_options.context_length = options.context;
  session_options.kv_capacity_bytes = static_cast<uint64_t>(options.kv_memory_mib) << 20;
  session_options.cache_type = *cache_type;
  session_options.threads = options.threads > 0 ? options.threads : std::max(1, cores);
  session_options.prefill_chunk = options.prefill_chunk;
  session_options.spill_dir = options.spill_dir;
  scheduler::SessionManager sessions(&models, inventory.devices, session_options, &registry);

  std::unique_ptr<http::HttpServer> metrics_server;
  if (options.metrics) {
    metrics_server = std::make_unique<http::HttpServer>(http::HttpServerOptions{
        .host = options.metrics_host, .port = options.metrics_port, .registry = &registry});
    if (Status s = metrics_server->Start(); !s.ok()) {
      std::fprintf(stderr, "agentry nodeagent: metrics: %s\n", s.message().c_str());
      return 1;
    }
  }

  server::NodeServer server(&sessions, &models, {.socket_path = options.socket});
  if (Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "agentry nodeagent: %s\n", s.message().c_str());
    return 1;
  }
  log.Info("serving",
           {{"socket", options.socket},
            {"models", static_cast<int64_t>(models.names().size())},
            {"threads", session_options.threads},
            {"metrics_port", static_cast<int64_t>(metrics_server ? metrics_server->port() : 0)}});
  const int signal = stop.Wait();
  const auto grace = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options.grace_seconds));
  log.Info("draining", {{"signal", signal}, {"grace_seconds", options.grace_seconds}});
  const int cancelled = server.Shutdown(std::chrono::steady_clock::now() + grace);
  log.Info("stopped", {{"cancelled_generations", cancelled}});
  if (metrics_server) metrics_server->Stop();
  return 0;
}

}  // namespace agentry::cli
