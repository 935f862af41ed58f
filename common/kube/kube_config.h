// common/kube/kube_config.h — how to reach a Kubernetes API server, from a kubeconfig file or
// from inside a pod.
//
//   StatusOr<KubeConfig> config = LoadDefaultKubeConfig();  // $KUBECONFIG, in-cluster, ~/.kube
//   StatusOr<std::unique_ptr<Client>> client = Client::Create(*config);
//
// Kubeconfig: the current context's cluster (server, certificate-authority[-data],
// insecure-skip-tls-verify) and user (token, tokenFile, client-certificate[-data] and
// client-key[-data]); relative paths are relative to the file, as kubectl has them. Exec and
// auth-provider plugins are not supported (an error says so). In a pod: the service account's
// token (re-read as the kubelet rotates it), CA and namespace under
// /var/run/secrets/kubernetes.io/serviceaccount, and KUBERNETES_SERVICE_HOST/PORT.
#pragma once

#include <string>

#include "common/status.h"

namespace agentry::kube {

struct KubeConfig {
  std::string server;  // "https://10.0.0.1:443"
  // Whom to trust: a PEM bundle in a file, or its text; neither: the system's roots.
  std::string ca_file{};
  std::string ca_pem{};
  bool insecure_skip_tls_verify = false;
  // Who we are: a bearer token (literal, or a file re-read as it rotates), and/or a client
  // certificate and key (PEM text).
  std::string token{};
  std::string token_file{};
  std::string client_cert_pem{};
  std::string client_key_pem{};
  std::string namespace_name = "default";  // the context's (or the pod's) namespace
};

// The current context of the kubeconfig at `path` (YAML). Errors name the file and the entry:
// "kubeconfig /x: users[0].user: exec plugins are not supported".
StatusOr<KubeConfig> LoadKubeConfig(const std::string& path);

// Inside a pod. `root` is where the service account is mounted (tests pass another).
StatusOr<KubeConfig> InClusterConfig(
    const std::string& root = "/var/run/secrets/kubernetes.io/serviceaccount");

// $KUBECONFIG (its first file) when set; else in-cluster when KUBERNETES_SERVICE_HOST is set;
// else ~/.kube/config.
StatusOr<KubeConfig> LoadDefaultKubeConfig();

// Standard base64 (RFC 4648, padding optional, whitespace ignored); InvalidArgument otherwise.
StatusOr<std::string> DecodeBase64(std::string_view text);

}  // namespace agentry::kube
