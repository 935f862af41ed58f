// cli/runtime.h — `agentry runtime`: the agent runtime (the agent pod's `runtime` container,
// and the local data plane's when `agentry up` runs it): the session HTTP API over the node
// daemon and the state sidecar.
#pragma once

#include <cstdint>
#include <string>

namespace agentry::cli {

struct RuntimeOptions {
  std::string config;  // the ManagedAgent the operator rendered (YAML)
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  std::string state_socket = "/run/agentry/state.sock";
  std::string node_socket = "/var/run/agentry/nodeagent.sock";
  std::string model;  // the model's name on the node daemon; default: spec.model.name
  int32_t max_tokens = 512;
  double grace_seconds = 10;
  // Where HTTP tools read their header Secrets (DIR/SECRET/KEY) and the projected
  // service-account token they may send.
  std::string secrets_dir = "/var/run/agentry/secrets";
  std::string service_account_token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  // Who may call: "none" (everyone, as an administrator: the local data plane),
  // "tokens-file" (bearer tokens listed in `tokens_file`) or "token-review" (the Kubernetes
  // TokenReview API at `api_server`).
  std::string auth = "none";
  std::string tokens_file;
  std::string api_server = "https://kubernetes.default.svc";
  // The API server's CA bundle; empty: ca.crt beside `service_account_token_file` (the
  // projected volume the operator renders holds both).
  std::string api_ca;
  // In a pod: report usage and budget in the ManagedAgent's status.runtimes as this pod
  // (StatusReporter); empty: no report (the local data plane).
  std::string report_status_as;
  std::string admin_group = "agentry:admins";
};

// Serves until SIGTERM or SIGINT, then lets running turns finish within the grace period.
// Exit code 0 after a clean stop, 1 when it cannot start, 2 for a bad config.
int RunRuntime(const RuntimeOptions& options);

}  // namespace agentry::cli
