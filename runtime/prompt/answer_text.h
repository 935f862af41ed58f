// runtime/prompt/answer_text.h — the part of a streamed reply a user reads as the answer.
//
// A tool-calling model's reply is either an answer or a call (agent_prompt.h: a call is the
// whole message, opening with <tool_call> after leading whitespace). A client streaming the
// reply should see the answer's text as it comes, and a call not as text at all: the runtime
// reports calls as calls. The tag can arrive split across pieces ("<tool", "_call>"), so the
// text that could still be its beginning is held back until it is decided:
//
//   AnswerText answer(send);               // send: the client's text sink
//   for each piece: if (!answer.Feed(piece)) stop;
//   answer.Finish();                       // the reply ended: send what was held, unless a call
//
// While text is held, Feed calls `send("")`: the sink answers whether to go on (a stopped
// turn, a client that is gone) without being given text.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace agentry::runtime {

class AnswerText {
 public:
  explicit AnswerText(std::function<bool(const std::string&)> send) : send_(std::move(send)) {}

  // Takes the reply's next piece; `send`'s answer (false: stop generating).
  bool Feed(std::string_view piece);
  // The reply is over: text still held (a reply that stopped inside a possible tag, or only
  // whitespace) is an answer after all and is sent. Nothing when the reply is a call.
  bool Finish();

  // The reply opened a tool call.
  bool is_call() const { return state_ == State::kCall; }

 private:
  enum class State { kUndecided, kAnswer, kCall };

  std::function<bool(const std::string&)> send_;
  State state_ = State::kUndecided;
  std::string held_;
};

}  // namespace agentry::runtime
