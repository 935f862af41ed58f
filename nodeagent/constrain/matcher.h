// nodeagent/constrain/matcher.h — follow a Grammar byte by byte.
//
// The matcher is a nondeterministic pushdown recognizer. Its state is a set of live parse
// states, each a stack of small frames (a grammar node and two counters); the top frame of
// every non-empty stack is a terminal (a literal, or a JSON string / integer / number) that
// can take at least one more byte. A byte advances every stack whose terminal accepts it and
// drops the others; a terminal that is done pops, and the frames below it are expanded
// again (a Choice forks one stack per alternative) until each stack is topped by a terminal
// or empty. An empty stack means the input so far is a whole match. Identical stacks are
// merged, so ambiguity costs at most one stack per distinct parse position.
//
// All stacks live in one flat array, so a copy is two vector copies and a decoder can keep
// a matcher per sequence cheaply; TokenMasker (token_mask.h) builds many states per step.
//
//   Matcher m(Grammar::JsonInteger());
//   m.Advance('4');     // true
//   m.Advance('x');     // false; state unchanged
//   m.IsComplete();     // true: "4" is an integer
//   m.CanContinue();    // true: "42" would be too
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "nodeagent/constrain/grammar.h"

namespace agentry::constrain {

namespace internal {

// One entry of a parse stack: a node and the progress made inside it. What `a` and `b` mean
// depends on the node's kind (matcher.cc); for a literal `a` is the next byte's offset.
struct Frame {
  const Node* node;
  uint32_t a;
  uint32_t b;
};

// What a terminal frame did with one byte.
enum class StepResult : uint8_t {
  kReject,     // the byte cannot come next; the frame is unchanged
  kStay,       // consumed; the terminal needs more bytes
  kStayOrPop,  // consumed; the terminal may end here or take more
  kPop,        // consumed; the terminal is done and can take nothing more
};

// Advances the terminal `frame` (a literal, string, integer or number) by `byte`.
StepResult StepTerminal(Frame* frame, unsigned char byte);

// Whether `frame` is a JSON string between two characters (no escape or multi-byte
// character under way); if so, `room` gets how many more code points it may take.
bool InStringBody(const Frame& frame, uint32_t* room);

}  // namespace internal

class TokenMasker;

class Matcher {
 public:
  // Starts at the beginning of `grammar`; the matcher shares (and keeps alive) its nodes.
  explicit Matcher(const Grammar& grammar);

  // Consumes `byte` if some live state allows it. Returns false, with the state unchanged,
  // when the byte cannot come next.
  bool Advance(unsigned char byte);
  // Consumes all of `bytes`, or nothing: returns false, with the state unchanged, when one
  // of them cannot come next.
  bool AdvanceAll(std::string_view bytes);
  // Whether the input so far is a whole match of the grammar.
  bool IsComplete() const;
  // Whether some byte may come next.
  bool CanContinue() const;
  // How many parse states are live (diagnostics and tests; 1 for unambiguous input).
  size_t num_states() const { return ends_.size(); }

 private:
  friend class TokenMasker;
  Matcher() = default;

  // Advances stacks of `src` by `byte` into `out` (whose buffers are reused). When `tops`
  // is not null it replaces each stack's top frame (a null node: the stack is dead) — the
  // token masker advances just the top frames while a token stays inside one terminal, and
  // builds a whole state only when one ends. False, with `out` unspecified, when no stack
  // takes the byte.
  static bool AdvanceFrom(const Matcher& src, const internal::Frame* tops, unsigned char byte,
                          Matcher* out);
  // Stack `i` spans frames_[begin(i), ends_[i]).
  uint32_t begin(size_t i) const { return i == 0 ? 0 : ends_[i - 1]; }
  // Expands the stack being built at the end of frames_, from `begin`, until it is topped by
  // a terminal, forking at choices; closes each resulting stack in ends_.
  void Expand(size_t begin);
  // Merges identical stacks.
  void Dedup();

  std::shared_ptr<const internal::Node> root_;  // keeps the grammar's nodes alive
  std::vector<internal::Frame> frames_;
  std::vector<uint32_t> ends_;
};

}  // namespace agentry::constrain
