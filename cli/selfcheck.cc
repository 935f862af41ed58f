#include "cli/selfcheck.h"

#include <unistd.h>

#include <cstdio>
#include <functional>

#include <cpprest/http_client.h>

#include "common/config/agent_spec.h"
#include "common/cpu/cpu_features.h"
#include "common/file.h"
#include "common/http/server.h"
#include "common/log/log.h"
#include "common/metrics/process_metrics.h"
#include "common/metrics/registry.h"
#include "common/version.h"

namespace agentry::cli {
namespace {

struct CheckResult {
  bool ok = true;
  bool skipped = false;
  std::string detail;
};

CheckResult Pass(std::string detail) { return {true, false, std::move(detail)}; }
CheckResult Fail(std::string detail) { return {false, false, std::move(detail)}; }
CheckResult Skip(std::string detail) { return {true, true, std::move(detail)}; }

CheckResult CheckCpu() {
  const cpu::CpuFeatures& f = cpu::GetCpuFeatures();
  const int64_t cores = sysconf(_SC_NPROCESSORS_ONLN);
  const std::string features = f.ToString();
  return Pass(f.brand + ", " + std::to_string(cores) + " cores; " +
              (features.empty() ? "no SIMD" : features));
}

CheckResult CheckLogging() {
  return Pass("level " + std::string(log::LevelName(log::GetLevel())) + ", JSON lines on stderr");
}

CheckResult CheckManifest(const std::string& path) {
  StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return Fail(text.status().message());
  StatusOr<config::ManagedAgent> agent = config::ParseManagedAgent(*text, path);
  if (!agent.ok()) return Fail(agent.status().message());
  return Pass(path + ": ManagedAgent " + agent->metadata.namespace_name + "/" +
              agent->metadata.name + ", model " + agent->spec.model.name + ", " +
              std::to_string(agent->spec.tools.size()) + " tools");
}

struct HttpGetResult {
  int status = 0;
  std::string content_type;
  std::string body;
};

StatusOr<HttpGetResult> HttpGet(const std::string& base, const std::string& path) {
  try {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(10));
    web::http::client::http_client client(base, config);
    web::http::http_response response = client.request(web::http::methods::GET, path).get();
    HttpGetResult out;
    out.status = response.status_code();
    out.content_type = response.headers().content_type();
    out.body = response.extract_utf8string(true).get();
    return out;
  } catch (const std::exception& e) {
    return UnavailableError("GET " + base + path + ": " + e.what());
  }
}

// Writes `text` to promtool's stdin through a temporary file and returns its verdict.
CheckResult RunPromtool(const std::string& text) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    return Skip("promtool not installed (scripts/bootstrap installs it)");
  }
  char path[] = "/tmp/agentry-selfcheck-metrics-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return Fail("cannot create a temporary file");
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!written) {
    unlink(path);
    return Fail("cannot write a temporary file");
  }
  const std::string command = "promtool check metrics < " + std::string(path) + " 2>&1";
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    unlink(path);
    return Fail("cannot run promtool");
  }
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  const int rc = pclose(pipe);
  unlink(path);
  if (rc != 0 || !output.empty()) return Fail("promtool check metrics: " + output);
  return Pass("promtool check metrics: clean");
}

std::vector<std::pair<std::string, CheckResult>> CheckHttpServer() {
  std::vector<std::pair<std::string, CheckResult>> results;
  metrics::Registry registry;
  metrics::RegisterProcessMetrics(&registry, std::string(Version()));
  http::HttpServer server({.registry = &registry});
  if (Status s = server.Start(); !s.ok()) {
    results.emplace_back("http server", Fail(s.ToString()));
    return results;
  }
  results.emplace_back("http server", Pass("listening on " + server.base_url()));

  std::string metrics_text;
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    StatusOr<HttpGetResult> got = HttpGet(server.base_url(), path);
    if (!got.ok()) {
      results.emplace_back(std::string("GET ") + path, Fail(got.status().message()));
      continue;
    }
    if (got->status != 200) {
      results.emplace_back(std::string("GET ") + path,
                           Fail("status " + std::to_string(got->status) + ": " + got->body));
      continue;
    }
    if (std::string(path) == "/metrics") metrics_text = got->body;
    results.emplace_back(std::string("GET ") + path,
                         Pass("200, " + std::to_string(got->body.size()) + " bytes"));
  }
  server.Stop();
  if (!metrics_text.empty()) {
    if (metrics_text.find("agentry_build_info{version=\"") == std::string::npos) {
      results.emplace_back("metrics content", Fail("agentry_build_info missing"));
    } else {
      results.emplace_back("metrics exposition", RunPromtool(metrics_text));
    }
  }
  return results;
}

}  // namespace

int RunSelfcheck(const SelfcheckOptions& options) {
  std::vector<std::pair<std::string, CheckResult>> results;
  results.emplace_back("version",
                       Pass(std::string(Version()) + " (" + std::string(GitDescribe()) + ")"));
  results.emplace_back("cpu", CheckCpu());
  results.emplace_back("logging", CheckLogging());
  for (const std::string& manifest : options.manifests) {
    results.emplace_back("manifest", CheckManifest(manifest));
  }
  for (auto& r : CheckHttpServer()) results.push_back(std::move(r));

  int failed = 0;
  std::printf("agentry selfcheck\n");
  for (const auto& [name, result] : results) {
    const char* mark = !result.ok ? "FAIL" : (result.skipped ? "skip" : " ok ");
    std::printf("  [%s] %-20s %s\n", mark, name.c_str(), result.detail.c_str());
    if (!result.ok) ++failed;
  }
  if (failed > 0) {
    std::printf("selfcheck: %d of %zu checks failed\n", failed, results.size());
    return 1;
  }
  std::printf("selfcheck: all %zu checks passed\n", results.size());
  return 0;
}

}  // namespace agentry::cli
