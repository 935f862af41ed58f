// A real Prometheus (Debian's /usr/bin/prometheus) scraping `agentry up`'s three processes
// under the chart's job names, with the chart's alert rules loaded. After a few sessions:
// every target is up; every metric that charts/agentry/files/alerts.yaml and dashboard.json
// reference has series, unless the local data plane cannot produce it (kExemptions says
// why); every rule evaluates without error and every dashboard query parses; and the
// counters add up to what the sessions did. Both files are read when the test runs, so an
// alert or panel added later is checked without touching this test.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
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
#include <tuple>
#include <utility>
#include <vector>

#include <cpprest/http_client.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/testing/child_process.h"

namespace agentry {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kPrometheus[] = "/usr/bin/prometheus";

// ---------------------------------------------------------------------------------------------
// Metric names in PromQL.

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

size_t SkipSpace(std::string_view s, size_t i) {
  while (i < s.size() && IsSpace(s[i])) ++i;
  return i;
}

// s[i] is a quote: the index past the closing one; `*content` gets what is between (escapes
// kept as written: a metric name has none).
size_t SkipString(std::string_view s, size_t i, std::string* content = nullptr) {
  const char quote = s[i];
  const size_t start = ++i;
  for (; i < s.size(); ++i) {
    if (s[i] == '\\' && quote != '`') {
      ++i;
    } else if (s[i] == quote) {
      if (content != nullptr) *content = std::string(s.substr(start, i - start));
      return i + 1;
    }
  }
  return s.size();
}

// s[i] is `open`: the index past its matching `close`, strings inside skipped.
size_t SkipGroup(std::string_view s, size_t i, char open, char close) {
  int depth = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"' || c == '\'' || c == '`') {
      i = SkipString(s, i);
      continue;
    }
    if (c == open) ++depth;
    if (c == close && --depth == 0) return i + 1;
    ++i;
  }
  return s.size();
}

// A Grafana variable at s[i] == '$': $name, ${name}, ${name:format}. The index past it.
size_t SkipGrafanaVariable(std::string_view s, size_t i) {
  ++i;
  if (i < s.size() && s[i] == '{') return SkipGroup(s, i, '{', '}');
  while (i < s.size() && IsIdentChar(s[i])) ++i;
  return i;
}

// Words that are PromQL, not metrics: aggregation operators (which may put `by (...)` before
// their arguments, so they are not always followed by '('), binary operators and modifiers.
// PromQL reads these in any case.
constexpr std::array<std::string_view, 22> kKeywords = {
    "sum",          "min",     "max",  "avg",      "group",  "stddev",      "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio", "and",    "or",
    "unless",       "atan2",   "bool", "offset",   "inf",    "nan"};
// Keywords whose parenthesised list that follows holds label names.
constexpr std::array<std::string_view, 6> kLabelListKeywords = {
    "by", "without", "on", "ignoring", "group_left", "group_right"};

template <size_t N>
bool Contains(const std::array<std::string_view, N>& words, std::string_view word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The label matchers with '=' in the braces at s[open] (up to `end`, past the '}'): label to
// value, Grafana variables left as written.
std::map<std::string, std::string> EqualityMatchers(std::string_view s, size_t open, size_t end) {
  std::map<std::string, std::string> out;
  for (size_t j = open + 1; j < end;) {
    if (s[j] == '"' || s[j] == '\'' || s[j] == '`') {
      j = SkipString(s, j);
    } else if (IsIdentStart(s[j])) {
      const size_t start = j;
      while (j < end && IsIdentChar(s[j])) ++j;
      const std::string label(s.substr(start, j - start));
      size_t k = SkipSpace(s, j);
      if (k + 1 < end && s[k] == '=' && s[k + 1] != '~') {
        k = SkipSpace(s, k + 1);
        std::string value;
        if (k < end && (s[k] == '"' || s[k] == '\'' || s[k] == '`')) {
          j = SkipString(s, k, &value);
          out[label] = value;
        }
      }
    } else {
      ++j;
    }
  }
  return out;
}

// One vector selector: its metric and, when it has job="...", that job.
struct Selector {
  std::string metric;
  std::string job;
  bool operator<(const Selector& o) const {
    return std::tie(metric, job) < std::tie(o.metric, o.job);
  }
  bool operator==(const Selector& o) const { return metric == o.metric && job == o.job; }
};

// The vector selectors of a PromQL expression (possibly with Grafana variables in it):
// identifiers that are not functions, keywords or label names, with their matchers; ranges,
// strings, numbers and durations skipped; {__name__="x"} selects x.
std::set<Selector> PromqlSelectors(std::string_view s) {
  std::set<Selector> selectors;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '#') {  // a comment, to the end of the line
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '"' || c == '\'' || c == '`') {
      i = SkipString(s, i);
    } else if (c == '$') {
      i = SkipGrafanaVariable(s, i);
    } else if (c == '[') {  // a range or subquery: durations and variables only
      i = SkipGroup(s, i, '[', ']');
    } else if (c == '{') {  // a selector without a metric name before it
      const size_t end = SkipGroup(s, i, '{', '}');
      std::map<std::string, std::string> matchers = EqualityMatchers(s, i, end);
      if (!matchers["__name__"].empty()) selectors.insert({matchers["__name__"], matchers["job"]});
      i = end;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < s.size() &&
                std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      // A number, a duration (5m, 1h30m) or hex: letters after digits belong to it.
      while (i < s.size() && (IsIdentChar(s[i]) || s[i] == '.')) ++i;
    } else if (IsIdentStart(c)) {
      const size_t start = i;
      while (i < s.size() && IsIdentChar(s[i])) ++i;
      const std::string word(s.substr(start, i - start));
      const size_t next = SkipSpace(s, i);
      const bool call = next < s.size() && s[next] == '(';
      if (Contains(kLabelListKeywords, Lower(word))) {
        if (call) i = SkipGroup(s, next, '(', ')');  // label names
      } else if (Contains(kKeywords, Lower(word)) || call) {
        // an operator or a function: its arguments are read as the loop goes on
      } else if (next < s.size() && s[next] == '{') {
        const size_t end = SkipGroup(s, next, '{', '}');
        selectors.insert({word, EqualityMatchers(s, next, end)["job"]});
        i = end;
      } else {
        selectors.insert({word, ""});
      }
    } else {
      ++i;
    }
  }
  return selectors;
}

std::set<std::string> PromqlMetricNames(std::string_view s) {
  std::set<std::string> names;
  for (const Selector& selector : PromqlSelectors(s)) names.insert(selector.metric);
  return names;
}

// A Grafana Prometheus variable query: label_values(SELECTOR, label) and query_result(EXPR)
// select metrics; label_values(label), label_names() and metrics(regex) select none.
std::set<Selector> GrafanaVariableSelectors(std::string_view q) {
  const size_t at = SkipSpace(q, 0);
  const size_t open = q.find('(', at);
  const std::string function(open == std::string_view::npos ? "" : q.substr(at, open - at));
  if (function == "label_names" || function == "metrics") return {};
  if (function == "query_result") {
    const size_t end = SkipGroup(q, open, '(', ')');
    return PromqlSelectors(q.substr(open + 1, end - open - 2));
  }
  if (function != "label_values") return PromqlSelectors(q);  // a plain PromQL query
  // The selector is what comes before the last comma outside braces and strings.
  const size_t end = SkipGroup(q, open, '(', ')');
  size_t comma = std::string_view::npos;
  for (size_t i = open + 1; i + 1 < end;) {
    if (q[i] == '"' || q[i] == '\'' || q[i] == '`') {
      i = SkipString(q, i);
    } else if (q[i] == '{') {
      i = SkipGroup(q, i, '{', '}');
    } else if (q[i] == '(') {
      i = SkipGroup(q, i, '(', ')');
    } else {
      if (q[i] == ',') comma = i;
      ++i;
    }
  }
  if (comma == std::string_view::npos) return {};  // label_values(label): every series
  return PromqlSelectors(q.substr(open + 1, comma - open - 1));
}

// A dashboard expression as Prometheus can evaluate it: Grafana's interval variables become
// 1m, and any other variable inside a string (a label matcher's value) ".*", which is what
// the dashboard's "All" sends. Empty when a variable is left outside a string.
std::string SubstituteGrafanaVariables(std::string_view s) {
  std::string out;
  bool in_string = false;
  char quote = 0;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (in_string && c == '\\' && i + 1 < s.size()) {
      out.append(s.substr(i, 2));
      i += 2;
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') {
      if (!in_string) {
        in_string = true;
        quote = c;
      } else if (c == quote) {
        in_string = false;
      }
      out += c;
      ++i;
      continue;
    }
    if (c != '$') {
      out += c;
      ++i;
      continue;
    }
    const size_t end = SkipGrafanaVariable(s, i);
    std::string name(s.substr(i + 1, end - i - 1));
    if (!name.empty() && name.front() == '{') name = name.substr(1, name.size() - 2);
    name = name.substr(0, name.find(':'));
    if (name == "__rate_interval" || name == "__interval" || name == "__range") {
      out += "1m";
    } else if (in_string) {
      out += ".*";
    } else {
      return "";
    }
    i = end;
  }
  return out;
}

TEST(PromqlMetricNamesTest, KeepsMetricsAndDropsFunctionsKeywordsLabelsAndDurations) {
  EXPECT_EQ(PromqlMetricNames(
                R"(histogram_quantile(0.95, sum by (namespace, pod, model, le) (
              rate(agentry_x_seconds_bucket{job="agentry-nodeagent", le!="+Inf"}[10m]))) > 2)"),
            (std::set<std::string>{"agentry_x_seconds_bucket"}));
  EXPECT_EQ(PromqlMetricNames(R"(a_ratio{job="j"} > 0.9
          and on (namespace, pod, device) group_left(model)
          rate(b_total[10m] offset 5m) > 0.05 or absent(up{job="x"}) unless vector(1e-3))"),
            (std::set<std::string>{"a_ratio", "b_total", "up"}));
  // Aggregations with the clause after, in upper case; count_values' label string; topk's
  // number; a subquery; a comment; a Grafana variable in a range and in a matcher.
  EXPECT_EQ(PromqlMetricNames("SUM(rate(c_total{agent=~\"$agent\"}[$__rate_interval])) BY (job)"
                              " / count_values(\"version\", d_info) # e_total is a comment\n"
                              " + topk(5, max_over_time(f_gauge[1h:5m])) * 60 + bool 0x1F"),
            (std::set<std::string>{"c_total", "d_info", "f_gauge"}));
  EXPECT_EQ(PromqlMetricNames(R"({__name__="g_total", job="x"} + {__name__=~"h.*"})"),
            (std::set<std::string>{"g_total"}));
  EXPECT_EQ(PromqlMetricNames(R"q(label_replace(i_total, "dst", "$1", "src", "(.*)"))q"),
            (std::set<std::string>{"i_total"}));
  // The job a selector names with '=', wherever the metric's name is.
  EXPECT_EQ(PromqlSelectors(R"(rate(x_total{code="b", job = "a"}[5m]) / y{job=~"b"} + )"
                            R"({__name__="z", job="c"} + on (job) up)"),
            (std::set<Selector>{{"up", ""}, {"x_total", "a"}, {"y", ""}, {"z", "c"}}));
  EXPECT_EQ(GrafanaVariableSelectors(
                R"(label_values(agentry_build_info{job="r", namespace=~"$namespace"}, agent))"),
            (std::set<Selector>{{"agentry_build_info", "r"}}));
  EXPECT_EQ(GrafanaVariableSelectors("label_values(namespace)"), std::set<Selector>{});
  EXPECT_EQ(GrafanaVariableSelectors("query_result(sum by (x) (j_total))"),
            (std::set<Selector>{{"j_total", ""}}));
  EXPECT_EQ(SubstituteGrafanaVariables(
                R"(rate(a{n=~"$namespace", b="${agent:regex}"}[$__rate_interval]))"),
            R"(rate(a{n=~".*", b=".*"}[1m]))");
  EXPECT_EQ(SubstituteGrafanaVariables("sum by ($label) (a)"), "");
}

// ---------------------------------------------------------------------------------------------
// What the chart's alerts and dashboard reference.

struct Referenced {
  std::map<std::string, std::set<std::string>> metrics;  // name -> where it is used
  std::map<Selector, std::set<std::string>> jobs;        // the selectors that name a job
  std::vector<std::pair<std::string, std::string>> dashboard_exprs;  // where, expression
  size_t rules = 0;

  void Add(const std::set<Selector>& selectors, const std::string& where) {
    for (const Selector& selector : selectors) {
      metrics[selector.metric].insert(where);
      if (!selector.job.empty()) jobs[selector].insert(where);
    }
  }
};

void AddAlertRules(const std::string& text, Referenced* out) {
  const YAML::Node root = YAML::Load(text);
  for (const YAML::Node& group : root["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      ++out->rules;
      const std::string name = rule["alert"] ? rule["alert"].as<std::string>()
                                             : "record " + rule["record"].as<std::string>();
      out->Add(PromqlSelectors(rule["expr"].as<std::string>()), "alerts.yaml " + name);
    }
  }
}

// Every panel's targets[].expr, rows and nested panels included, and every query variable.
void AddDashboard(const Json& node, const std::string& title, Referenced* out) {
  if (node.is_array()) {
    for (const Json& child : node) AddDashboard(child, title, out);
    return;
  }
  if (!node.is_object()) return;
  const std::string here = node.contains("title") && node["title"].is_string()
                               ? node["title"].get<std::string>()
                               : title;
  if (node.contains("targets") && node["targets"].is_array()) {
    for (const Json& target : node["targets"]) {
      if (!target.is_object() || !target.contains("expr") || !target["expr"].is_string()) continue;
      const std::string expr = target["expr"].get<std::string>();
      const std::string where = "dashboard.json panel \"" + here + "\"";
      out->dashboard_exprs.emplace_back(where, expr);
      out->Add(PromqlSelectors(expr), where);
    }
  }
  if (node.contains("templating") && node["templating"].contains("list")) {
    for (const Json& variable : node["templating"]["list"]) {
      if (variable.value("type", "") != "query" || !variable.contains("query")) continue;
      const Json& q = variable["query"];
      const std::string query = q.is_string() ? q.get<std::string>()
                                : q.is_object() && q.contains("query") && q["query"].is_string()
                                    ? q["query"].get<std::string>()
                                    : "";
      const std::string where = "dashboard.json variable $" + variable.value("name", "?");
      out->Add(GrafanaVariableSelectors(query), where);
    }
  }
  for (const auto& [key, child] : node.items()) {
    if (key != "targets" && key != "templating") AddDashboard(child, here, out);
  }
}

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

uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

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
    ASSERT_NO_THROW(AddAlertRules(alerts, &referenced)) << "alerts.yaml is not a rule file";
    std::ofstream(dir_ + "/alerts.yaml") << alerts;
  }
  if (!dashboard.empty()) {
    const Json parsed = Json::parse(dashboard, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(parsed.is_object()) << "dashboard.json is not a JSON object";
    AddDashboard(parsed, "", &referenced);
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
  for (const auto& [selector, used_by] : referenced.jobs) {
    if (selector.job.find('$') != std::string::npos) continue;  // a Grafana variable
    EXPECT_TRUE(chart_jobs.contains(selector.job))
        << selector.metric << "{job=\"" << selector.job
        << "\"}: not a job the chart sets up (used by " << Join(used_by) << ")";
    // Those without series are reported above.
    if (FindExemption(selector.metric) != nullptr || !with_series.contains(selector.metric)) {
      continue;
    }
    const auto by_job = Query("count by (job) (" + selector.metric + ")");
    EXPECT_GT(Scalar("count(" + selector.metric + "{job=\"" + selector.job + "\"})"), 0)
        << selector.metric << " has series, but none under job=\"" << selector.job << "\" (used by "
        << Join(used_by) << "); count by job: " << (by_job ? Json(*by_job).dump() : "?");
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
    const std::string promql = SubstituteGrafanaVariables(expr);
    if (promql.empty()) continue;  // a variable outside a label value: Grafana's alone
    const Json r = Api("/api/v1/query", {{"query", promql}});
    EXPECT_EQ(r.value("status", ""), "success") << where << ": " << promql << "\n" << r.dump();
  }

  // Both stop cleanly.
  EXPECT_EQ(prometheus.Signal(SIGTERM), 0) << ReadAll(prometheus_log);
  EXPECT_EQ(up.Signal(SIGINT), 0) << ReadAll(dir_ + "/up.out");
}

}  // namespace
}  // namespace agentry
