// ToolCallGrammar: rendered calls are accepted byte for byte, random ones parse and satisfy
// the chosen tool's schema, and errors name the tool.
#include "runtime/prompt/tool_call_grammar.h"

#include <random>
#include <set>

#include <gtest/gtest.h>

#include "nodeagent/constrain/tests/test_support.h"

namespace agentry::runtime {
namespace {

using constrain::Grammar;
using constrain::test_support::kAccepted;
using constrain::test_support::RejectAt;
using nlohmann::json;

std::vector<ToolDecl> Tools() {
  return {
      {"get_ticket", "Fetch one ticket.",
       json::parse(R"({"type": "object", "properties": {"id": {"type": "integer"},
           "fields": {"type": "array", "items": {"enum": ["title", "status", "owner"]},
                      "maxItems": 3}}, "required": ["id"]})"),
       false},
      {"jira_search", "Search issues.",
       json::parse(R"({"type": "object", "properties": {"q": {"type": "string", "maxLength": 30},
           "limit": {"type": "integer"}, "score": {"type": ["number", "null"]},
           "options": {"type": "object", "properties": {"exact": {"type": "boolean"}}}},
           "required": ["q"]})"),
       true},
      {"ping", "", nullptr, false},
      {"get", "Shares a prefix with get_ticket.", json::object(), false},
  };
}

// The text after "<tool_call>".
std::string Body(const std::string& call) { return call.substr(kToolCallOpen.size()); }

TEST(ToolCallGrammarTest, RenderedCallsAreAcceptedByteForByte) {
  StatusOr<Grammar> g = ToolCallGrammar(Tools());
  ASSERT_TRUE(g.ok()) << g.status().message();
  const std::vector<std::pair<std::string, json>> calls = {
      {"get_ticket", json{{"id", 4821}}},
      {"get_ticket", json{{"id", -1}, {"fields", {"owner", "title"}}}},
      {"jira_search", json{{"q", "crash on \"save\"\n\xC3\xA9\xF0\x9F\x98\x80 a\\b\t"}}},
      {"jira_search",
       json{{"q", "x"}, {"limit", 10}, {"score", 0.25}, {"options", {{"exact", true}}}}},
      {"jira_search", json{{"q", std::string("ctl\x01\x1f")}, {"score", 1e-7}}},
      {"jira_search", json{{"q", ""}, {"score", 12345.678901}, {"options", json::object()}}},
      {"jira_search", json{{"q", "big"}, {"score", 1.5e300}}},
      {"jira_search", json{{"q", "n"}, {"score", nullptr}}},
      {"ping", json::object()},
      {"get", json::object()},
  };
  for (const auto& [name, args] : calls) {
    const std::string body = Body(RenderToolCall(name, args));
    EXPECT_EQ(RejectAt(*g, body), kAccepted) << body;
  }
}

TEST(ToolCallGrammarTest, RefusesUnknownToolsWrongArgumentsAndLooseWhitespace) {
  StatusOr<Grammar> g = ToolCallGrammar(Tools());
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(RejectAt(*g, R"({"name": "ping", "arguments": {}}</tool_call>)"), kAccepted);
  EXPECT_EQ(RejectAt(*g, R"({"name":"nope")"), 9);
  EXPECT_EQ(RejectAt(*g, R"({"name":"get_ticket","arguments":{}})"), 34);  // id is required
  EXPECT_EQ(RejectAt(*g, R"({"name":"ping","arguments":{"x":1}})"), 28);   // no arguments
  EXPECT_EQ(RejectAt(*g, R"({"arguments":{},"name":"ping"})"), 2);         // name first
  EXPECT_EQ(RejectAt(*g, R"({"name":"ping","arguments":{}} </tool_call>)"), 30);
  EXPECT_EQ(RejectAt(*g, R"({"name":"ping","arguments":{}}</tool_call>x)"), 42);
  EXPECT_EQ(RejectAt(*g, R"({"name":"get_ticket","arguments":{"id":1,"fields":[]}})"), 40);
  EXPECT_EQ(RejectAt(*g, R"({"name":"get_ticket","arguments":{"fields":["size"],"id":1}})"), 46);
}

TEST(ToolCallGrammarTest, RandomCallsParseAndSatisfyTheirToolsSchema) {
  const std::vector<ToolDecl> tools = Tools();
  StatusOr<Grammar> g = ToolCallGrammar(tools);
  ASSERT_TRUE(g.ok()) << g.status().message();
  std::mt19937_64 rng(7);
  std::set<std::string> seen;
  for (int walk = 0; walk < 400; ++walk) {
    std::string body;
    ASSERT_TRUE(constrain::test_support::RandomWalk(*g, &rng, 1 << 16, &body)) << body;
    StatusOr<ToolCall> call = ParseToolCall(std::string(kToolCallOpen) + body);
    ASSERT_TRUE(call.ok()) << call.status().message() << " in " << body;
    const ToolDecl* tool = nullptr;
    for (const ToolDecl& t : tools) tool = t.name == call->name ? &t : tool;
    ASSERT_NE(tool, nullptr) << body;
    seen.insert(tool->name);
    const json schema = tool->parameters.is_null() || tool->parameters.empty()
                            ? json{{"type", "object"}, {"properties", json::object()}}
                            : tool->parameters;
    std::string why;
    EXPECT_TRUE(constrain::test_support::Satisfies(call->arguments, schema, &why))
        << why << " in " << body;
  }
  EXPECT_EQ(seen.size(), tools.size());  // every tool is reachable
}

TEST(ToolCallGrammarTest, ErrorsNameTheTool) {
  auto error = [](const std::vector<ToolDecl>& tools) {
    StatusOr<Grammar> g = ToolCallGrammar(tools);
    EXPECT_FALSE(g.ok());
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
    return g.ok() ? std::string() : g.status().message();
  };
  EXPECT_EQ(error({}), "tools: a tool call needs at least one tool");
  std::vector<ToolDecl> tools = Tools();
  tools[1].parameters["properties"]["q"]["pattern"] = "^[A-Z]+-[0-9]+$";
  EXPECT_EQ(error(tools),
            "tools[1] (jira_search).parameters.properties.q.pattern: unsupported keyword");
  tools = Tools();
  tools.push_back({"ping", "", nullptr, false});
  EXPECT_EQ(error(tools), "tools[4] (ping).name: another tool has this name");
  EXPECT_EQ(error({{"", "", nullptr, false}}), "tools[0] ().name: must not be empty");
  EXPECT_EQ(error({{"bad\xFF", "", nullptr, false}}), "tools[0] (bad\xFF).name: not valid UTF-8");
  for (const char* schema : {R"({"type": "string"})", R"({"type": ["object", "null"]})",
                             R"({"anyOf": [{"type": "object"}, {"type": "array"}]})", "true"}) {
    EXPECT_EQ(error({{"x", "", json::parse(schema), false}}),
              "tools[0] (x).parameters: must describe a JSON object (tool arguments are an "
              "object; use \"type\": \"object\")")
        << schema;
  }
  EXPECT_EQ(error({{"x", "", json::parse("[]"), false}}),
            "tools[0] (x).parameters: schema must be an object or a boolean");
  // Objects of any shape are fine, also through anyOf or enum.
  StatusOr<Grammar> ok = ToolCallGrammar(
      {{"x", "", json::parse(R"({"anyOf": [{"type": "object"}, {"enum": [{"a": 1}]}]})"), false}});
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(RejectAt(*ok, R"({"name":"x","arguments":{"a":1}}</tool_call>)"), kAccepted);
}

}  // namespace
}  // namespace agentry::runtime
