// nodeagent/constrain/reply_constraint.cc — see reply_constraint.h.
#include "nodeagent/constrain/reply_constraint.h"

#include <utility>

namespace agentry::constrain {

ReplyConstraint::ReplyConstraint(std::string open, const Grammar& grammar, bool engaged)
    : open_(std::move(open)), matcher_(grammar), engaged_(engaged) {}

ReplyConstraint ReplyConstraint::Whole(const Grammar& grammar) { return {"", grammar, true}; }

ReplyConstraint ReplyConstraint::ToolCall(std::string open, const Grammar& call) {
  const std::string tag = open;
  return {std::move(open), Grammar::Sequence({Grammar::Literal(tag), call}), false};
}

void ReplyConstraint::Mask(const TokenMasker& masker, std::vector<uint8_t>* allowed) const {
  if (engaged_) masker.Mask(*matcher_, allowed);
}

ReplyConstraint::Take ReplyConstraint::TakePiece(std::string_view piece) {
  if (!matcher_.has_value()) return Take::kTaken;  // plain text
  if (engaged_) return matcher_->AdvanceAll(piece) ? Take::kTaken : Take::kRefused;
  // Watching a tool-call reply's first bytes: whitespace before the tag is skipped.
  if (seen_ == 0) {
    const size_t text = piece.find_first_not_of(" \t\r\n");
    if (text == std::string_view::npos) return Take::kTaken;
    piece.remove_prefix(text);
  }
  const std::string_view rest = std::string_view{open_}.substr(seen_);
  if (matcher_->AdvanceAll(piece)) {
    seen_ += piece.size();
    engaged_ = seen_ >= open_.size();
    return Take::kTaken;
  }
  if (piece.starts_with(rest)) {
    // The model wrote the whole tag, then bytes no call starts with: draw this token again
    // under the grammar, from where the tag stands.
    engaged_ = true;
    return Take::kResample;
  }
  matcher_.reset();  // the reply left the tag: plain text from here on
  return Take::kTaken;
}

bool ReplyConstraint::Finished() const {
  return engaged_ && matcher_->IsComplete() && !matcher_->CanContinue();
}

}  // namespace agentry::constrain
