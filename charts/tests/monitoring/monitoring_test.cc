// The alerts (charts/agentry/files/alerts.yaml) and the Grafana dashboard
// (charts/agentry/files/dashboard.json): promtool accepts the rules and passes their unit
// tests (alerts_test.yaml); every alert has its severity, annotations and a runbook in
// docs/operations.md, and a test where it fires and one where it does not; every dashboard
// query parses; and every metric either file names is one the binaries really export: the
// node daemon, the state sidecar, the runtime and the operator are started and scraped.
//
// promtool comes with the Debian package prometheus (scripts/bootstrap); without it the
// tests that need it skip and say so.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "charts/tests/monitoring/promql_queries.h"
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/testing/child_process.h"
#include "common/testing/run_command.h"

namespace agentry {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

// Paths built once at start; an allocation failure there just fails the test binary.
// NOLINTBEGIN(cert-err58-cpp)
const std::string kSource = AGENTRY_SOURCE_DIR;
const std::string kAlerts = kSource + "/charts/agentry/files/alerts.yaml";
const std::string kAlertTests = kSource + "/charts/tests/monitoring/alerts_test.yaml";
const std::string kDashboard = kSource + "/charts/agentry/files/dashboard.json";
const std::string kOperations = kSource + "/docs/operations.md";
const std::string kRunbooks = "https://github.com/agentry/agentry/blob/main/docs/operations.md#";
// NOLINTEND(cert-err58-cpp)

bool HavePromtool() { return testing::RunCommand("command -v promtool").code == 0; }

#define SKIP_WITHOUT_PROMTOOL()                                                    \
  if (!HavePromtool()) {                                                           \
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus, which " \
                    "scripts/bootstrap installs)";                                 \
  }

std::string ReadFile(const std::string& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// ---------------------------------------------------------------------------------------
// The alerts.

struct Alert {
  std::string name;
  YAML::Node rule;
};

std::vector<Alert> Alerts() {
  std::vector<Alert> out;
  const YAML::Node file = YAML::LoadFile(kAlerts);
  for (const YAML::Node& group : file["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      if (rule["alert"]) out.push_back({rule["alert"].as<std::string>(), rule});
    }
  }
  return out;
}

TEST(AlertsTest, PromtoolChecksTheRules) {
  SKIP_WITHOUT_PROMTOOL();
  const testing::CommandOutput out = testing::RunCommand("promtool check rules " + kAlerts);
  EXPECT_EQ(out.code, 0) << out.text;
  EXPECT_NE(out.text.find("SUCCESS"), std::string::npos) << out.text;
}

TEST(AlertsTest, PromtoolUnitTestsPass) {
  SKIP_WITHOUT_PROMTOOL();
  const testing::CommandOutput out = testing::RunCommand("promtool test rules " + kAlertTests);
  EXPECT_EQ(out.code, 0) << out.text;
}

TEST(AlertsTest, EveryAlertHasForSeverityAnnotationsAndARunbook) {
  const std::vector<Alert> alerts = Alerts();
  ASSERT_GE(alerts.size(), 9u);
  const std::string operations = ReadFile(kOperations);
  ASSERT_FALSE(operations.empty()) << kOperations;
  std::set<std::string> names;
  for (const Alert& a : alerts) {
    SCOPED_TRACE(a.name);
    EXPECT_TRUE(names.insert(a.name).second) << "defined twice";
    EXPECT_TRUE(a.rule["for"] && !a.rule["for"].as<std::string>().empty()) << "no for:";
    const std::string severity = a.rule["labels"]["severity"].as<std::string>("");
    EXPECT_TRUE(severity == "page" || severity == "ticket") << "severity: " << severity;
    for (const char* key : {"summary", "description"}) {
      EXPECT_FALSE(a.rule["annotations"][key].as<std::string>("").empty()) << "no " << key;
    }
    // GitHub's anchor for "### AgentryName" is the heading in lower case.
    EXPECT_EQ(a.rule["annotations"]["runbook_url"].as<std::string>(""), kRunbooks + Lower(a.name));
    EXPECT_NE(operations.find("\n### " + a.name + "\n"), std::string::npos)
        << "no runbook heading in docs/operations.md";
  }
  // And no runbook for an alert that is not there.
  const size_t runbooks = operations.find("\n## Runbooks\n");
  ASSERT_NE(runbooks, std::string::npos) << "docs/operations.md has no \"## Runbooks\"";
  const std::regex heading(R"(\n### (\S+)\n)");
  const std::string section = operations.substr(runbooks);
  for (auto it = std::sregex_iterator(section.begin(), section.end(), heading);
       it != std::sregex_iterator(); ++it) {
    EXPECT_EQ(names.count((*it)[1].str()), 1u) << "runbook without an alert: " << (*it)[1].str();
  }
}

TEST(AlertsTest, EveryAlertIsTestedFiringAndQuiet) {
  std::map<std::string, std::pair<int, int>> cases;  // alert: (firing, quiet)
  const YAML::Node file = YAML::LoadFile(kAlertTests);
  for (const YAML::Node& test : file["tests"]) {
    for (const YAML::Node& check : test["alert_rule_test"]) {
      const std::string name = check["alertname"].as<std::string>();
      const YAML::Node expected = check["exp_alerts"];
      (expected && expected.size() > 0 ? cases[name].first : cases[name].second)++;
    }
  }
  for (const Alert& a : Alerts()) {
    EXPECT_GT(cases[a.name].first, 0) << a.name << ": no test where it fires";
    EXPECT_GT(cases[a.name].second, 0) << a.name << ": no test where it stays quiet";
  }
}

// ---------------------------------------------------------------------------------------
// The dashboard.

// NOLINTNEXTLINE(cert-err58-cpp): a constant table; see the paths above.
const std::map<std::string, std::string> kVariables = {{"namespace", "team-a"},
                                                       {"agent", "triage"},
                                                       {"__rate_interval", "2m"},
                                                       {"__interval", "1m"},
                                                       {"__range", "1h"}};

// `query` with Grafana's template variables ($name, ${name}) replaced by a value of each;
// an unknown one is a test failure.
std::string Substitute(const std::string& query, const std::string& where) {
  return *promql::SubstituteVariables(
      query, [&](const std::string& name, bool) -> std::optional<std::string> {
        const auto value = kVariables.find(name);
        if (value != kVariables.end()) return value->second;
        ADD_FAILURE() << where << ": unknown template variable $" << name;
        return "";
      });
}

Json Dashboard() { return Json::parse(ReadFile(kDashboard)); }

// Every PromQL query of the dashboard, variables substituted: the panels' targets (rows'
// panels included), and the series selector inside each query variable's label_values().
std::vector<promql::Query> DashboardQueries() {
  std::vector<promql::Query> queries = promql::DashboardQueries(Dashboard());
  std::vector<promql::Query> out;
  out.reserve(queries.size());
  for (promql::Query& q : queries) {
    if (q.expr.empty()) {
      ADD_FAILURE() << q.where << ": selects no series; not label_values(SELECTOR, LABEL)";
      continue;
    }
    q.expr = Substitute(q.expr, q.where);
    out.push_back(std::move(q));
  }
  return out;
}

TEST(DashboardTest, IsAGrafanaDashboardOnAPrometheusDatasourceVariable) {
  const Json d = Dashboard();
  EXPECT_GE(d["schemaVersion"].get<int>(), 36);
  EXPECT_FALSE(d.value("uid", "").empty());
  std::map<std::string, Json> variables;
  for (const Json& v : d["templating"]["list"]) variables[v["name"]] = v;
  ASSERT_EQ(variables.count("datasource"), 1u);
  EXPECT_EQ(variables["datasource"]["type"], "datasource");
  EXPECT_EQ(variables["datasource"]["query"], "prometheus");
  for (const char* name : {"namespace", "agent"}) {
    ASSERT_EQ(variables.count(name), 1u) << name;
    EXPECT_EQ(variables[name]["type"], "query") << name;
    EXPECT_EQ(variables[name]["datasource"]["uid"], "${datasource}") << name;
  }
  const Json datasource = {{"type", "prometheus"}, {"uid", "${datasource}"}};
  std::set<int> ids;
  int queried = 0;
  for (const Json& p : d["panels"]) {
    SCOPED_TRACE(p.value("title", ""));
    EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << "panel id used twice";
    for (const char* key : {"x", "y", "w", "h"}) EXPECT_TRUE(p["gridPos"].contains(key)) << key;
    if (p["type"] == "row") continue;
    EXPECT_EQ(p["datasource"], datasource);
    ASSERT_FALSE(p.value("targets", Json::array()).empty()) << "a panel without a query";
    for (const Json& t : p["targets"]) {
      EXPECT_EQ(t["datasource"], datasource);
      EXPECT_FALSE(t.value("expr", "").empty());
    }
    ++queried;
  }
  EXPECT_GE(queried, 20);
}

TEST(DashboardTest, EveryQueryParses) {
  SKIP_WITHOUT_PROMTOOL();
  const std::vector<promql::Query> queries = DashboardQueries();
  ASSERT_GE(queries.size(), 20u);
  // As recording rules: promtool parses each expression and names the one it cannot.
  YAML::Emitter rules;
  rules << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
  rules << YAML::BeginMap << YAML::Key << "name" << YAML::Value << "dashboard";
  rules << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
  for (size_t i = 0; i < queries.size(); ++i) {
    rules << YAML::BeginMap << YAML::Key << "record" << YAML::Value
          << "dashboard:query_" + std::to_string(i) << YAML::Key << "expr" << YAML::Value
          << queries[i].expr << YAML::EndMap;
  }
  rules << YAML::EndSeq << YAML::EndMap << YAML::EndSeq << YAML::EndMap;
  const fs::path file =
      fs::temp_directory_path() / ("agentry-dashboard-rules-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(file) << rules.c_str();
  const testing::CommandOutput out = testing::RunCommand("promtool check rules " + file.string());
  EXPECT_EQ(out.code, 0) << out.text;
  EXPECT_NE(out.text.find("SUCCESS: " + std::to_string(queries.size()) + " rules found"),
            std::string::npos)
      << out.text;
  if (out.code != 0) {
    // Name the panels of the rules promtool names.
    for (size_t i = 0; i < queries.size(); ++i) {
      if (out.text.find("\"dashboard:query_" + std::to_string(i) + "\"") != std::string::npos) {
        ADD_FAILURE() << queries[i].where << ": " << queries[i].expr;
      }
    }
  }
  fs::remove(file);
}

TEST(DashboardTest, VariablesAreSubstitutedAndUnknownOnesCaught) {
  EXPECT_EQ(Substitute(R"(rate(x{agent=~"$agent", ns="${namespace}"}[$__rate_interval]))", "t"),
            R"(rate(x{agent=~"triage", ns="team-a"}[2m]))");
  EXPECT_EQ(Substitute(R"q(label_replace(x, "a", "$1", "b", "(.*)"))q", "t"),
            R"q(label_replace(x, "a", "$1", "b", "(.*)"))q");
  EXPECT_NONFATAL_FAILURE(Substitute("x[$nope]", "t"), "unknown template variable $nope");
}

// ---------------------------------------------------------------------------------------
// The metrics the binaries export, scraped from the running processes.

// GET /metrics over HTTP/1.0: the whole response, read until the server closes.
std::string Scrape(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[8192];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) got.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return got;
}

// The series names an exposition can hold: each family's name from its TYPE line (a
// family with no samples still has one), plus _bucket, _sum and _count of histograms and
// summaries.
std::set<std::string> SeriesNames(const std::string& exposition) {
  std::set<std::string> names;
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string hash, keyword, name, type;
    if (!(words >> hash >> keyword >> name >> type) || hash != "#" || keyword != "TYPE") continue;
    names.insert(name);
    if (type == "histogram") names.insert(name + "_bucket");
    if (type == "histogram" || type == "summary") {
      names.insert(name + "_sum");
      names.insert(name + "_count");
    }
  }
  return names;
}

// The first number after `key` in the log, once `ready` is in it; 0 after 20 s without.
int PortFromLog(const std::string& log, const std::string& ready, const std::string& key) {
  for (int i = 0; i < 400; ++i) {
    const std::string text = ReadFile(log);
    if (text.find(ready) != std::string::npos) {
      const std::regex re(key + "([0-9]+)");
      std::smatch m;
      return std::regex_search(text, m, re) ? std::stoi(m[1].str()) : 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

// Every name the alerts and the dashboard select, with where, and the job it selects on.
struct Use {
  std::string where;
  std::string job;
};

std::map<std::string, std::vector<Use>> UsedMetrics() {
  std::map<std::string, std::vector<Use>> used;
  for (const promql::Query& q : promql::RuleQueries(ReadFile(kAlerts))) {
    if (q.kind != promql::Query::Kind::kAlert) continue;
    for (const promql::Selector& s : promql::Selectors(q.expr)) {
      used[s.metric].push_back({q.where, s.Equal("job")});
    }
  }
  for (const promql::Query& q : DashboardQueries()) {
    for (const promql::Selector& s : promql::Selectors(q.expr)) {
      used[s.metric].push_back({"dashboard " + q.where, s.Equal("job")});
    }
  }
  return used;
}

class ExportedMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/agmon-XXXXXX";  // short: unix socket paths stay under 108 bytes
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    processes_.clear();  // killed before their directory goes
    fs::remove_all(dir_);
  }

  // Starts `binary args...`, logging to NAME.log; the /metrics port it logs.
  int Start(const std::string& name, const std::string& binary,
            const std::vector<std::string>& args, const std::string& ready,
            const std::string& port_key) {
    const std::string log = dir_ + "/" + name + ".log";
    processes_.push_back(std::make_unique<testing::ChildProcess>(binary, args, log));
    const int port = PortFromLog(log, ready, port_key);
    if (port == 0) ADD_FAILURE() << name << " did not start:\n" << ReadFile(log);
    return port;
  }

  std::string dir_;
  std::vector<std::unique_ptr<testing::ChildProcess>> processes_;
};

TEST_F(ExportedMetricsTest, EveryMetricTheAlertsAndTheDashboardUseIsExported) {
  const std::string bin = AGENTRY_BIN;
  ASSERT_EQ(testing::RunCommand(bin + " make-test-model -o " + dir_ + "/m.gguf").code, 0);
  std::ofstream(dir_ + "/agent.yaml") << R"(apiVersion: agentry.dev/v1alpha1
kind: ManagedAgent
metadata: {name: watched, namespace: monitoring}
spec:
  model: {name: tiny, source: {file: m.gguf}}
  instructions: You are watched.
  budget: {tokensPerDay: 100000, tokensPerSession: 10000}
)";
  // An API server that is not there: the operator serves /metrics while it tries for the
  // Lease, every family registered.
  std::ofstream(dir_ + "/kubeconfig") << R"(apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: agentry-system}}]
current-context: none
)";
  std::map<std::string, int> ports;  // by scrape job
  ports["agentry-nodeagent"] =
      Start("nodeagent", bin,
            {"nodeagent", "--socket", dir_ + "/n.sock", "--model",
             "tiny=" + dir_ + "/m.gguf,template=chatml", "--metrics-port", "0", "-t", "1"},
            R"("msg":"serving")", R"("metrics_port":)");
  ports["agentry-state"] = Start(
      "state", bin,
      {"state", "--dir", dir_ + "/state", "--socket", dir_ + "/s.sock", "--metrics-port", "0"},
      R"("msg":"serving")", R"("metrics_port":)");
  ports["agentry-runtime"] =
      Start("runtime", bin,
            {"runtime", "--config", dir_ + "/agent.yaml", "--port", "0", "--state-socket",
             dir_ + "/s.sock", "--node-socket", dir_ + "/n.sock"},
            R"("msg":"serving")", R"("url":"http://127\.0\.0\.1:)");
  ports["agentry-operator"] =
      Start("operator", AGENTRY_OPERATOR_BIN,
            {"--kubeconfig", dir_ + "/kubeconfig", "--metrics-host", "127.0.0.1", "--metrics-port",
             "0", "--identity", "monitoring-test"},
            R"("msg":"starting")", R"("metrics":"http://127\.0\.0\.1:)");
  // What each job's binary must show, so a scrape of the wrong thing cannot pass.
  const std::map<std::string, std::string> marker = {
      {"agentry-nodeagent", "agentry_nodeagent_sessions"},
      {"agentry-state", "agentry_state_requests_total"},
      {"agentry-runtime", "agentry_runtime_turns_total"},
      {"agentry-operator", "agentry_operator_leader"}};
  std::map<std::string, std::set<std::string>> exported;  // by job
  std::set<std::string> all;
  for (const auto& [job, port] : ports) {
    if (port == 0) continue;
    const std::string body = Scrape(port);
    exported[job] = SeriesNames(body);
    EXPECT_EQ(exported[job].count(marker.at(job)), 1u) << job << ":\n" << body;
    all.insert(exported[job].begin(), exported[job].end());
  }
  ASSERT_EQ(exported.size(), 4u);

  // Series Prometheus makes itself rather than scrapes.
  const std::set<std::string> prometheus = {"up",
                                            "scrape_duration_seconds",
                                            "scrape_samples_scraped",
                                            "scrape_samples_post_metric_relabeling",
                                            "scrape_series_added",
                                            "ALERTS",
                                            "ALERTS_FOR_STATE"};
  const std::map<std::string, std::vector<Use>> used = UsedMetrics();
  ASSERT_GE(used.size(), 25u) << "the selectors were not read";
  for (const auto& [metric, uses] : used) {
    if (prometheus.count(metric) > 0) continue;
    for (const Use& use : uses) {
      if (all.count(metric) == 0) {
        ADD_FAILURE() << metric << " (" << use.where << ") is exported by no binary";
      } else if (!use.job.empty() && exported.count(use.job) == 0) {
        ADD_FAILURE() << metric << " (" << use.where << ") selects job \"" << use.job
                      << "\", which is none of the chart's scrape jobs";
      } else if (!use.job.empty() && exported[use.job].count(metric) == 0) {
        ADD_FAILURE() << metric << " (" << use.where << ") is not exported by the binary of job "
                      << use.job;
      }
    }
  }
}

}  // namespace
}  // namespace agentry
