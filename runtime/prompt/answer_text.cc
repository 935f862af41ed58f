// runtime/prompt/answer_text.cc — see answer_text.h.
#include "runtime/prompt/answer_text.h"

#include "runtime/prompt/agent_prompt.h"

namespace agentry::runtime {

bool AnswerText::Feed(std::string_view piece) {
  if (state_ == State::kAnswer) return send_(std::string(piece));
  if (state_ == State::kCall) return send_("");
  held_.append(piece);
  // Decided once the text past leading whitespace is the whole tag, or is no prefix of it.
  const size_t start = held_.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return send_("");
  const std::string_view rest = std::string_view{held_}.substr(start);
  if (rest.starts_with(kToolCallOpen)) {
    state_ = State::kCall;
    held_.clear();
    return send_("");
  }
  if (kToolCallOpen.starts_with(rest)) return send_("");
  state_ = State::kAnswer;
  std::string text;
  text.swap(held_);
  return send_(text);
}

bool AnswerText::Finish() {
  if (state_ != State::kUndecided || held_.empty()) return true;
  state_ = State::kAnswer;
  std::string text;
  text.swap(held_);
  return send_(text);
}

}  // namespace agentry::runtime
