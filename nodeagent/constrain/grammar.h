// nodeagent/constrain/grammar.h — a small, immutable grammar over bytes, built to constrain what
// a model may write: JSON matching a tool's schema, inside the tool-call format.
//
// A Grammar is a handle to a node of a directed acyclic graph; combining grammars shares
// their nodes instead of copying them, and nothing can change a node once built, so one
// compiled grammar serves any number of Matchers (matcher.h) on any number of threads.
//
//   Grammar id = Grammar::JsonObject({{"id", Grammar::JsonInteger(), /*required=*/true}});
//   Grammar call = Grammar::Sequence({Grammar::Literal("<call>"), id,
//   Grammar::Literal("</call>")}); Matcher m(call); m.AdvanceAll("<call>{\"id\":42}</call>");  //
//   true; m.IsComplete() is now true
//
// Node kinds. Three are structural: Literal (exact bytes), Sequence, and Choice (the
// alternatives are followed side by side; the matcher keeps every live one and drops those a
// byte kills, so a choice need not be decidable from its first byte). Repeat adds bounded or
// unbounded repetition with a separator. Three are lexical terminals with a little state of
// their own: a JSON string, integer and number. Everything else (objects, arrays, booleans,
// null, any JSON value, sets of literal strings) is built from those.
//
// JSON shape. Output is compact JSON, as Agentry's own model writes it (runtime/prompt):
// no whitespace is required anywhere, and at most one optional space may follow a ':' or a
// ',', so other models' "a": 1, "b": 2 style also fits. Whitespace elsewhere, and more than
// one space, are refused: a constrained generation must not be able to pad forever.
//
// Termination. Every terminal has a bounded length except strings without a maxLength and
// repetitions without a max; those end with some probability at every byte, and "any JSON
// value" has a bounded nesting depth, so a walk that picks bytes at random ends with
// probability one. Every node matches at least one string and every live state of a matcher
// can be completed, so a constrained generation never reaches a dead end.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace agentry::constrain {

// "No upper bound" for Repeat counts and string lengths.
inline constexpr uint32_t kUnbounded = UINT32_MAX;
// How deeply a value matched by JsonAny() (the `{}` schema) may nest arrays and objects.
inline constexpr int kJsonAnyDepth = 8;
// Digit bounds that keep every integer within int64 and every JSON number finite when parsed
// as a double (nlohmann::json refuses to parse one that overflows): at most 16 integer
// digits, 24 fraction digits (nlohmann::json writes 0.0001234... with up to 21), and an
// exponent of at most 3 digits that, when positive, keeps the value below 10^308
// (integer digits + exponent <= 308). Negative exponents may underflow to 0, which parses.
inline constexpr int kMaxIntegerDigits = 16;
inline constexpr int kMaxFractionDigits = 24;
inline constexpr int kMaxExponentDigits = 3;
inline constexpr int kMaxDecimalExponent = 308;

namespace internal {

enum class NodeKind : uint8_t {
  kEmpty,     // matches ""
  kLiteral,   // `bytes`, non-empty
  kSequence,  // `children` one after another (at least two)
  kChoice,    // any one of `children` (at least two)
  kRepeat,    // children[0] `min`..`max` times, children[1] between two of them
  kString,    // a JSON string of `min`..`max` code points, quotes included
  kInteger,   // -?(0|[1-9][0-9]*), at most kMaxIntegerDigits digits
  kNumber,    // integer part, optional fraction and exponent, bounded as above
};

// One grammar node. Immutable once built; shared between the grammars that contain it.
struct Node {
  NodeKind kind = NodeKind::kEmpty;
  bool nullable = false;  // matches the empty string
  std::string bytes;
  std::vector<std::shared_ptr<const Node>> children;
  uint32_t min = 0;
  uint32_t max = 0;
};

}  // namespace internal

struct JsonProperty;

// A grammar: an immutable handle to a shared node. Copying is a reference-count increment.
// The factory functions abort when a precondition they state is broken: those are bugs in
// the caller (json_schema.cc checks untrusted schemas before it builds anything).
class Grammar {
 public:
  // Matches only the empty string.
  Grammar();

  // Exactly `bytes` (the empty string gives Grammar()).
  static Grammar Literal(std::string_view bytes);
  // Exactly one of `alternatives` (at least one). Shared prefixes are matched once, so a
  // large enum costs one live state, not one per value.
  static Grammar LiteralSet(std::vector<std::string> alternatives);
  // `parts` one after another; no parts gives Grammar().
  static Grammar Sequence(std::vector<Grammar> parts);
  // Any one of `alternatives` (at least one).
  static Grammar Choice(std::vector<Grammar> alternatives);
  // `g` or nothing.
  static Grammar Optional(const Grammar& g);
  // `item` between `min` and `max` times (max may be kUnbounded), `separator` between two
  // items. Needs min <= max and, when max is kUnbounded, an item that cannot be empty (else
  // "how many empty items?" has no end).
  static Grammar Repeat(const Grammar& item, const Grammar& separator, uint32_t min, uint32_t max);

  // A JSON string, quotes included, of `min_length`..`max_length` code points (an escape
  // is one; a surrogate pair \uD83D\uDE00 is one). Any well-formed UTF-8 is allowed raw
  // except control characters; escapes are \" \\ \/ \b \f \n \r \t and \uXXXX, where a high
  // surrogate must be followed by a low one and a low one may not stand alone (nlohmann::json
  // and most parsers refuse lone surrogates). Needs min_length <= max_length.
  static Grammar JsonString(uint32_t min_length = 0, uint32_t max_length = kUnbounded);
  // -?(0|[1-9][0-9]*) with at most kMaxIntegerDigits digits.
  static Grammar JsonInteger();
  // A JSON number: an integer part as above, an optional fraction of at most
  // kMaxFractionDigits digits, an optional exponent [eE][+-]? of at most kMaxExponentDigits
  // digits that keeps the value below 10^kMaxDecimalExponent.
  static Grammar JsonNumber();
  // true or false.
  static Grammar JsonBoolean();
  // null.
  static Grammar JsonNull();
  // An object with exactly these properties, in this order, each at most once: required ones
  // always, optional ones when the writer chooses; nothing else. Names must be valid UTF-8
  // (they are written as nlohmann::json writes them, with invalid bytes replaced).
  static Grammar JsonObject(const std::vector<JsonProperty>& properties);
  // [item, item, ...] with min_items..max_items items (max may be kUnbounded).
  static Grammar JsonArray(const Grammar& items, uint32_t min_items, uint32_t max_items);
  // Any JSON value whose arrays and objects nest at most `depth` levels (0: scalars only).
  static Grammar JsonAny(int depth = kJsonAnyDepth);
  // The optional single space allowed after ':' and ','.
  static Grammar JsonSpace();

  // Whether the empty string matches.
  bool nullable() const { return node_->nullable; }
  // The root node, for Matcher.
  const std::shared_ptr<const internal::Node>& node() const { return node_; }

 private:
  explicit Grammar(std::shared_ptr<const internal::Node> node) : node_(std::move(node)) {}

  std::shared_ptr<const internal::Node> node_;
};

// One property of Grammar::JsonObject.
struct JsonProperty {
  std::string name;  // the key, unescaped
  Grammar value;
  bool required = false;
};

}  // namespace agentry::constrain
