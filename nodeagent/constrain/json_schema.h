// nodeagent/constrain/json_schema.h — compile a tool's JSON schema into a Grammar that accepts
// exactly the compact JSON values (grammar.h) that satisfy it.
//
//   StatusOr<Grammar> g = CompileJsonSchema(nlohmann::json::parse(R"({
//       "type": "object",
//       "properties": {"id": {"type": "integer"}, "note": {"type": "string"}},
//       "required": ["id"]})"));
//   // accepts {"id":4821} and {"id":4821,"note":"hi"}; not {"note":"hi","id":4821}
//
// Supported: type (object, array, string, integer, number, boolean, null, or a list of
// them), properties, required, additionalProperties (false or absent: other properties are
// never written), enum, const, items, minItems, maxItems, minLength, maxLength (in code
// points), anyOf and oneOf (alternatives; oneOf's "only one" is not enforced, so its branches
// should not overlap), and nested schemas; `true` and `{}` mean any JSON value. Annotations
// are ignored: description, title, default, examples, $schema, $comment.
//
// Order. An object's properties are written in the order the schema's `properties` iterate
// (nlohmann::json: sorted by name), the order RenderToolCall writes arguments in; optional
// properties may be left out.
//
// Without `type`, the keywords present imply it: properties/required/additionalProperties an
// object, items/minItems/maxItems an array, minLength/maxLength a string (several: any of
// those); with none, any value. Keywords for types a schema does not allow are checked but
// have no effect, as in JSON Schema. enum and const values must themselves satisfy the
// rest of the schema, and are matched as nlohmann::json writes them.
//
// Errors. A schema comes from tool authors and is untrusted: anything unsupported or
// malformed (another keyword, a keyword value of the wrong type, a required name missing
// from properties, minItems > maxItems, ...) is InvalidArgument naming the JSON path of the
// offending keyword, e.g. "properties.id.pattern: unsupported keyword". Nesting deeper than
// kMaxSchemaDepth and schemas larger than kMaxSchemaSize are refused the same way, which also
// bounds the grammar's size and the recursion that builds and frees it.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "nodeagent/constrain/grammar.h"

namespace agentry::constrain {

// Deepest nesting of subschemas (and of enum/const values) accepted.
inline constexpr int kMaxSchemaDepth = 32;
// Most subschemas plus enum/const values in one schema.
inline constexpr int kMaxSchemaSize = 2048;

// The grammar of the JSON values that satisfy `schema`. `path` prefixes the paths in error
// messages ("tools[1] (jira_search).parameters" gives
// "tools[1] (jira_search).parameters.properties.q.pattern: unsupported keyword").
StatusOr<Grammar> CompileJsonSchema(const nlohmann::json& schema, std::string_view path = "");

}  // namespace agentry::constrain
