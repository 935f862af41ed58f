// nodeagent/constrain/reply_constraint.h — what the node daemon holds a reply to while it is
// generated: nothing, one JSON value from its first byte (a JSON schema), or a tool call once
// the reply opens with the call's tag.
//
// A tool-calling model answers either in plain text or with a call, and only the call has a
// shape. So the tool-call constraint watches the reply's first bytes (leading whitespace
// skipped): while they are a prefix of the opening tag nothing is masked; once the tag is
// whole, every later token is masked by the call's grammar (tool_call.h), and the reply
// ends when the call is complete. A reply that leaves the tag's prefix is plain text and is
// never constrained. One token may finish the tag and go on with bytes the call refuses
// ("<tool_call>Sure"): Take() answers kResample and the daemon draws that step again under
// the mask, which now allows only what continues the tag into a valid call.
//
//   ReplyConstraint c = ReplyConstraint::ToolCall("<tool_call>", *ToolCallGrammar(tools, close));
//   sampler.SetMask([&](std::vector<uint8_t>* allowed) { c.Mask(masker, allowed); });
//   ... each step: switch (c.Take(piece)) { case kResample: sample again; ... }
//   if (c.Finished()) stop: the call is whole and nothing may follow it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodeagent/constrain/grammar.h"
#include "nodeagent/constrain/matcher.h"
#include "nodeagent/constrain/token_mask.h"

namespace agentry::constrain {

class ReplyConstraint {
 public:
  enum class Take : uint8_t {
    kTaken,     // the piece is part of the reply
    kResample,  // the piece finishes the opening tag with bytes the call refuses: draw again
    kRefused,   // the piece breaks a constraint in force (the mask should have prevented it)
  };

  // No constraint.
  ReplyConstraint() = default;
  // The whole reply is a text of `grammar`.
  static ReplyConstraint Whole(const Grammar& grammar);
  // A reply that opens with `open` (after whitespace) continues as a text of `call`.
  static ReplyConstraint ToolCall(std::string open, const Grammar& call);

  // Clears allowed[id] for the tokens the constraint refuses now; nothing while none is in
  // force (no constraint, a tool-call reply still inside its tag or already plain text).
  void Mask(const TokenMasker& masker, std::vector<uint8_t>* allowed) const;
  // Follows the reply by the next token's piece (see Take).
  Take TakePiece(std::string_view piece);

  // A constraint is in force: the grammar masks the next token.
  bool Engaged() const { return engaged_; }
  // The reply is a whole tool call (or value) and nothing may follow it.
  bool Finished() const;
  // The reply opened a tool call (its tag is whole).
  bool InToolCall() const { return engaged_ && !open_.empty(); }

 private:
  ReplyConstraint(std::string open, const Grammar& grammar, bool engaged);

  std::string open_;                // the tool call's opening tag; empty for Whole
  std::optional<Matcher> matcher_;  // null: nothing constrains the reply (any more)
  bool engaged_ = false;            // the matcher masks tokens
  size_t seen_ = 0;                 // bytes of the tag the reply has written (tool calls)
};

}  // namespace agentry::constrain
