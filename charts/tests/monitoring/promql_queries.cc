// charts/tests/monitoring/promql_queries.cc: see promql_queries.h.
#include "charts/tests/monitoring/promql_queries.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <yaml-cpp/yaml.h>

namespace agentry::promql {
namespace {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------------------
// Characters and spans.

bool IsIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool IsQuote(char c) { return c == '"' || c == '\'' || c == '`'; }

size_t SkipSpace(std::string_view s, size_t i) {
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

std::string Trim(std::string_view s) {
  const size_t start = SkipSpace(s, 0);
  size_t end = s.size();
  while (end > start && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return std::string(s.substr(start, end - start));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// s[i] is a quote: the index past the closing one (the end when there is none); `*content`
// gets what is between, escapes kept as written. Backquoted strings have no escapes.
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

// s[i] is `open`: the index past its matching `close` (the end when there is none), strings
// inside skipped.
size_t SkipGroup(std::string_view s, size_t i, char open, char close) {
  int depth = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (IsQuote(c)) {
      i = SkipString(s, i);
      continue;
    }
    if (c == open) ++depth;
    if (c == close && --depth == 0) return i + 1;
    ++i;
  }
  return s.size();
}

// What is between the group that starts at s[open] and ends before `end`.
std::string_view Inside(std::string_view s, size_t open, size_t end, char close) {
  const size_t inner_end = end > open + 1 && s[end - 1] == close ? end - 1 : end;
  return s.substr(open + 1, inner_end - open - 1);
}

// s[i] is '$': the index past the Grafana variable there ($name, ${name}, ${name:format}),
// its name in `*name`; i itself when no variable starts there ("$1", a regex group in
// label_replace's replacement, or a '$' alone).
size_t SkipVariable(std::string_view s, size_t i, std::string* name) {
  const size_t start = i + 1;
  if (start < s.size() && s[start] == '{') {
    const size_t end = SkipGroup(s, start, '{', '}');
    const std::string_view inside = Inside(s, start, end, '}');
    *name = std::string(inside.substr(0, inside.find(':')));
    return end;
  }
  if (start >= s.size() || !(std::isalpha(static_cast<unsigned char>(s[start])) || s[start] == '_'))
    return i;
  size_t end = start;
  while (end < s.size() && (std::isalnum(static_cast<unsigned char>(s[end])) || s[end] == '_'))
    ++end;
  *name = std::string(s.substr(start, end - start));
  return end;
}

// ---------------------------------------------------------------------------------------
// Selectors.

// Words that are PromQL, not metrics, in any case: aggregation operators (which may put
// `by (...)` before their parenthesis, so they are not always followed by '('), binary
// operators, modifiers, the numbers Inf and NaN, and the @ modifier's start() and end().
constexpr std::array<std::string_view, 24> kKeywords = {
    "sum",          "min",     "max",  "avg",      "group",  "stddev",      "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio", "and",    "or",
    "unless",       "atan2",   "bool", "offset",   "inf",    "nan",         "start",  "end"};
// Keywords whose parenthesised list holds label names, not expressions.
constexpr std::array<std::string_view, 6> kLabelListKeywords = {
    "by", "without", "on", "ignoring", "group_left", "group_right"};

template <size_t N>
bool IsOneOf(const std::array<std::string_view, N>& words, std::string_view word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

// The label="value" matchers of `matchers` (the text between a selector's braces): label to
// value, escapes and Grafana variables left as written. =~, != and !~ are not equality.
std::map<std::string, std::string> EqualityMatchers(std::string_view matchers) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < matchers.size()) {
    if (IsQuote(matchers[i])) {
      i = SkipString(matchers, i);
    } else if (IsIdentStart(matchers[i])) {
      const size_t start = i;
      while (i < matchers.size() && IsIdentChar(matchers[i])) ++i;
      const std::string label(matchers.substr(start, i - start));
      size_t k = SkipSpace(matchers, i);
      if (k + 1 < matchers.size() && matchers[k] == '=' && matchers[k + 1] != '~') {
        k = SkipSpace(matchers, k + 1);
        if (k < matchers.size() && IsQuote(matchers[k])) {
          std::string value;
          i = SkipString(matchers, k, &value);
          out[label] = value;
        }
      }
    } else {
      ++i;
    }
  }
  return out;
}

// The selector of `metric` with the braces that start at s[open] and end before `end`.
Selector WithMatchers(std::string metric, std::string_view s, size_t open, size_t end) {
  Selector selector{std::move(metric), std::string(Inside(s, open, end, '}')), {}};
  selector.equal = EqualityMatchers(selector.matchers);
  return selector;
}

}  // namespace

std::vector<Selector> Selectors(std::string_view s) {
  std::vector<Selector> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '#') {  // a comment, to the end of the line
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (IsQuote(c)) {
      i = SkipString(s, i);
    } else if (c == '$') {  // a Grafana variable
      std::string name;
      const size_t end = SkipVariable(s, i, &name);
      i = end == i ? i + 1 : end;
    } else if (c == '[') {  // a range or a subquery: durations and variables only
      i = SkipGroup(s, i, '[', ']');
    } else if (c == '{') {  // matchers without a metric name before them: {__name__="x"}?
      const size_t end = SkipGroup(s, i, '{', '}');
      Selector selector = WithMatchers("", s, i, end);
      selector.metric = selector.Equal("__name__");
      if (!selector.metric.empty()) out.push_back(std::move(selector));
      i = end;
    } else if (IsDigit(c) || (c == '.' && i + 1 < s.size() && IsDigit(s[i + 1]))) {
      // A number, a duration (5m, 1h30m) or hex (0x1f): the letters after digits are its.
      while (i < s.size() && (IsIdentChar(s[i]) || s[i] == '.')) ++i;
    } else if (IsIdentStart(c)) {
      const size_t start = i;
      while (i < s.size() && IsIdentChar(s[i])) ++i;
      const std::string word(s.substr(start, i - start));
      const size_t next = SkipSpace(s, i);
      size_t next_end = next;
      while (next_end < s.size() && IsIdentChar(s[next_end])) ++next_end;
      const std::string next_word = Lower(s.substr(next, next_end - next));
      // A function, or an aggregation with its clause first: "sum by (job) (...)".
      const bool call =
          (next < s.size() && s[next] == '(') || next_word == "by" || next_word == "without";
      if (IsOneOf(kLabelListKeywords, Lower(word))) {
        if (next < s.size() && s[next] == '(') i = SkipGroup(s, next, '(', ')');  // label names
      } else if (call || IsOneOf(kKeywords, Lower(word))) {
        // An operator or a function: its arguments are read as the loop goes on.
      } else if (next < s.size() && s[next] == '{') {
        const size_t end = SkipGroup(s, next, '{', '}');
        out.push_back(WithMatchers(word, s, next, end));
        i = end;
      } else {
        out.push_back({word, "", {}});
      }
    } else {
      ++i;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Grafana variables.

std::optional<std::string> SubstituteVariables(std::string_view s, const VariableValue& value) {
  std::string out;
  char quote = 0;  // the quote of the string we are in, or 0
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (quote != 0 && c == '\\' && quote != '`' && i + 1 < s.size()) {  // an escape
      out.append(s.substr(i, 2));
      i += 2;
      continue;
    }
    if (IsQuote(c) && (quote == 0 || c == quote)) quote = quote == 0 ? c : 0;
    std::string name;
    const size_t end = c == '$' ? SkipVariable(s, i, &name) : i;
    if (end == i) {  // not a variable
      out += c;
      ++i;
      continue;
    }
    const std::optional<std::string> replacement = value(name, quote != 0);
    if (!replacement) return std::nullopt;
    out += *replacement;
    i = end;
  }
  return out;
}

std::optional<std::string> AllValue(const std::string& name, bool in_string) {
  if (name == "__rate_interval" || name == "__interval" || name == "__range") return "1m";
  if (in_string) return ".*";
  return std::nullopt;
}

std::string VariableQueryExpr(std::string_view q) {
  const size_t at = SkipSpace(q, 0);
  size_t name_end = at;
  while (name_end < q.size() && IsIdentChar(q[name_end])) ++name_end;
  const std::string function(q.substr(at, name_end - at));
  const size_t open = SkipSpace(q, name_end);
  const bool call = open < q.size() && q[open] == '(';
  if (call && (function == "label_names" || function == "metrics")) return "";
  if (!call || (function != "query_result" && function != "label_values")) {
    return Trim(q);  // a plain PromQL query
  }
  const std::string_view args = Inside(q, open, SkipGroup(q, open, '(', ')'), ')');
  if (function == "query_result") return Trim(args);
  // label_values: the selector is what comes before the last comma outside braces,
  // parentheses and strings; without one, label_values(LABEL) lists a label of every series.
  size_t comma = std::string_view::npos;
  size_t i = 0;
  while (i < args.size()) {
    if (IsQuote(args[i])) {
      i = SkipString(args, i);
    } else if (args[i] == '{') {
      i = SkipGroup(args, i, '{', '}');
    } else if (args[i] == '(') {
      i = SkipGroup(args, i, '(', ')');
    } else {
      if (args[i] == ',') comma = i;
      ++i;
    }
  }
  return comma == std::string_view::npos ? "" : Trim(args.substr(0, comma));
}

// ---------------------------------------------------------------------------------------
// The files.

std::vector<Query> RuleQueries(const std::string& yaml) {
  std::vector<Query> out;
  const YAML::Node root = YAML::Load(yaml);
  for (const YAML::Node& group : root["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      const bool alert = rule["alert"].IsDefined();
      const std::string name = (alert ? rule["alert"] : rule["record"]).as<std::string>();
      out.push_back({alert ? Query::Kind::kAlert : Query::Kind::kRecord,
                     (alert ? "alert " : "record ") + name, rule["expr"].as<std::string>()});
    }
  }
  return out;
}

namespace {

// The queries of `node`, a part of a dashboard under a panel titled `title`, and of every
// part inside it.
void AddDashboardQueries(const Json& node, const std::string& title, std::vector<Query>* out) {
  if (node.is_array()) {
    for (const Json& child : node) AddDashboardQueries(child, title, out);
    return;
  }
  if (!node.is_object()) return;
  const std::string here = node.contains("title") && node["title"].is_string()
                               ? node["title"].get<std::string>()
                               : title;
  if (node.contains("targets") && node["targets"].is_array()) {
    for (const Json& target : node["targets"]) {
      if (!target.is_object() || !target.contains("expr") || !target["expr"].is_string()) continue;
      out->push_back({Query::Kind::kTarget,
                      "panel \"" + here + "\" target " + target.value("refId", ""),
                      target["expr"].get<std::string>()});
    }
  }
  if (node.contains("templating") && node["templating"].contains("list")) {
    for (const Json& variable : node["templating"]["list"]) {
      if (!variable.is_object() || variable.value("type", "") != "query") continue;
      // The query is a string, or (newer Grafana) an object with it in "query".
      const Json q = variable.value("query", Json());
      const std::string query = q.is_string() ? q.get<std::string>()
                                : q.is_object() && q.contains("query") && q["query"].is_string()
                                    ? q["query"].get<std::string>()
                                    : "";
      out->push_back({Query::Kind::kVariable, "variable " + variable.value("name", "?"),
                      VariableQueryExpr(query)});
    }
  }
  for (const auto& [key, child] : node.items()) {
    if (key != "targets" && key != "templating") AddDashboardQueries(child, here, out);
  }
}

}  // namespace

std::vector<Query> DashboardQueries(const Json& dashboard) {
  std::vector<Query> out;
  AddDashboardQueries(dashboard, "", &out);
  return out;
}

}  // namespace agentry::promql
