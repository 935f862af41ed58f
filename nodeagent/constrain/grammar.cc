// nodeagent/constrain/grammar.cc — see grammar.h.
#include "nodeagent/constrain/grammar.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include <nlohmann/json.hpp>

namespace agentry::constrain {
namespace {

using internal::Node;
using internal::NodeKind;
using NodePtr = std::shared_ptr<const Node>;

// A broken precondition of a factory function: a bug in the caller, never input.
void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "constrain::Grammar: precondition failed: %s\n", what);
    std::abort();
  }
}

Node NewNode(NodeKind kind, bool nullable = false) {
  Node node;
  node.kind = kind;
  node.nullable = nullable;
  return node;
}

NodePtr MakeNode(Node node) { return std::make_shared<const Node>(std::move(node)); }

// The JSON text of `name` as nlohmann::json writes it (RenderToolCall uses the same), with
// invalid UTF-8 replaced rather than thrown about.
std::string JsonQuote(const std::string& name) {
  return nlohmann::json(name).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// LiteralSet over sorted, unique `strings[lo, hi)`, all equal before byte `offset`.
Grammar BuildLiteralTrie(const std::vector<std::string>& strings, size_t lo, size_t hi,
                         size_t offset) {
  const std::string_view first = strings[lo];
  if (hi - lo == 1) return Grammar::Literal(first.substr(offset));
  // Sorted, so the common prefix of the range is that of its first and last strings.
  const std::string& last = strings[hi - 1];
  size_t common = offset;
  while (common < first.size() && common < last.size() && first[common] == last[common]) {
    ++common;
  }
  std::vector<Grammar> alternatives;
  size_t i = lo;
  if (strings[i].size() == common) {  // unique, so only the first can end here
    alternatives.emplace_back();
    ++i;
  }
  while (i < hi) {
    size_t j = i + 1;
    while (j < hi && strings[j][common] == strings[i][common]) ++j;
    alternatives.push_back(BuildLiteralTrie(strings, i, j, common));
    i = j;
  }
  return Grammar::Sequence({Grammar::Literal(first.substr(offset, common - offset)),
                            Grammar::Choice(std::move(alternatives))});
}

Grammar Separator() { return Grammar::Sequence({Grammar::Literal(","), Grammar::JsonSpace()}); }

}  // namespace

Grammar::Grammar() : node_(MakeNode(NewNode(NodeKind::kEmpty, /*nullable=*/true))) {}

Grammar Grammar::Literal(std::string_view bytes) {
  if (bytes.empty()) return Grammar();
  Node node = NewNode(NodeKind::kLiteral);
  node.bytes = std::string(bytes);
  return Grammar(MakeNode(std::move(node)));
}

Grammar Grammar::LiteralSet(std::vector<std::string> alternatives) {
  Require(!alternatives.empty(), "LiteralSet needs at least one alternative");
  std::sort(alternatives.begin(), alternatives.end());
  alternatives.erase(std::unique(alternatives.begin(), alternatives.end()), alternatives.end());
  return BuildLiteralTrie(alternatives, 0, alternatives.size(), 0);
}

Grammar Grammar::Sequence(std::vector<Grammar> parts) {
  Node node = NewNode(NodeKind::kSequence, /*nullable=*/true);
  for (Grammar& part : parts) {
    if (part.node_->kind == NodeKind::kEmpty) continue;
    node.nullable = node.nullable && part.node_->nullable;
    node.children.push_back(std::move(part.node_));
  }
  if (node.children.empty()) return Grammar();
  if (node.children.size() == 1) return Grammar(std::move(node.children[0]));
  return Grammar(MakeNode(std::move(node)));
}

Grammar Grammar::Choice(std::vector<Grammar> alternatives) {
  Require(!alternatives.empty(), "Choice needs at least one alternative");
  if (alternatives.size() == 1) return std::move(alternatives[0]);
  Node node = NewNode(NodeKind::kChoice);
  for (Grammar& alternative : alternatives) {
    node.nullable = node.nullable || alternative.node_->nullable;
    node.children.push_back(std::move(alternative.node_));
  }
  return Grammar(MakeNode(std::move(node)));
}

Grammar Grammar::Optional(const Grammar& g) { return Choice({g, Grammar()}); }

Grammar Grammar::Repeat(const Grammar& item, const Grammar& separator, uint32_t min, uint32_t max) {
  Require(min <= max, "Repeat needs min <= max");
  Require(max != kUnbounded || !item.nullable(), "unbounded Repeat needs a non-empty item");
  if (max == 0) return Grammar();
  Node node = NewNode(NodeKind::kRepeat, min == 0 || item.nullable());
  node.children = {item.node_, separator.node_};
  node.min = min;
  node.max = max;
  return Grammar(MakeNode(std::move(node)));
}

Grammar Grammar::JsonString(uint32_t min_length, uint32_t max_length) {
  Require(min_length <= max_length, "JsonString needs min_length <= max_length");
  Node node = NewNode(NodeKind::kString);
  node.min = min_length;
  node.max = max_length;
  return Grammar(MakeNode(std::move(node)));
}

Grammar Grammar::JsonInteger() { return Grammar(MakeNode(NewNode(NodeKind::kInteger))); }

Grammar Grammar::JsonNumber() { return Grammar(MakeNode(NewNode(NodeKind::kNumber))); }

Grammar Grammar::JsonBoolean() { return LiteralSet({"true", "false"}); }

Grammar Grammar::JsonNull() { return Literal("null"); }

Grammar Grammar::JsonSpace() { return Optional(Literal(" ")); }

Grammar Grammar::JsonObject(const std::vector<JsonProperty>& properties) {
  // rest[i][first]: the properties from i on, then '}'; `first` when none has been written
  // yet (so no ',' comes before the next one). An optional property is a choice between
  // writing it and skipping to rest[i + 1]; the grammar is linear in the property count and
  // the closing brace is reachable only at the end of the skips, so no two alternatives
  // ever match the same text.
  const size_t n = properties.size();
  Grammar rest_first = Literal("}");
  Grammar rest_later = rest_first;
  for (size_t k = n; k-- > 0;) {
    const JsonProperty& p = properties[k];
    const Grammar key = Literal(JsonQuote(p.name) + ":");
    const Grammar take_first = Sequence({key, JsonSpace(), p.value, rest_later});
    const Grammar take_later = Sequence({Separator(), take_first});
    if (p.required) {
      rest_first = take_first;
      rest_later = take_later;
    } else {
      rest_first = Choice({take_first, rest_first});
      rest_later = Choice({take_later, rest_later});
    }
  }
  return Sequence({Literal("{"), rest_first});
}

Grammar Grammar::JsonArray(const Grammar& items, uint32_t min_items, uint32_t max_items) {
  Require(min_items <= max_items, "JsonArray needs min_items <= max_items");
  return Sequence({Literal("["), Repeat(items, Separator(), min_items, max_items), Literal("]")});
}

Grammar Grammar::JsonAny(int depth) {
  const Grammar scalars =
      Choice({JsonString(), JsonNumber(), LiteralSet({"true", "false", "null"})});
  Grammar any = scalars;
  for (int level = 0; level < depth; ++level) {
    const Grammar member = Sequence({JsonString(), Literal(":"), JsonSpace(), any});
    const Grammar object =
        Sequence({Literal("{"), Repeat(member, Separator(), 0, kUnbounded), Literal("}")});
    any = Choice({scalars, JsonArray(any, 0, kUnbounded), object});
  }
  return any;
}

}  // namespace agentry::constrain
