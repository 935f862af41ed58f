// A real Prometheus (Debian's /usr/bin/prometheus) scraping `agentry up`'s three processes
// under the chart's job names, with the chart's alert rules loaded. After a few sessions:
// every target is up; every metric that charts/agentry/files/alerts.yaml and dashboard.json
// reference has series, unless the local data plane cannot produce it (kExemptions says
// why); every rule evaluates without error and every dashboard query parses; and the
// counters add up to what the sessions did. Both files are read when the test runs, so an
// alert or panel added later is checked without touching this test.
#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "charts/tests/monitoring/promql_queries.h"
#include <cpprest/http_client.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/testing/child_process.h"
#include "common/testing/free_port.h"

namespace agentry {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::FreePort;

constexpr char kPrometheus[] = "/usr/bin/prometheus";

// ---------------------------------------------------------------------------------------------
// What the chart's alerts and dashboard reference: their queries and the metrics these select
// (charts/tests/monitoring/promql_queries.h, tested by promql_queries_test).

struct Referenced {
  std::map<std::string, std::set<std::string>> metrics;  // name -> where it is used
  // (metric, job) of each selector that names a job with '=' -> where it is used.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> jobs;
  std::vector<std::pair<std::string, std::string>> dashboard_exprs;  // where, expression
  size_t rules = 0;

  // The metrics `query` of `file` selects.
  void Add(const promql::Query& query, const std::string& file) {
    const std::string where = file + " " + query.where;
    for (const promql::Selector& selector : promql::Selectors(query.expr)) {
      metrics[selector.metric].insert(where);
      const std::string job = selector.Equal("job");
      if (!job.empty()) jobs[{selector.metric, job}].insert(where);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Metrics the local data plane cannot be expected to have series for. Anything else the
// alerts or the dashboard use must have series after the sessions below.

struct Exemption {
  std::string_view name;  // a metric family, or a prefix when `prefix`
  bool prefix = false;
  bool histogram = false;  // its _bucket, _sum and _count series are exempt too
  // Whether a binary of `agentry up` declares the family (HELP/TYPE) even with no sample:
  // then the exemption must stay true to a metric that exists (a renamed one fails).
  bool declared_locally = false;
  std::string_view why;
};

constexpr std::array<Exemption, 8> kExemptions = {{
    {.name = "agentry_operator_",
     .prefix = true,
     .why = "the operator reconciles ManagedAgents in a cluster; `agentry up` does not run it "
            "(e2e/kube does)"},
    {.name = "agentry_nodeagent_evictions_total",
     .declared_locally = true,
     .why = "a session's KV spilled to make room: a few small sessions never fill the KV budget"},
    {.name = "agentry_nodeagent_restores_total",
     .declared_locally = true,
     .why = "an evicted session brought back: there are no evictions here"},
    {.name = "agentry_runtime_tool_calls_total",
     .declared_locally = true,
     .why = "a series per tool and result once the model calls a tool: the test agent has no "
            "tools and its random model calls none"},
    {.name = "agentry_runtime_tool_call_duration_seconds",
     .histogram = true,
     .declared_locally = true,
     .why = "as agentry_runtime_tool_calls_total"},
    {.name = "agentry_runtime_status_reports_total",
     .why = "registered only with --report-status-as, when a runtime in a cluster writes its "
            "agent's status; `agentry up` reports to no API server"},
    {.name = "ALERTS", .why = "Prometheus writes it only while an alert is pending or firing"},
    {.name = "ALERTS_FOR_STATE", .why = "as ALERTS"},
}};

bool HasSuffix(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// `name` without a histogram's (or summary's) series suffix, when `is_histogram` says the
// family it would leave is one.
std::string Family(const std::string& name,
                   const std::function<bool(const std::string&)>& is_histogram) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (!HasSuffix(name, suffix)) continue;
    std::string base = name.substr(0, name.size() - std::string_view(suffix).size());
    if (is_histogram(base)) return base;
  }
  return name;
}

const Exemption* FindExemption(const std::string& name) {
  for (const Exemption& e : kExemptions) {
    if (e.prefix ? name.starts_with(e.name) : name == e.name) return &e;
    if (e.histogram && Family(name, [&](const std::string& b) { return b == e.name; }) == e.name) {
      return &e;
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Processes and HTTP.

std::string Join(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : "; ") + item;
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Polls `done` every 50 ms for up to `seconds`.
bool WaitFor(const std::function<bool()>& done, int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

struct Reply {
  int status = 0;
  Json json;
  std::string body;
};

// GET `path_and_query` (or POST `body` as JSON): the status and the body, parsed when JSON.
Reply Http(const std::string& url, const std::string& path_and_query,
           const std::optional<Json>& body = std::nullopt) {
  try {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::seconds(30));
    web::http::client::http_client client(url, config);
    web::http::http_response r =
        body ? client
                   .request(web::http::methods::POST, path_and_query, body->dump(),
                            "application/json")
                   .get()
             : client.request(web::http::methods::GET, path_and_query).get();
    Reply out{r.status_code(), nullptr, r.extract_utf8string(true).get()};
    out.json = Json::parse(out.body, nullptr, /*allow_exceptions=*/false);
    return out;
  } catch (const std::exception& e) {
    return {0, nullptr, e.what()};
  }
}

// The port a process of `agentry up` logged it serves /metrics on, once it has.
uint16_t LoggedMetricsPort(const std::string& log) {
  const std::string text = ReadAll(log);
  const size_t serving = text.find("\"msg\":\"serving\"");
  if (serving == std::string::npos) return 0;
  const size_t at = text.find("\"metrics_port\":", serving);
  return at == std::string::npos ? 0 : static_cast<uint16_t>(std::stoi(text.substr(at + 15)));
}

class PrometheusE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kPrometheus)) {
      GTEST_SKIP() << kPrometheus << " is missing: install Debian's prometheus package "
                   << "(scripts/bootstrap does) to scrape the data plane with a real Prometheus";
    }
    dir_ = (fs::temp_directory_path() / ("agentry-prom-" + std::to_string(getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // A failed run keeps the logs of all four processes and Prometheus's config.
  void TearDown() override {
    if (dir_.empty()) return;
    if (HasFailure()) {
      std::fprintf(stderr, "logs and config kept in %s\n", dir_.c_str());
    } else {
      fs::remove_all(dir_);
    }
  }

  // GET on Prometheus's HTTP API; a value is URL-encoded (PromQL has '+' and '&').
  Json Api(const std::string& path,
           const std::vector<std::pair<std::string, std::string>>& query = {}) const {
    std::string target = path;
    for (size_t i = 0; i < query.size(); ++i) {
      target += (i == 0 ? "?" : "&") + query[i].first + "=" +
                web::uri::encode_data_string(query[i].second);
    }
    return Http(prometheus_url_, target).json;
  }
  // One instant query's vector: labels and value of each sample; nullopt when it failed.
  std::optional<std::vector<std::pair<Json, double>>> Query(const std::string& promql) const {
    const Json r = Api("/api/v1/query", {{"query", promql}});
    if (!r.is_object() || r.value("status", "") != "success" ||
        r["data"]["resultType"] != "vector") {
      return std::nullopt;
    }
    std::vector<std::pair<Json, double>> out;
    for (const Json& sample : r["data"]["result"]) {
      out.emplace_back(sample["metric"], std::stod(sample["value"][1].get<std::string>()));
    }
    return out;
  }
  // A query that sums to one number: 0 when it has no series, NaN when it failed.
  double Scalar(const std::string& promql) const {
    const auto v = Query(promql);
    if (!v) return std::nan("");
    return v->empty() ? 0 : v->front().second;
  }

  std::string dir_;
  std::string prometheus_url_;
};

TEST_F(PrometheusE2eTest, ScrapesTheLocalDataPlaneAndHasTheSeriesTheAlertsAndDashboardUse) {
  // The chart's rules and dashboard as they are now; copied, so that Prometheus loads the
  // rules this test read.
  const fs::path files = fs::path(AGENTRY_SOURCE_DIR) / "charts/agentry/files";
  Referenced referenced;
  const std::string alerts = ReadAll(files / "alerts.yaml");
  const std::string dashboard = ReadAll(files / "dashboard.json");
  // The chart's templates/monitoring.yaml ships both (PrometheusRule, dashboard ConfigMap).
  EXPECT_FALSE(alerts.empty()) << files / "alerts.yaml"
                               << " is missing or empty";
  EXPECT_FALSE(dashboard.empty()) << files / "dashboard.json"
                                  << " is missing or empty";
  if (!alerts.empty()) {
    std::vector<promql::Query> rules;
    ASSERT_NO_THROW(rules = promql::RuleQueries(alerts)) << "alerts.yaml is not a rule file";
    referenced.rules = rules.size();
    for (const promql::Query& rule : rules) referenced.Add(rule, "alerts.yaml");
    std::ofstream(dir_ + "/alerts.yaml") << alerts;
  }
  if (!dashboard.empty()) {
    const Json parsed = Json::parse(dashboard, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(parsed.is_object()) << "dashboard.json is not a JSON object";
    // Every panel's targets[].expr, rows and nested panels included, and every query variable.
    for (const promql::Query& query : promql::DashboardQueries(parsed)) {
      referenced.Add(query, "dashboard.json");
      if (query.kind == promql::Query::Kind::kTarget) {
        referenced.dashboard_exprs.emplace_back("dashboard.json " + query.where, query.expr);
      }
    }
  }

  // The data plane: a generated test model, an agent without tools.
  {
    testing::ChildProcess make(
        AGENTRY_BINARY,
        {"make-test-model", "-o", dir_ + "/model.gguf", "--chat-template", "chatml", "--seed", "5"},
        dir_ + "/make-test-model.log");
    int code = -1;
    ASSERT_TRUE(WaitFor([&] { return make.Ended(&code); }, 30));
    ASSERT_EQ(code, 0) << ReadAll(dir_ + "/make-test-model.log");
  }
  std::ofstream(dir_ + "/agent.yaml") << R"(apiVersion: agentry.dev/v1alpha1
kind: ManagedAgent
metadata: {name: helper, namespace: e2e}
spec:
  model:
    name: tiny
    source: {file: model.gguf}
    contextLength: 2048
  instructions: You help.
)";
  const uint16_t api_port = FreePort();
  const std::string api_url = "http://127.0.0.1:" + std::to_string(api_port);
  testing::ChildProcess up(AGENTRY_BINARY,
                           {"up", "-f", dir_ + "/agent.yaml", "--dir", dir_ + "/up", "--port",
                            std::to_string(api_port), "--max-tokens", "8"},
                           dir_ + "/up.out");
  ASSERT_TRUE(WaitFor(
      [&] { return ReadAll(dir_ + "/up.out").find("is serving at") != std::string::npos; }, 60))
      << ReadAll(dir_ + "/up.out");
  // The node daemon and the state sidecar serve /metrics on free ports (`up` passes
  // --metrics-port 0) and log which; the runtime serves it on its API port.
  uint16_t node_port = 0;
  uint16_t state_port = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        node_port = LoggedMetricsPort(dir_ + "/up/nodeagent.log");
        state_port = LoggedMetricsPort(dir_ + "/up/state.log");
        return node_port != 0 && state_port != 0;
      },
      10));

  // Prometheus, with the chart's job names and the labels its PodMonitors attach in a cluster
  // (namespace and pod; agent on the agent's pods), which the alerts aggregate by.
  const uint16_t prometheus_port = FreePort();
  prometheus_url_ = "http://127.0.0.1:" + std::to_string(prometheus_port);
  const auto target = [](uint16_t port) { return "['127.0.0.1:" + std::to_string(port) + "']"; };
  std::ofstream(dir_ + "/prometheus.yml")
      << "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
      << (alerts.empty() ? "" : "rule_files: ['" + dir_ + "/alerts.yaml']\n") << "scrape_configs:\n"
      << "  - job_name: agentry-nodeagent\n"
      << "    static_configs:\n"
      << "      - targets: " << target(node_port) << "\n"
      << "        labels: {namespace: agentry-system, pod: agentry-nodeagent-local}\n"
      << "  - job_name: agentry-runtime\n"
      << "    static_configs:\n"
      << "      - targets: " << target(api_port) << "\n"
      << "        labels: {namespace: e2e, pod: helper-0, agent: helper}\n"
      << "  - job_name: agentry-state\n"
      << "    static_configs:\n"
      << "      - targets: " << target(state_port) << "\n"
      << "        labels: {namespace: e2e, pod: helper-0, agent: helper}\n";
  const std::string prometheus_log = dir_ + "/prometheus.log";
  testing::ChildProcess prometheus(
      kPrometheus,
      {"--config.file=" + dir_ + "/prometheus.yml", "--storage.tsdb.path=" + dir_ + "/tsdb",
       "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)},
      prometheus_log);
  ASSERT_TRUE(WaitFor([&] { return Http(prometheus_url_, "/-/ready").status == 200; }, 20))
      << ReadAll(prometheus_log);

  // Every configured target is scraped and up, under the chart's three job names.
  const std::set<std::string> jobs = {"agentry-nodeagent", "agentry-runtime", "agentry-state"};
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto up_samples = Query("up");
        return up_samples && up_samples->size() == jobs.size();
      },
      15))
      << Api("/api/v1/targets").dump(1);
  ASSERT_TRUE(WaitFor([&] { return Scalar("min(up)") == 1; }, 10))
      << Api("/api/v1/targets").dump(1);
  {
    std::set<std::string> seen;
    const auto up_samples = Query("up");
    ASSERT_TRUE(up_samples.has_value());
    for (const auto& [labels, value] : *up_samples) {
      EXPECT_EQ(value, 1) << labels.dump();
      seen.insert(labels.value("job", ""));
    }
    EXPECT_EQ(seen, jobs);
    const Json targets = Api("/api/v1/targets");
    ASSERT_TRUE(targets.is_object()) << "/api/v1/targets did not answer";
    EXPECT_EQ(targets["data"]["activeTargets"].size(), jobs.size());
    for (const Json& t : targets["data"]["activeTargets"]) {
      EXPECT_EQ(t.value("health", ""), "up") << t.dump();
      EXPECT_EQ(t.value("lastError", "?"), "") << t.dump();
    }
  }
  const double prompt_tokens_before = Scalar("sum(agentry_nodeagent_prompt_tokens_total)");
  ASSERT_FALSE(std::isnan(prompt_tokens_before));

  // A few sessions: two turns each, the second on the first's KV.
  int turns = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  for (const std::string session : {"a", "b", "c"}) {
    const Reply created = Http(api_url, "/v1/sessions", Json{{"id", session}});
    ASSERT_EQ(created.status, 201) << created.body;
    for (const std::string message : {"My name is Dana.", "What is my name?"}) {
      const Reply r =
          Http(api_url, "/v1/sessions/" + session + "/messages", Json{{"content", message}});
      ASSERT_EQ(r.status, 200) << r.body;
      ++turns;
      prompt_tokens += r.json["usage"]["prompt_tokens"].get<int64_t>();
      completion_tokens += r.json["usage"]["completion_tokens"].get<int64_t>();
      cached_tokens += r.json["usage"]["cached_tokens"].get<int64_t>();
    }
  }
  EXPECT_GT(cached_tokens, 0) << "second turns should reuse the first turns' KV";
  // Wait for a scrape of every target that started after the last reply.
  const double sessions_done =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_TRUE(WaitFor(
      [&] { return Scalar("count(timestamp(up) > " + std::to_string(sessions_done) + ")") == 3; },
      15))
      << "no scrape after the sessions";

  // The counters, as Prometheus has them, add up to what the sessions did: every process
  // started with this test, so each counter is what these turns made of it.
  EXPECT_GT(Scalar("sum(agentry_runtime_turns_total)"), 0);
  EXPECT_EQ(Scalar(R"(sum(agentry_runtime_turns_total{job="agentry-runtime", result="ok"}))"),
            turns);
  EXPECT_EQ(Scalar(R"(sum(agentry_runtime_tokens_total{kind="prompt"}))"), prompt_tokens);
  EXPECT_EQ(Scalar(R"(sum(agentry_runtime_tokens_total{kind="completion"}))"), completion_tokens);
  EXPECT_EQ(Scalar(R"(sum(agentry_runtime_tokens_total{kind="cached"}))"), cached_tokens);
  // The node daemon counts the prompt tokens it evaluated, not those reused from the KV:
  // what the runtime reported as prefilled.
  const double prompt_tokens_after =
      Scalar(R"(sum(agentry_nodeagent_prompt_tokens_total{job="agentry-nodeagent"}))");
  EXPECT_GT(prompt_tokens_after, prompt_tokens_before);
  EXPECT_EQ(prompt_tokens_after - prompt_tokens_before, prompt_tokens);
  // It counts an end-of-generation token too, which a reply does not carry.
  EXPECT_GE(Scalar("sum(agentry_nodeagent_generation_tokens_total)"), completion_tokens);
  EXPECT_GE(Scalar(R"(sum(agentry_state_requests_total{method="AppendEvents", code="OK"}))"),
            turns);
  EXPECT_EQ(Scalar(R"(sum(agentry_runtime_sessions{state="active"}))"), 3);

  // Every metric the alerts and the dashboard use has series, or is exempt, and then (where
  // `agentry up` registers it) at least declared by a binary: a renamed metric is not hidden
  // behind its old exemption.
  const Json names = Api("/api/v1/label/__name__/values");
  ASSERT_TRUE(names.is_object() && names["data"].is_array()) << names.dump();
  const std::set<std::string> with_series = names["data"].get<std::set<std::string>>();
  const Json metadata = Api("/api/v1/metadata");
  ASSERT_TRUE(metadata.is_object() && metadata["data"].is_object()) << metadata.dump();
  const auto is_histogram = [&](const std::string& family) {
    if (!metadata["data"].contains(family)) return false;
    for (const Json& m : metadata["data"][family]) {
      if (m["type"] == "histogram" || m["type"] == "summary") return true;
    }
    return false;
  };
  EXPECT_FALSE(referenced.metrics.empty());
  std::string exempt_absent;
  for (const auto& [name, used_by] : referenced.metrics) {
    const std::string where = Join(used_by);
    const std::string family = Family(name, is_histogram);
    const bool declared = metadata["data"].contains(family);
    if (const Exemption* exempt = FindExemption(name)) {
      if (!with_series.contains(name)) exempt_absent += " " + name;
      if (exempt->declared_locally) {
        EXPECT_TRUE(declared) << name << " is exempt (" << exempt->why << "), but no binary of "
                              << "`agentry up` declares " << family << " (used by " << where << ")";
      }
      continue;
    }
    EXPECT_TRUE(with_series.contains(name))
        << name << " has no series in Prometheus after the sessions (used by " << where << "): "
        << (declared ? "a binary declares the family (HELP/TYPE) but exported no sample of it"
                     : "no scraped binary exports it, not even HELP/TYPE: a typo, a metric "
                       "no binary has, or one to exempt in kExemptions with the reason");
  }
  std::printf("%zu metrics referenced; exempt, and without series here:%s\n",
              referenced.metrics.size(), exempt_absent.c_str());

  // A selector that names a job finds its metric under that job: a metric put under another
  // component's job, or a misspelt job, selects nothing in a cluster either.
  const std::set<std::string> chart_jobs = {"agentry-operator", "agentry-nodeagent",
                                            "agentry-runtime", "agentry-state"};
  for (const auto& [metric_and_job, used_by] : referenced.jobs) {
    const auto& [metric, job] = metric_and_job;
    if (job.find('$') != std::string::npos) continue;  // a Grafana variable
    EXPECT_TRUE(chart_jobs.contains(job))
        << metric << "{job=\"" << job << "\"}: not a job the chart sets up (used by "
        << Join(used_by) << ")";
    // Those without series are reported above.
    if (FindExemption(metric) != nullptr || !with_series.contains(metric)) continue;
    const auto by_job = Query("count by (job) (" + metric + ")");
    EXPECT_GT(Scalar("count(" + metric + "{job=\"" + job + "\"})"), 0)
        << metric << " has series, but none under job=\"" << job << "\" (used by " << Join(used_by)
        << "); count by job: " << (by_job ? Json(*by_job).dump() : "?");
  }

  // Prometheus loaded every rule, and each one evaluates without an error.
  if (referenced.rules > 0) {
    Json rules;
    const auto evaluated = [&] {
      rules = Api("/api/v1/rules");
      if (!rules.is_object()) return false;
      size_t n = 0;
      for (const Json& group : rules["data"]["groups"]) {
        for (const Json& rule : group["rules"]) {
          if (rule["health"] == "unknown") return false;
          ++n;
        }
      }
      return n == referenced.rules;
    };
    ASSERT_TRUE(WaitFor(evaluated, 15)) << rules.dump(1);
    for (const Json& group : rules["data"]["groups"]) {
      for (const Json& rule : group["rules"]) {
        EXPECT_EQ(rule.value("health", ""), "ok")
            << rule["name"] << ": " << rule.value("lastError", "");
      }
    }
  }
  // Every dashboard query is PromQL that Prometheus evaluates, with its variables set as the
  // dashboard's "All" would.
  for (const auto& [where, expr] : referenced.dashboard_exprs) {
    const std::optional<std::string> evaluable =
        promql::SubstituteVariables(expr, promql::AllValue);
    if (!evaluable) continue;  // a variable outside a label value: Grafana's alone
    const Json r = Api("/api/v1/query", {{"query", *evaluable}});
    EXPECT_EQ(r.value("status", ""), "success") << where << ": " << *evaluable << "\n" << r.dump();
  }

  // Both stop cleanly.
  EXPECT_EQ(prometheus.Signal(SIGTERM), 0) << ReadAll(prometheus_log);
  EXPECT_EQ(up.Signal(SIGINT), 0) << ReadAll(dir_ + "/up.out");
}

}  // namespace
}  // namespace agentry
