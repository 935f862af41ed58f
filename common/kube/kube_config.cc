// common/kube/kube_config.cc — see kube_config.h.
#include "common/kube/kube_config.h"

#include <cstdlib>
#include <filesystem>
#include <optional>

#include <yaml-cpp/yaml.h>

#include "common/file.h"

namespace agentry::kube {
namespace {

// The entry of `list` (clusters, users, contexts) named `name`, and its index; nullopt when
// there is none.
std::optional<YAML::Node> Named(const YAML::Node& list, const std::string& name, size_t* index) {
  if (!list.IsSequence()) return std::nullopt;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i]["name"] && list[i]["name"].IsScalar() && list[i]["name"].Scalar() == name) {
      *index = i;
      return list[i];
    }
  }
  return std::nullopt;
}

std::string Text(const YAML::Node& node, const char* key) {
  return node && node[key] && node[key].IsScalar() ? node[key].as<std::string>() : "";
}

// A path from the kubeconfig, relative to the file's directory unless absolute.
std::string Resolve(const std::string& path, const std::string& config_path) {
  if (path.empty() || path.front() == '/') return path;
  return (std::filesystem::path(config_path).parent_path() / path).string();
}

std::string TrimNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

StatusOr<std::string> DecodeBase64(std::string_view text) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  bool padding = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    const size_t v = kAlphabet.find(c);
    if (v == std::string_view::npos || padding) {
      return InvalidArgumentError("not base64: byte " + std::to_string(i));
    }
    bits = (bits << 6) | static_cast<uint32_t>(v);
    if (++count == 4) {
      out += static_cast<char>((bits >> 16) & 0xFF);
      out += static_cast<char>((bits >> 8) & 0xFF);
      out += static_cast<char>(bits & 0xFF);
      bits = 0;
      count = 0;
    }
  }
  if (count == 1) return InvalidArgumentError("not base64: a dangling character at the end");
  if (count == 2) out += static_cast<char>((bits >> 4) & 0xFF);
  if (count == 3) {
    out += static_cast<char>((bits >> 10) & 0xFF);
    out += static_cast<char>((bits >> 2) & 0xFF);
  }
  return out;
}

StatusOr<KubeConfig> LoadKubeConfig(const std::string& path) {
  const std::string where = "kubeconfig " + path + ": ";
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(where + e.what());
  }
  const std::string context_name = Text(root, "current-context");
  if (context_name.empty()) return InvalidArgumentError(where + "current-context: not set");
  size_t ci = 0, ui = 0, ki = 0;
  const std::optional<YAML::Node> found_context = Named(root["contexts"], context_name, &ki);
  if (!found_context) {
    return InvalidArgumentError(where + "no context named \"" + context_name + "\"");
  }
  const YAML::Node& context = *found_context;
  const std::string cluster_name = Text(context["context"], "cluster");
  const std::string user_name = Text(context["context"], "user");
  const std::optional<YAML::Node> cluster = Named(root["clusters"], cluster_name, &ci);
  if (!cluster) {
    return InvalidArgumentError(where + "contexts[" + std::to_string(ki) +
                                "].context.cluster: no cluster named \"" + cluster_name + "\"");
  }
  KubeConfig config;
  const YAML::Node c = (*cluster)["cluster"];
  const std::string cluster_path = "clusters[" + std::to_string(ci) + "].cluster";
  config.server = Text(c, "server");
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return InvalidArgumentError(where + cluster_path + ".server: an http(s):// URL, got \"" +
                                config.server + "\"");
  }
  config.ca_file = Resolve(Text(c, "certificate-authority"), path);
  if (const std::string data = Text(c, "certificate-authority-data"); !data.empty()) {
    StatusOr<std::string> pem = DecodeBase64(data);
    if (!pem.ok()) {
      return InvalidArgumentError(where + cluster_path +
                                  ".certificate-authority-data: " + pem.status().message());
    }
    config.ca_pem = *pem;
  }
  config.insecure_skip_tls_verify = Text(c, "insecure-skip-tls-verify") == "true";
  if (const std::string ns = Text(context["context"], "namespace"); !ns.empty()) {
    config.namespace_name = ns;
  }
  if (user_name.empty()) return config;
  const std::optional<YAML::Node> user = Named(root["users"], user_name, &ui);
  if (!user) {
    return InvalidArgumentError(where + "contexts[" + std::to_string(ki) +
                                "].context.user: no user named \"" + user_name + "\"");
  }
  const YAML::Node u = (*user)["user"];
  const std::string user_path = "users[" + std::to_string(ui) + "].user";
  if (u && (u["exec"] || u["auth-provider"])) {
    return UnimplementedError(where + user_path +
                              ": exec and auth-provider plugins are not supported; use a token, "
                              "tokenFile or a client certificate");
  }
  config.token = Text(u, "token");
  config.token_file = Resolve(Text(u, "tokenFile"), path);
  const auto pem = [&](const char* file_key, const char* data_key, std::string* out) -> Status {
    if (const std::string data = Text(u, data_key); !data.empty()) {
      StatusOr<std::string> decoded = DecodeBase64(data);
      if (!decoded.ok()) {
        return InvalidArgumentError(where + user_path + "." + data_key + ": " +
                                    decoded.status().message());
      }
      *out = *decoded;
    } else if (const std::string file = Resolve(Text(u, file_key), path); !file.empty()) {
      StatusOr<std::string> text = ReadFileToString(file);
      if (!text.ok()) {
        return InvalidArgumentError(where + user_path + "." + file_key + ": " +
                                    text.status().message());
      }
      *out = *text;
    }
    return OkStatus();
  };
  AGENTRY_RETURN_IF_ERROR(
      pem("client-certificate", "client-certificate-data", &config.client_cert_pem));
  AGENTRY_RETURN_IF_ERROR(pem("client-key", "client-key-data", &config.client_key_pem));
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return InvalidArgumentError(where + user_path +
                                ": a client certificate needs its key, and a key its certificate");
  }
  return config;
}

StatusOr<KubeConfig> InClusterConfig(const std::string& root) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return FailedPreconditionError(
        "not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
  }
  KubeConfig config;
  const std::string h = host;
  config.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  config.token_file = root + "/token";
  if (!std::filesystem::exists(config.token_file)) {
    return FailedPreconditionError("in-cluster: no service-account token at " + config.token_file);
  }
  config.ca_file = root + "/ca.crt";
  if (StatusOr<std::string> ns = ReadFileToString(root + "/namespace"); ns.ok()) {
    config.namespace_name = TrimNewlines(*ns);
  }
  return config;
}

StatusOr<KubeConfig> LoadDefaultKubeConfig() {
  if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string first = env;
    first = first.substr(0, first.find(':'));
    return LoadKubeConfig(first);
  }
  if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) return InClusterConfig();
  const char* home = std::getenv("HOME");
  if (home == nullptr) return FailedPreconditionError("no KUBECONFIG, not in a pod, and no HOME");
  return LoadKubeConfig(std::string(home) + "/.kube/config");
}

}  // namespace agentry::kube
