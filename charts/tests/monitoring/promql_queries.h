// charts/tests/monitoring/promql_queries.h — for tests: the PromQL queries of the chart's
// monitoring files (charts/agentry/files/alerts.yaml and dashboard.json), each with where it
// came from, and the metrics each one selects. monitoring_test checks them against what the
// binaries export; e2e/prometheus against what a real Prometheus scraped.
//
//   for (const promql::Query& q : promql::DashboardQueries(dashboard))
//     for (const promql::Selector& s : promql::Selectors(q.expr))
//       Use(s.metric, s.Equal("job"), q.where);
//
// A small tokenizer, not a PromQL parser: it finds vector selectors by skipping what cannot
// be one (strings, comments, ranges, numbers, durations, keywords, functions, label lists,
// Grafana variables); it is tested by promql_queries_test.cc.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace agentry::promql {

// One vector selector: a metric name, with or without matchers in braces.
struct Selector {
  std::string metric;
  std::string matchers;                      // what is between the braces, as written
  std::map<std::string, std::string> equal;  // each label="value" matcher: label -> value

  // The value `label` is matched to with '=', or "" when it is not.
  std::string Equal(const std::string& label) const {
    const auto it = equal.find(label);
    return it == equal.end() ? "" : it->second;
  }
};

// The vector selectors of a PromQL expression, in the order they appear, each time it
// appears. Grafana variables ($name, ${name}, ${name:format}) may be in it: they are
// skipped, and left as written in matcher values. {__name__="x", ...} selects x; braces
// without a metric name and without __name__="..." select no metric and are left out.
std::vector<Selector> Selectors(std::string_view s);

// `s` (a query) with each Grafana template variable ($name, ${name}, ${name:format}) replaced by
// value(name, in_string), where in_string says whether it stands inside a quoted string
// (a label matcher's value); "$1" and the like (label_replace's regex groups) are kept.
// nullopt when `value` returned nullopt for one.
using VariableValue =
    std::function<std::optional<std::string>(const std::string& name, bool in_string)>;
std::optional<std::string> SubstituteVariables(std::string_view s, const VariableValue& value);

// What the dashboard's "All" makes of a variable: Grafana's interval variables
// ($__rate_interval, $__interval, $__range) are 1m, any other inside a string ".*";
// nullopt for one outside a string (a label name, say), which only Grafana can fill in.
std::optional<std::string> AllValue(const std::string& name, bool in_string);

// The PromQL of a Grafana Prometheus variable query: the SELECTOR of
// label_values(SELECTOR, LABEL), the EXPR of query_result(EXPR), a plain query as it is;
// "" for label_values(LABEL), label_names() and metrics(REGEX), which select no series.
std::string VariableQueryExpr(std::string_view query);

// One PromQL query of a rule file or a dashboard.
struct Query {
  enum class Kind { kAlert, kRecord, kTarget, kVariable };
  Kind kind;
  std::string where;  // alert NAME, record NAME, panel "TITLE" target REFID, variable NAME
  std::string expr;   // as written, Grafana variables and all; "" for a variable that
                      // selects no series (see VariableQueryExpr)
};

// Every rule's expr in a Prometheus rule file (alerts.yaml: groups[].rules[]), alerting
// and recording rules, in order. Throws YAML::Exception when `yaml` is not one.
std::vector<Query> RuleQueries(const std::string& yaml);

// Every PromQL query of a Grafana dashboard: each panel target's expr, at any depth (rows'
// panels included), under the title of its panel; and each query variable's
// (templating.list[] of type "query"), its query as VariableQueryExpr reads it.
std::vector<Query> DashboardQueries(const nlohmann::json& dashboard);

}  // namespace agentry::promql
