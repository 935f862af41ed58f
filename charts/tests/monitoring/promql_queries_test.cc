// promql_queries: the PromQL tokenizer that finds the metrics the chart's alerts and
// dashboard select, the Grafana variable substitution, and the queries of a rule file and a
// dashboard, each with where it came from.
#include "charts/tests/monitoring/promql_queries.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace agentry::promql {
namespace {

using Json = nlohmann::json;

// The metric names `expr` selects.
std::set<std::string> MetricNames(std::string_view expr) {
  std::set<std::string> names;
  for (const Selector& s : Selectors(expr)) names.insert(s.metric);
  return names;
}

// The metrics `expr` selects, each with the job it matches with '=' ("" when none).
std::set<std::pair<std::string, std::string>> MetricsAndJobs(std::string_view expr) {
  std::set<std::pair<std::string, std::string>> out;
  for (const Selector& s : Selectors(expr)) out.emplace(s.metric, s.Equal("job"));
  return out;
}

using MetricsAndJobsSet = std::set<std::pair<std::string, std::string>>;

TEST(MetricSelectorsTest, FindsEveryMetricAndNothingElse) {
  const std::vector<Selector> got = Selectors(
      R"q(sum by (le, job) (rate(a_bucket{job="x", le=~"1|2"}[5m] offset 1h))
         / on (job) group_left (pod) b:recorded
         and ignoring (x) c{l="}", m!~"by (y)"} > bool 0.5
         or label_replace(d, "dst", "$1", "src", "(.*)")  # e_comment
         unless sum(e[10m:1m]) without (f) and Inf < nan or count without (k) (j)
         or histogram_quantile(0.95, g_bucket) * 1e3 + .5 - topk(5, h) @ start())q");
  std::vector<std::string> names;
  names.reserve(got.size());
  for (const Selector& s : got) names.push_back(s.metric);
  EXPECT_EQ(names, (std::vector<std::string>{"a_bucket", "b:recorded", "c", "d", "e", "j",
                                             "g_bucket", "h"}));
  ASSERT_EQ(got.size(), 8u);
  EXPECT_EQ(got[0].matchers, R"(job="x", le=~"1|2")");
  EXPECT_EQ(got[2].matchers, R"q(l="}", m!~"by (y)")q");
  EXPECT_EQ(got[1].matchers, "");
  // Of the matchers, those with '=' only.
  EXPECT_EQ(got[0].equal, (std::map<std::string, std::string>{{"job", "x"}}));
  EXPECT_EQ(got[2].equal, (std::map<std::string, std::string>{{"l", "}"}}));
  EXPECT_TRUE(got[1].equal.empty());
}

TEST(PromqlMetricNamesTest, KeepsMetricsAndDropsFunctionsKeywordsLabelsAndDurations) {
  EXPECT_EQ(MetricNames(R"(histogram_quantile(0.95, sum by (namespace, pod, model, le) (
              rate(agentry_x_seconds_bucket{job="agentry-nodeagent", le!="+Inf"}[10m]))) > 2)"),
            (std::set<std::string>{"agentry_x_seconds_bucket"}));
  EXPECT_EQ(MetricNames(R"(a_ratio{job="j"} > 0.9
          and on (namespace, pod, device) group_left(model)
          rate(b_total[10m] offset 5m) > 0.05 or absent(up{job="x"}) unless vector(1e-3))"),
            (std::set<std::string>{"a_ratio", "b_total", "up"}));
  // Aggregations with the clause after, in upper case; count_values' label string; topk's
  // number; a subquery; a comment; a Grafana variable in a range and in a matcher.
  EXPECT_EQ(MetricNames("SUM(rate(c_total{agent=~\"$agent\"}[$__rate_interval])) BY (job)"
                        " / count_values(\"version\", d_info) # e_total is a comment\n"
                        " + topk(5, max_over_time(f_gauge[1h:5m])) * 60 + bool 0x1F"),
            (std::set<std::string>{"c_total", "d_info", "f_gauge"}));
  EXPECT_EQ(MetricNames(R"({__name__="g_total", job="x"} + {__name__=~"h.*"})"),
            (std::set<std::string>{"g_total"}));
  EXPECT_EQ(MetricNames(R"q(label_replace(i_total, "dst", "$1", "src", "(.*)"))q"),
            (std::set<std::string>{"i_total"}));
  // The job a selector names with '=', wherever the metric's name is.
  EXPECT_EQ(MetricsAndJobs(R"(rate(x_total{code="b", job = "a"}[5m]) / y{job=~"b"} + )"
                           R"({__name__="z", job="c"} + on (job) up)"),
            (MetricsAndJobsSet{{"up", ""}, {"x_total", "a"}, {"y", ""}, {"z", "c"}}));
  EXPECT_EQ(MetricsAndJobs(VariableQueryExpr(
                R"(label_values(agentry_build_info{job="r", namespace=~"$namespace"}, agent))")),
            (MetricsAndJobsSet{{"agentry_build_info", "r"}}));
  EXPECT_EQ(MetricsAndJobs(VariableQueryExpr("label_values(namespace)")), MetricsAndJobsSet{});
  EXPECT_EQ(MetricsAndJobs(VariableQueryExpr("query_result(sum by (x) (j_total))")),
            (MetricsAndJobsSet{{"j_total", ""}}));
  EXPECT_EQ(SubstituteVariables(R"(rate(a{n=~"$namespace", b="${agent:regex}"}[$__rate_interval]))",
                                AllValue),
            std::optional<std::string>(R"(rate(a{n=~".*", b=".*"}[1m]))"));
  EXPECT_EQ(SubstituteVariables("sum by ($label) (a)", AllValue), std::nullopt);
}

TEST(PromqlQueriesTest, VariableQueriesGiveTheirSelector) {
  EXPECT_EQ(VariableQueryExpr(R"( label_values(a{job="j", x=~"1,2"}, pod) )"),
            R"(a{job="j", x=~"1,2"})");
  EXPECT_EQ(VariableQueryExpr("label_values(rate(a[5m]), pod)"), "rate(a[5m])");
  EXPECT_EQ(VariableQueryExpr("label_names()"), "");
  EXPECT_EQ(VariableQueryExpr("metrics(agentry_.*)"), "");
  EXPECT_EQ(VariableQueryExpr("sum(b) by (pod)"), "sum(b) by (pod)");
  EXPECT_EQ(VariableQueryExpr("up"), "up");
}

TEST(PromqlQueriesTest, SubstitutesEachVariableSayingWhetherItIsInAString) {
  std::vector<std::pair<std::string, bool>> seen;
  const auto value = [&](const std::string& name, bool in_string) -> std::optional<std::string> {
    seen.emplace_back(name, in_string);
    return "<" + name + ">";
  };
  EXPECT_EQ(SubstituteVariables(R"q(x{a="$one", b='${two}', c=`\$three`}[$four] + )q"
                                R"q(label_replace(y, "d", "$1", "e", "(.*)") * $)q",
                                value),
            std::optional<std::string>(R"q(x{a="<one>", b='<two>', c=`\<three>`}[<four>] + )q"
                                       R"q(label_replace(y, "d", "$1", "e", "(.*)") * $)q"));
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, bool>>{
                      {"one", true}, {"two", true}, {"three", true}, {"four", false}}));
}

TEST(PromqlQueriesTest, FindsEveryRuleAndEveryDashboardQueryWithWhereItIs) {
  const std::vector<Query> rules = RuleQueries(R"(groups:
  - name: a
    rules:
      - alert: Down
        expr: up == 0
      - record: job:x:rate5m
        expr: sum by (job) (rate(x[5m]))
  - name: b
    rules:
      - alert: High
        expr: |
          y > 1
)");
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].kind, Query::Kind::kAlert);
  EXPECT_EQ(rules[0].where, "alert Down");
  EXPECT_EQ(rules[0].expr, "up == 0");
  EXPECT_EQ(rules[1].kind, Query::Kind::kRecord);
  EXPECT_EQ(rules[1].where, "record job:x:rate5m");
  EXPECT_EQ(rules[2].where, "alert High");
  EXPECT_EQ(rules[2].expr, "y > 1\n");
  EXPECT_THROW(RuleQueries("groups: [{rules: [{expr: up}]}]"), std::exception);

  const Json dashboard = Json::parse(R"json({
    "title": "D",
    "panels": [
      {"title": "P", "targets": [{"refId": "A", "expr": "a"}, {"refId": "B", "expr": "b"}]},
      {"title": "Row", "type": "row", "panels": [
        {"title": "Q", "targets": [{"refId": "A", "expr": "c{job=\"$job\"}"}]},
        {"targets": [{"refId": "A", "expr": "d"}, {"refId": "B"}]}]}
    ],
    "templating": {"list": [
      {"name": "datasource", "type": "datasource", "query": "prometheus"},
      {"name": "ns", "type": "query", "query": {"query": "label_values(e{job=\"j\"}, namespace)"}},
      {"name": "pod", "type": "query", "query": "label_values(pod)"}
    ]}
  })json");
  std::vector<std::string> got;
  for (const Query& q : DashboardQueries(dashboard)) {
    got.push_back(std::string(q.kind == Query::Kind::kVariable ? "V " : "T ") + q.where + ": " +
                  q.expr);
  }
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()),
            (std::set<std::string>{R"(T panel "P" target A: a)", R"(T panel "P" target B: b)",
                                   R"(T panel "Q" target A: c{job="$job"})",
                                   R"(T panel "Row" target A: d)", R"(V variable ns: e{job="j"})",
                                   R"(V variable pod: )"}));
  EXPECT_EQ(got.size(), 6u);
}

}  // namespace
}  // namespace agentry::promql
