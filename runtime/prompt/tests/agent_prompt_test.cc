#include "runtime/prompt/agent_prompt.h"

#include <gtest/gtest.h>

namespace agentry::runtime {
namespace {

ToolDecl GetTicket() {
  return {"get_ticket",
          "Fetch one support ticket by its numeric id.",
          {{"type", "object"},
           {"properties", {{"id", {{"type", "integer"}, {"description", "The ticket number"}}}}},
           {"required", {"id"}}},
          false};
}

TEST(RenderSystemPromptTest, ListsToolsAfterInstructions) {
  ToolDecl jira{"jira_search",
                "Search Jira issues.",
                {{"type", "object"},
                 {"properties", {{"query", {{"type", "string"}}}}},
                 {"required", {"query"}}},
                true};
  EXPECT_EQ(RenderSystemPrompt("You triage tickets.\n", {GetTicket(), jira}),
            "You triage tickets.\n"
            "\n"
            "Tools:\n"
            "- get_ticket(id: integer): Fetch one support ticket by its numeric id.\n"
            "- jira_search(query: string): Search Jira issues. Needs approval.");
}

TEST(RenderSystemPromptTest, WithoutToolsIsTheTrimmedInstructions) {
  EXPECT_EQ(RenderSystemPrompt("Be brief. \n\n", {}), "Be brief.");
  EXPECT_EQ(RenderSystemPrompt("", {}), "");
}

TEST(RenderSystemPromptTest, SignatureMarksOptionalParametersAndTypes) {
  ToolDecl tool{"note",
                "Add a note.",
                {{"type", "object"},
                 {"properties",
                  {{"text", {{"type", "string"}}},
                   {"id", {{"type", "integer"}}},
                   {"mode", {{"enum", {"a", "b"}}}},
                   {"extra", nlohmann::json::object()}}},
                 {"required", {"id", "text"}}},
                false};
  // Properties in nlohmann's (sorted) order; "?" marks the optional ones.
  EXPECT_EQ(
      RenderSystemPrompt("X", {tool}),
      "X\n\nTools:\n- note(extra?: any, id: integer, mode?: enum, text: string): Add a note.");
}

TEST(RenderSystemPromptTest, ToolWithoutParametersOrDescription) {
  ToolDecl ping{"ping", "", nullptr, true};
  EXPECT_EQ(RenderSystemPrompt("X", {ping}), "X\n\nTools:\n- ping() Needs approval.");
}

TEST(RenderToolCallTest, WritesCompactJsonNameFirst) {
  EXPECT_EQ(RenderToolCall("get_ticket", {{"id", 4821}}),
            R"(<tool_call>{"name":"get_ticket","arguments":{"id":4821}}</tool_call>)");
  // Argument keys sorted, as the schema constraint expects them.
  EXPECT_EQ(RenderToolCall("t", {{"b", "x"}, {"a", true}}),
            R"(<tool_call>{"name":"t","arguments":{"a":true,"b":"x"}}</tool_call>)");
  EXPECT_EQ(RenderToolCall("odd\"name", nlohmann::json::object()),
            R"(<tool_call>{"name":"odd\"name","arguments":{}}</tool_call>)");
}

TEST(ParseToolCallTest, ReadsBackWhatRenderToolCallWrites) {
  const nlohmann::json args = {{"query", "VPN \"drops\" {daily}"}, {"n", 3}};
  StatusOr<ToolCall> call = ParseToolCall(RenderToolCall("jira_search", args));
  ASSERT_TRUE(call.ok()) << call.status().message();
  EXPECT_EQ(call->name, "jira_search");
  EXPECT_EQ(call->arguments, args);
}

TEST(ParseToolCallTest, CloseTagInsideAnArgumentDoesNotEndTheCall) {
  const nlohmann::json args = {{"query", "why does </tool_call> appear"}};
  StatusOr<ToolCall> call = ParseToolCall(RenderToolCall("jira_search", args));
  ASSERT_TRUE(call.ok()) << call.status().message();
  EXPECT_EQ(call->arguments, args);
}

TEST(ParseToolCallTest, AllowsLeadingWhitespaceAndSpacesInTheJson) {
  StatusOr<ToolCall> call = ParseToolCall(
      "\n  <tool_call>{\"name\": \"get_ticket\", \"arguments\": {\"id\": 7}} "
      "</tool_call>");
  ASSERT_TRUE(call.ok()) << call.status().message();
  EXPECT_EQ(call->name, "get_ticket");
  EXPECT_EQ(call->arguments, (nlohmann::json{{"id", 7}}));
}

TEST(ParseToolCallTest, PlainAnswerIsNotFound) {
  for (const char* text : {"Ticket 4821 is open.", "", "   ",
                           "Sure: <tool_call>{\"name\":\"x\",\"arguments\":{}}</tool_call>"}) {
    StatusOr<ToolCall> call = ParseToolCall(text);
    EXPECT_EQ(call.status().code(), StatusCode::kNotFound) << text;
  }
}

// Errors name the byte offset: of the opening tag when the call is not closed, of the JSON
// otherwise (after the 11 bytes of "<tool_call>").
TEST(ParseToolCallTest, MalformedCallsAreInvalidArgumentWithOffsets) {
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {R"(<tool_call>{"name":"x","arguments":{}})",
       "tool call at byte 0 is not closed by </tool_call>"},
      {"  <tool_call>{\"name\":\"x\"", "tool call at byte 2 is not closed by </tool_call>"},
      {R"(<tool_call>not json</tool_call>)", "tool call at byte 11: not a JSON object"},
      {R"(<tool_call>[1,2]</tool_call>)", "tool call at byte 11: not a JSON object"},
      {"\n<tool_call>{\"name\":\"x\",}</tool_call>", "tool call at byte 12: not a JSON object"},
      {R"(<tool_call>{"arguments":{}}</tool_call>)",
       "tool call at byte 11: \"name\" must be a string"},
      {R"(<tool_call>{"name":3,"arguments":{}}</tool_call>)",
       "tool call at byte 11: \"name\" must be a string"},
      {R"(<tool_call>{"name":"x"}</tool_call>)",
       "tool call at byte 11: \"arguments\" must be an object"},
      {R"(<tool_call>{"name":"x","arguments":[4821]}</tool_call>)",
       "tool call at byte 11: \"arguments\" must be an object"},
  };
  for (const Case& c : cases) {
    StatusOr<ToolCall> call = ParseToolCall(c.text);
    ASSERT_FALSE(call.ok()) << c.text;
    EXPECT_EQ(call.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(call.status().message(), c.message) << c.text;
  }
}

}  // namespace
}  // namespace agentry::runtime
