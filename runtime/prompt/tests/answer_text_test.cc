// AnswerText: what of a streamed reply reaches the client as text, however the reply is cut
// into pieces.
#include "runtime/prompt/answer_text.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/prompt/agent_prompt.h"

namespace agentry::runtime {
namespace {

struct Sink {
  std::vector<std::string> sent;  // every call, "" included
  bool go_on = true;
  std::function<bool(const std::string&)> fn() {
    return [this](const std::string& text) {
      sent.push_back(text);
      return go_on;
    };
  }
  std::string text() const {
    std::string all;
    for (const std::string& s : sent) all += s;
    return all;
  }
};

// The reply cut at `cuts` (offsets), fed and finished; what the client read.
std::string Stream(const std::string& reply, const std::vector<size_t>& cuts, bool* is_call) {
  Sink sink;
  AnswerText answer(sink.fn());
  size_t from = 0;
  for (size_t cut : cuts) {
    EXPECT_TRUE(answer.Feed(std::string_view(reply).substr(from, cut - from)));
    from = cut;
  }
  EXPECT_TRUE(answer.Feed(std::string_view(reply).substr(from)));
  EXPECT_TRUE(answer.Finish());
  *is_call = answer.is_call();
  return sink.text();
}

TEST(AnswerTextTest, AnAnswerStreamsAtOnceAndACallNotAtAll) {
  Sink sink;
  AnswerText answer(sink.fn());
  ASSERT_TRUE(answer.Feed("Ticket"));
  EXPECT_EQ(sink.sent, (std::vector<std::string>{"Ticket"}));  // not held: no tag starts "T"
  ASSERT_TRUE(answer.Feed(" 4821 is open."));
  EXPECT_EQ(sink.text(), "Ticket 4821 is open.");

  Sink call_sink;
  AnswerText call(call_sink.fn());
  for (const char* piece :
       {" <to", "ol_call>", R"({"name":"get_ticket",)", R"("arguments":{}})", "</tool_call>"}) {
    ASSERT_TRUE(call.Feed(piece));
  }
  EXPECT_TRUE(call.is_call());
  EXPECT_TRUE(call.Finish());
  EXPECT_EQ(call_sink.sent.size(), 5u);  // asked each piece whether to go on
  EXPECT_EQ(call_sink.text(), "");
}

TEST(AnswerTextTest, TextThatOnlyLookedLikeATagIsSentOnceItIsNot) {
  Sink sink;
  AnswerText answer(sink.fn());
  ASSERT_TRUE(answer.Feed("\n<"));
  EXPECT_EQ(sink.text(), "");
  ASSERT_TRUE(answer.Feed("3 you"));
  EXPECT_EQ(sink.text(), "\n<3 you");
  EXPECT_FALSE(answer.is_call());

  // A reply that ends inside a possible tag (a length limit) was an answer after all.
  Sink cut;
  AnswerText short_reply(cut.fn());
  ASSERT_TRUE(short_reply.Feed("<tool"));
  EXPECT_EQ(cut.text(), "");
  ASSERT_TRUE(short_reply.Finish());
  EXPECT_EQ(cut.text(), "<tool");
}

TEST(AnswerTextTest, TheSinksStopIsHeardWhileTextIsHeld) {
  Sink sink;
  AnswerText answer(sink.fn());
  sink.go_on = false;
  EXPECT_FALSE(answer.Feed("<tool_"));
  EXPECT_FALSE(answer.Feed("call>{"));
}

TEST(AnswerTextTest, EveryWayOfCuttingAReplyGivesTheSameText) {
  const std::vector<std::pair<std::string, bool>> replies = {
      {RenderToolCall("get_ticket", {{"id", 4821}}), true},
      {"  \n" + RenderToolCall("search", {{"q", "<b>"}}), true},
      {"Ticket 4821 is open.", false},
      {"<tool>no</tool>", false},
      {"<tool_cal", false},
      {" ", false},
      {"I will call <tool_call> later.", false},
  };
  for (const auto& [reply, call] : replies) {
    for (size_t a = 0; a <= reply.size(); ++a) {
      for (size_t b = a; b <= reply.size(); b += 3) {
        bool is_call = false;
        const std::string read = Stream(reply, {a, b}, &is_call);
        EXPECT_EQ(is_call, call) << reply << " cut at " << a << "," << b;
        EXPECT_EQ(read, call ? "" : reply) << reply << " cut at " << a << "," << b;
      }
    }
  }
}

}  // namespace
}  // namespace agentry::runtime
