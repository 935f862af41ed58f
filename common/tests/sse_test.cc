#include "common/http/sse.h"

#include <gtest/gtest.h>

namespace agentry::http {
namespace {

TEST(SseParserTest, NamedEventsWithDataDispatchOnTheBlankLine) {
  SseParser parser;
  const std::vector<SseEvent> events =
      parser.Feed("event: token\ndata: {\"text\":\"a\"}\n\nevent: done\ndata: {}\n\n");
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[0].name, "token");
  EXPECT_EQ(events[0].data, "{\"text\":\"a\"}");
  EXPECT_EQ(events[1].name, "done");
  EXPECT_EQ(events[1].data, "{}");
}

// Network chunks end anywhere: every split of the same stream gives the same events.
TEST(SseParserTest, ChunksSplitAnywhereGiveTheSameEvents) {
  const std::string stream =
      "event: token\r\ndata: one\r\n\r\n: keep-alive\n\ndata: two\ndata:three\n\nevent: x\n";
  for (size_t split = 0; split <= stream.size(); ++split) {
    SseParser parser;
    std::vector<SseEvent> events = parser.Feed(std::string_view(stream).substr(0, split));
    for (SseEvent& e : parser.Feed(std::string_view(stream).substr(split))) {
      events.push_back(std::move(e));
    }
    ASSERT_EQ(events.size(), 2U) << "split at " << split;
    EXPECT_EQ(events[0].name, "token");
    EXPECT_EQ(events[0].data, "one");
    EXPECT_EQ(events[1].name, "message");  // unnamed
    EXPECT_EQ(events[1].data, "two\nthree");
  }
}

TEST(SseParserTest, CommentsAndBlocksWithoutDataDispatchNothing) {
  SseParser parser;
  EXPECT_TRUE(parser.Feed(": ping\n\nevent: lonely\n\nid: 7\nretry: 10\n\n").empty());
  // The name of a block that dispatched nothing does not leak into the next one.
  const std::vector<SseEvent> events = parser.Feed("data: x\n\n");
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].name, "message");
}

}  // namespace
}  // namespace agentry::http
