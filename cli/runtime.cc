#include "cli/runtime.h"

#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "common/config/agent_spec.h"
#include "common/file.h"
#include "common/http/server.h"
#include "common/kube/client.h"
#include "common/log/log.h"
#include "common/metrics/process_metrics.h"
#include "common/metrics/registry.h"
#include "common/stop_signals.h"
#include "common/version.h"
#include "runtime/api/config_watcher.h"
#include "runtime/api/openai_api.h"
#include "runtime/api/session_api.h"
#include "runtime/api/status_reporter.h"
#include "runtime/harness/harness.h"
#include "runtime/prompt/agent_prompt.h"
#include "runtime/tools/toolbox.h"

namespace agentry::cli {
namespace {

std::string ApiCaFile(const RuntimeOptions& options) {
  if (!options.api_ca.empty()) return options.api_ca;
  const std::string& token = options.service_account_token_file;
  const size_t slash = token.rfind('/');
  return (slash == std::string::npos ? std::string() : token.substr(0, slash + 1)) + "ca.crt";
}

// The report on this pod in its agent's status, when --report-status-as names the pod.
// Null without it; an error when the API cannot be reached as configured.
StatusOr<std::unique_ptr<kube::Client>> StatusClient(const RuntimeOptions& options) {
  if (options.report_status_as.empty()) return std::unique_ptr<kube::Client>();
  kube::KubeConfig config;
  config.server = options.api_server;
  config.ca_file = ApiCaFile(options);
  config.token_file = options.service_account_token_file;
  // A few writes a minute at most: a small budget keeps a crowd of pods gentle.
  return kube::Client::Create(config, {.qps = 1, .burst = 5, .user_agent = "agentry-runtime"});
}

}  // namespace

int RunRuntime(const RuntimeOptions& options) {
  log::Logger log("runtime");
  StopSignals stop;

  StatusOr<std::string> text = ReadFileToString(options.config);
  if (!text.ok()) {
    std::fprintf(stderr, "agentry runtime: %s\n", text.status().message().c_str());
    return 2;
  }
  StatusOr<config::ManagedAgent> agent = config::ParseManagedAgent(*text, options.config);
  if (!agent.ok()) {
    std::fprintf(stderr, "agentry runtime: %s\n", agent.status().message().c_str());
    return 2;
  }
  harness::StateClient state("unix:" + options.state_socket);
  tools::ToolboxOptions toolbox_options;
  toolbox_options.http.secrets_dir = options.secrets_dir;
  toolbox_options.http.service_account_token_file = options.service_account_token_file;
  // A tool the call constraint cannot express is a bad spec: refused at start, naming it.
  StatusOr<std::unique_ptr<tools::Toolbox>> toolbox =
      tools::Toolbox::Create(*agent, toolbox_options, &state);
  if (!toolbox.ok()) {
    std::fprintf(stderr, "agentry runtime: %s: %s\n", options.config.c_str(),
                 toolbox.status().message().c_str());
    return 2;
  }
  for (const std::string& why : (*toolbox)->skipped()) {
    log.Warn("tool not offered to the model", {{"tool", why}});
  }
  harness::HarnessOptions harness_options;
  harness_options.agent = agent->metadata.namespace_name + "/" + agent->metadata.name;
  harness_options.model = options.model.empty() ? agent->spec.model.name : options.model;
  harness_options.system_prompt =
      runtime::RenderSystemPrompt(agent->spec.instructions, (*toolbox)->decls());
  harness_options.max_tokens = options.max_tokens;
  harness_options.tools = (*toolbox)->decls();

  harness::NodeClient node("unix:" + options.node_socket);
  harness::Harness harness(harness_options, &state, &node);
  metrics::Registry registry;
  metrics::RegisterProcessMetrics(&registry, std::string(Version()));
  const config::SessionsSpec& spec_limits = agent->spec.sessions;
  api::SessionApiOptions api_options;
  api_options.limits = {.max_concurrent = spec_limits.max_concurrent,
                        .idle_timeout = spec_limits.idle_timeout,
                        .max_duration = spec_limits.max_duration,
                        .max_turns = spec_limits.max_turns,
                        .approval_timeout = spec_limits.approval_timeout};
  api_options.budgets = {.per_session = agent->spec.budget.tokens_per_session,
                         .per_day = agent->spec.budget.tokens_per_day,
                         .replicas = agent->spec.replicas};
  api_options.on_behalf_of = agent->spec.identity.on_behalf_of;
  api_options.metrics = &registry;
  std::unique_ptr<api::TokenChecker> checker;
  if (options.auth == "tokens-file") {
    if (options.tokens_file.empty()) {
      std::fprintf(stderr, "agentry runtime: --auth tokens-file needs --tokens-file\n");
      return 2;
    }
    checker = std::make_unique<api::TokensFile>(options.tokens_file);
  } else if (options.auth == "token-review") {
    api::TokenReviewOptions review;
    review.api_server = options.api_server;
    review.token_file = options.service_account_token_file;
    review.ca_file = ApiCaFile(options);
    checker = std::make_unique<api::TokenReview>(review);
  } else if (options.auth != "none") {
    std::fprintf(stderr, "agentry runtime: --auth: none, tokens-file or token-review, not %s\n",
                 options.auth.c_str());
    return 2;
  }
  api::Access access(std::move(checker), options.admin_group);
  api_options.access = &access;
  api_options.toolbox = toolbox->get();
  api_options.max_tool_steps = spec_limits.max_tool_steps;
  api_options.tool_calls_per_session = agent->spec.budget.tool_calls_per_session;
  api::AuditLog audit(&state, &registry);
  audit.RequireAdmins(&access);
  api_options.audit = &audit;
  api::SessionApi api(&harness, &state, api_options);
  api.SetSuspended(agent->spec.suspend);
  // The operator changes the rendered config in place (suspend, the kill switch); the rest of
  // a changed spec takes effect when the operator rolls the pod.
  api::ConfigWatcher config_watcher(
      options.config, *text, std::chrono::seconds(1),
      [&api](const config::ManagedAgent& changed) { api.SetSuspended(changed.spec.suspend); },
      &registry);
  api::OpenAiApi openai(&harness, &state, &api);

  http::HttpServer server({.host = options.host,
                           .port = options.port,
                           .shutdown_grace = std::chrono::milliseconds(
                               static_cast<int64_t>(options.grace_seconds * 1000)),
                           .registry = &registry});
  Status routes = api.Register(&server);
  if (routes.ok()) routes = openai.Register(&server);
  if (routes.ok()) routes = audit.Register(&server);
  if (Status s = routes; !s.ok()) {
    std::fprintf(stderr, "agentry runtime: %s\n", s.message().c_str());
    return 1;
  }
  // Ready when the state sidecar answers: without it no message can be made durable.
  server.AddReadinessCheck("state sidecar", [&state] {
    harness::statepb::ListSessionsRequest probe;
    probe.set_limit(1);
    return state.ListSessions(probe).status();
  });
  if (Status s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "agentry runtime: %s\n", s.message().c_str());
    return 1;
  }
  log.Info("serving", {{"agent", harness_options.agent},
                       {"model", harness_options.model},
                       {"url", server.base_url()},
                       {"state_socket", options.state_socket},
                       {"node_socket", options.node_socket}});
  config_watcher.Start();
  StatusOr<std::unique_ptr<kube::Client>> status_client = StatusClient(options);
  if (!status_client.ok()) {
    std::fprintf(stderr, "agentry runtime: --report-status-as: %s\n",
                 status_client.status().message().c_str());
    return 1;
  }
  std::unique_ptr<api::StatusReporter> reporter;
  if (*status_client != nullptr) {
    reporter = std::make_unique<api::StatusReporter>(
        [&api, &node, &harness_options]() -> StatusOr<api::ReplicaReport> {
          StatusOr<api::ReplicaReport> report = api.ReadReplicaReport();
          if (report.ok()) {
            report->model_error = node.CheckModelServed(harness_options.model).message();
          }
          return report;
        },
        api::StatusReporterOptions{.client = status_client->get(),
                                   .ns = agent->metadata.namespace_name,
                                   .agent = agent->metadata.name,
                                   .pod = options.report_status_as,
                                   .metrics = &registry});
    reporter->Start();
    log.Info("reporting in the agent's status",
             {{"pod", options.report_status_as}, {"api_server", options.api_server}});
  }
  const int signal = stop.Wait();
  if (reporter != nullptr) reporter->Stop();
  config_watcher.Stop();
  log.Info("stopping", {{"signal", signal}, {"grace_seconds", options.grace_seconds}});
  server.Stop();
  // The pod may come back on another node, whose daemon has none of these sessions: their
  // KV goes to the state volume, so their next turns restore it instead of recomputing.
  const auto snapshot_start = std::chrono::steady_clock::now();
  StatusOr<int> saved = harness.SaveSnapshots();
  if (saved.ok()) {
    log.Info("sessions snapshotted",
             {{"sessions", static_cast<int64_t>(*saved)},
              {"seconds",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - snapshot_start)
                   .count()}});
  } else {
    log.Warn("sessions not snapshotted", {{"error", saved.status().message()}});
  }
  log.Info("stopped");
  return 0;
}

}  // namespace agentry::cli
