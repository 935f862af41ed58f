// ToolCallGrammarCache: the same tools compile once; other tools, another close tag or a
// changed schema compile again; errors are never remembered; the oldest entry goes first.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nodeagent/constrain/matcher.h"
#include "nodeagent/constrain/tool_call.h"

namespace agentry::constrain {
namespace {

std::vector<ToolSchema> Tools(const std::string& type) {
  return {{"get_ticket", nlohmann::json{{"type", "object"},
                                        {"properties", {{"id", {{"type", type}}}}},
                                        {"required", {"id"}}}}};
}

bool Accepts(const Grammar& g, std::string_view text) {
  Matcher m(g);
  return m.AdvanceAll(text) && m.IsComplete();
}

TEST(ToolCallGrammarCacheTest, TheSameToolsCompileOnceAndAnyChangeCompilesAgain) {
  ToolCallGrammarCache cache;
  const StatusOr<Grammar> first = cache.Get(Tools("integer"), "</tool_call>");
  const StatusOr<Grammar> again = cache.Get(Tools("integer"), "</tool_call>");
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(cache.compiled(), 1);
  const std::string call = R"({"name":"get_ticket","arguments":{"id":7}}</tool_call>)";
  EXPECT_TRUE(Accepts(*again, call));

  // A changed schema is another grammar: a string id, which the first refuses.
  const StatusOr<Grammar> strings = cache.Get(Tools("string"), "</tool_call>");
  ASSERT_TRUE(strings.ok());
  EXPECT_EQ(cache.compiled(), 2);
  EXPECT_FALSE(Accepts(*strings, call));
  EXPECT_TRUE(Accepts(*strings, R"({"name":"get_ticket","arguments":{"id":"7"}}</tool_call>)"));
  ASSERT_TRUE(cache.Get(Tools("integer"), "</call>").ok());
  EXPECT_EQ(cache.compiled(), 3);
  EXPECT_EQ(cache.size(), 3u);
}

TEST(ToolCallGrammarCacheTest, ErrorsAreNotRememberedAndTheOldestEntryGoes) {
  ToolCallGrammarCache cache(2);
  const std::vector<ToolSchema> bad = {{"q", nlohmann::json::parse(R"({"pattern":"^a"})")}};
  EXPECT_EQ(cache.Get(bad, "</tool_call>").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Get(bad, "</tool_call>").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.compiled(), 2);
  EXPECT_EQ(cache.size(), 0u);

  ASSERT_TRUE(cache.Get(Tools("integer"), "a").ok());
  ASSERT_TRUE(cache.Get(Tools("integer"), "b").ok());
  ASSERT_TRUE(cache.Get(Tools("integer"), "c").ok());  // "a" goes
  EXPECT_EQ(cache.size(), 2u);
  ASSERT_TRUE(cache.Get(Tools("integer"), "c").ok());
  EXPECT_EQ(cache.compiled(), 5);
  ASSERT_TRUE(cache.Get(Tools("integer"), "a").ok());
  EXPECT_EQ(cache.compiled(), 6);
}

}  // namespace
}  // namespace agentry::constrain
