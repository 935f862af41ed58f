// CompileJsonSchema: what each supported keyword accepts and refuses, and every error with
// the JSON path it names.
#include "nodeagent/constrain/json_schema.h"

#include <string>

#include <gtest/gtest.h>

#include "nodeagent/constrain/tests/test_support.h"

namespace agentry::constrain {
namespace {

using nlohmann::json;
using test_support::kAccepted;
using test_support::RejectAt;

Grammar Compile(const char* schema) {
  StatusOr<Grammar> g = CompileJsonSchema(json::parse(schema));
  EXPECT_TRUE(g.ok()) << schema << ": " << g.status().message();
  return g.ok() ? *g : Grammar::Literal("\x01unusable");
}

// The error message CompileJsonSchema gives for `schema` ("" if it compiles).
std::string ErrorOf(const json& schema, std::string_view path = "") {
  StatusOr<Grammar> g = CompileJsonSchema(schema, path);
  if (g.ok()) return "";
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  return g.status().message();
}

std::string ErrorOf(const char* schema) { return ErrorOf(json::parse(schema)); }

TEST(ConstrainJsonSchemaTest, ObjectPropertiesInSortedOrderRequiredAndOptional) {
  const Grammar g = Compile(R"({"type": "object", "description": "a ticket query",
      "properties": {"status": {"type": "string"}, "id": {"type": "integer"}},
      "required": ["id"], "additionalProperties": false})");
  EXPECT_EQ(RejectAt(g, R"({"id":4821})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"id":4821,"status":"open"})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"id": 4821, "status": "open"})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"status":"open","id":1})"), 2);  // "id" comes first (sorted)
  EXPECT_EQ(RejectAt(g, R"({"status":"open"})"), 2);         // and is required
  EXPECT_EQ(RejectAt(g, R"({"id":1,"other":2})"), 9);        // no additional properties
  EXPECT_EQ(RejectAt(g, R"({"id":"1"})"), 6);
}

TEST(ConstrainJsonSchemaTest, NestedObjectsAndArrays) {
  const Grammar g = Compile(R"({"type": "object", "properties": {
      "filter": {"type": "object", "properties": {"tags": {"type": "array",
          "items": {"type": "string", "maxLength": 3}, "minItems": 1, "maxItems": 2}},
          "required": ["tags"]}}, "required": ["filter"]})");
  EXPECT_EQ(RejectAt(g, R"({"filter":{"tags":["a","bcd"]}})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"filter":{"tags":[]}})"), 19);             // minItems
  EXPECT_EQ(RejectAt(g, R"({"filter":{"tags":["a","b","c"]}})"), 26);  // maxItems
  EXPECT_EQ(RejectAt(g, R"({"filter":{"tags":["abcd"]}})"), 23);       // maxLength
  EXPECT_EQ(RejectAt(g, R"({"filter":{}})"), 11);
}

TEST(ConstrainJsonSchemaTest, StringLengthsCountCodePoints) {
  const Grammar g = Compile(R"({"type": "string", "minLength": 2, "maxLength": 2})");
  EXPECT_EQ(RejectAt(g, "\"\xC3\xA9\xC3\xA9\""), kAccepted);
  EXPECT_EQ(RejectAt(g, "\"\xC3\xA9\""), 3);
  EXPECT_EQ(RejectAt(g, "\"ab\""), kAccepted);
  EXPECT_EQ(RejectAt(g, "\"abc\""), 3);
}

TEST(ConstrainJsonSchemaTest, ScalarTypesAndTypeLists) {
  EXPECT_EQ(RejectAt(Compile(R"({"type": "integer"})"), "-17"), kAccepted);
  EXPECT_EQ(RejectAt(Compile(R"({"type": "integer"})"), "1.5"), 1);
  EXPECT_EQ(RejectAt(Compile(R"({"type": "number"})"), "1.5e3"), kAccepted);
  EXPECT_EQ(RejectAt(Compile(R"({"type": "boolean"})"), "false"), kAccepted);
  EXPECT_EQ(RejectAt(Compile(R"({"type": "boolean"})"), "0"), 0);
  EXPECT_EQ(RejectAt(Compile(R"({"type": "null"})"), "null"), kAccepted);
  const Grammar g = Compile(R"({"type": ["string", "null"], "maxLength": 1})");
  EXPECT_EQ(RejectAt(g, "null"), kAccepted);
  EXPECT_EQ(RejectAt(g, "\"x\""), kAccepted);
  EXPECT_EQ(RejectAt(g, "\"xy\""), 2);
  EXPECT_EQ(RejectAt(g, "1"), 0);
}

TEST(ConstrainJsonSchemaTest, EnumAndConst) {
  const Grammar colors = Compile(R"({"type": "string", "enum": ["red", "green", "greenish"]})");
  EXPECT_EQ(RejectAt(colors, R"("red")"), kAccepted);
  EXPECT_EQ(RejectAt(colors, R"("green")"), kAccepted);
  EXPECT_EQ(RejectAt(colors, R"("greenish")"), kAccepted);
  EXPECT_EQ(RejectAt(colors, R"("re")"), 3);
  EXPECT_EQ(RejectAt(colors, R"("blue")"), 1);
  EXPECT_EQ(RejectAt(colors, R"("red" )"), 5);
  // Any JSON values, matched as nlohmann::json writes them.
  const Grammar mixed = Compile(R"({"enum": [1, "a\"b", null, {"k": [true]}, 2.5]})");
  for (const char* s : {"1", R"("a\"b")", "null", R"({"k":[true]})", "2.5"}) {
    EXPECT_EQ(RejectAt(mixed, s), kAccepted) << s;
  }
  EXPECT_EQ(RejectAt(mixed, R"({"k": [true]})"), 5);
  const Grammar c = Compile(R"({"const": "fixed", "title": "the only value"})");
  EXPECT_EQ(RejectAt(c, R"("fixed")"), kAccepted);
  EXPECT_EQ(RejectAt(c, R"("fixes")"), 5);
  EXPECT_EQ(RejectAt(Compile(R"({"const": 2, "enum": [1, 2]})"), "2"), kAccepted);
  EXPECT_EQ(RejectAt(Compile(R"({"const": 2, "enum": [1, 2]})"), "1"), 0);
}

TEST(ConstrainJsonSchemaTest, AnyOfAndOneOfAreAlternatives) {
  for (const char* keyword : {"anyOf", "oneOf"}) {
    const std::string schema = std::string(R"({")") + keyword +
                               R"(": [{"type": "integer"}, {"type": "object",
        "properties": {"q": {"type": "string"}}, "required": ["q"]}], "description": "x"})";
    const Grammar g = Compile(schema.c_str());
    EXPECT_EQ(RejectAt(g, "12"), kAccepted);
    EXPECT_EQ(RejectAt(g, R"({"q":"x"})"), kAccepted);
    EXPECT_EQ(RejectAt(g, "\"x\""), 0);
  }
}

TEST(ConstrainJsonSchemaTest, TrueAndEmptySchemasAllowAnyValue) {
  for (const char* schema : {"true", "{}", R"({"description": "anything"})"}) {
    const Grammar g = Compile(schema);
    for (const char* v : {"1", "\"s\"", "[1,{\"a\":null}]", "{}", "false"}) {
      EXPECT_EQ(RejectAt(g, v), kAccepted) << schema << " " << v;
    }
  }
}

TEST(ConstrainJsonSchemaTest, KeywordsImplyTheTypeWhenItIsMissing) {
  EXPECT_EQ(RejectAt(Compile(R"({"properties": {"a": {"type": "null"}}})"), R"({"a":null})"),
            kAccepted);
  EXPECT_EQ(RejectAt(Compile(R"({"properties": {}})"), "1"), 0);
  EXPECT_EQ(RejectAt(Compile(R"({"maxItems": 1})"), "[[]]"), kAccepted);
  EXPECT_EQ(RejectAt(Compile(R"({"maxLength": 1})"), "\"ab\""), 2);
  // Keywords for types the schema does not allow have no effect.
  EXPECT_EQ(RejectAt(Compile(R"({"type": "integer", "maxLength": 1})"), "12345"), kAccepted);
}

TEST(ConstrainJsonSchemaTest, FalseSchemasForItemsAndOptionalProperties) {
  EXPECT_EQ(RejectAt(Compile(R"({"type": "array", "items": false})"), "[]"), kAccepted);
  EXPECT_EQ(RejectAt(Compile(R"({"type": "array", "items": false})"), "[1"), 1);
  const Grammar g = Compile(R"({"type": "object", "properties": {"a": false, "b": true}})");
  EXPECT_EQ(RejectAt(g, R"({"b":[1]})"), kAccepted);
  EXPECT_EQ(RejectAt(g, R"({"a":1})"), 2);
  EXPECT_EQ(RejectAt(Compile(R"({"type": "array", "minItems": 2.0})"), "[1]"), 2);
}

TEST(ConstrainJsonSchemaTest, ErrorsNameTheKeywordPath) {
  EXPECT_EQ(ErrorOf(R"({"type": "object", "properties": {"id": {"type": "string",
      "pattern": "^[0-9]+$"}}})"),
            "properties.id.pattern: unsupported keyword");
  EXPECT_EQ(ErrorOf(R"({"minimum": 1})"), "minimum: unsupported keyword");
  EXPECT_EQ(ErrorOf(R"({"items": {"format": "date"}})"), "items.format: unsupported keyword");
  EXPECT_EQ(ErrorOf(R"({"anyOf": [{}, {"not": {}}]})"), "anyOf[1].not: unsupported keyword");
  EXPECT_EQ(ErrorOf(json::parse(R"({"properties": {"q": {"pattern": "x"}}})"),
                    "tools[1] (jira_search).parameters"),
            "tools[1] (jira_search).parameters.properties.q.pattern: unsupported keyword");
}

TEST(ConstrainJsonSchemaTest, SchemaShapeErrors) {
  EXPECT_EQ(ErrorOf("false"), "schema false allows no value");
  EXPECT_EQ(ErrorOf("5"), "schema must be an object or a boolean");
  EXPECT_EQ(ErrorOf(R"({"properties": {"x": "string"}})"),
            "properties.x: schema must be an object or a boolean");
  EXPECT_EQ(ErrorOf(R"({"items": false, "anyOf": [false]})"),
            "items: cannot be combined with anyOf");
  EXPECT_EQ(ErrorOf(R"({"anyOf": [true]})"), "");
  EXPECT_EQ(ErrorOf(R"({"anyOf": [false]})"), "anyOf[0]: schema false allows no value");
  EXPECT_EQ(ErrorOf(R"({"anyOf": []})"), "anyOf: must be a non-empty array of schemas");
  EXPECT_EQ(ErrorOf(R"({"oneOf": {}})"), "oneOf: must be a non-empty array of schemas");
  EXPECT_EQ(ErrorOf(R"({"anyOf": [{}], "oneOf": [{}]})"), "oneOf: cannot be combined with anyOf");
  EXPECT_EQ(ErrorOf(R"({"oneOf": [{}], "type": "string"})"), "type: cannot be combined with oneOf");
  EXPECT_EQ(ErrorOf(R"({"oneOf": [{"type": 1}]})"),
            "oneOf[0].type: must be a type name or a non-empty array of type names");
}

TEST(ConstrainJsonSchemaTest, KeywordValueErrors) {
  EXPECT_EQ(ErrorOf(R"({"type": []})"),
            "type: must be a type name or a non-empty array of type names");
  EXPECT_EQ(ErrorOf(R"({"type": ["string", 3]})"), "type[1]: must be a type name");
  EXPECT_EQ(ErrorOf(R"({"type": "float"})"),
            "type: unknown type \"float\" (known: object, array, string, integer, number, "
            "boolean, null)");
  EXPECT_EQ(ErrorOf(R"({"type": ["null", "null"]})"), "type[1]: type \"null\" is listed twice");
  EXPECT_EQ(ErrorOf(R"({"properties": []})"),
            "properties: must be an object mapping property names to schemas");
  EXPECT_EQ(ErrorOf(R"({"properties": {}, "required": "a"})"),
            "required: must be an array of property names");
  EXPECT_EQ(ErrorOf(R"({"properties": {"a": {}}, "required": ["a", 1]})"),
            "required[1]: must be a property name");
  EXPECT_EQ(ErrorOf(R"({"properties": {"a": {}}, "required": ["a", "b"]})"),
            "required[1]: \"b\" is not in properties");
  EXPECT_EQ(ErrorOf(R"({"required": ["a"]})"), "required[0]: \"a\" is not in properties");
  EXPECT_EQ(ErrorOf(R"({"additionalProperties": true})"),
            "additionalProperties: unsupported value (only false is supported: no other "
            "properties)");
  EXPECT_EQ(ErrorOf(R"({"additionalProperties": {"type": "string"}})"),
            "additionalProperties: unsupported value (only false is supported: no other "
            "properties)");
  EXPECT_EQ(ErrorOf(R"({"properties": {"a": false}, "required": ["a"]})"),
            "properties.a: schema false, but the property is required");
  EXPECT_EQ(ErrorOf(R"({"items": [{}]})"), "items: must be a schema (an object or a boolean)");
  EXPECT_EQ(ErrorOf(R"({"items": {"items": "x"}})"),
            "items.items: must be a schema (an object or a boolean)");
  for (const char* bad : {"-1", "1.5", "\"3\"", "4294967295", "null"}) {
    EXPECT_EQ(ErrorOf(json::parse(std::string(R"({"maxLength": )") + bad + "}")),
              "maxLength: must be a non-negative integer below 4294967295")
        << bad;
  }
  EXPECT_EQ(ErrorOf(R"({"minItems": 5, "maxItems": 3})"),
            "minItems: is greater than maxItems (5 > 3)");
  EXPECT_EQ(ErrorOf(R"({"properties": {"s": {"minLength": 9, "maxLength": 2}}})"),
            "properties.s.minLength: is greater than maxLength (9 > 2)");
  EXPECT_EQ(ErrorOf(R"({"items": false, "minItems": 1})"),
            "minItems: must be 0 when items is false (no item is allowed)");
  EXPECT_EQ(ErrorOf(R"({"enum": []})"), "enum: must be a non-empty array");
  EXPECT_EQ(ErrorOf(R"({"enum": "a"})"), "enum: must be a non-empty array");
  EXPECT_EQ(ErrorOf(R"({"const": 3, "enum": [1, 2]})"), "const: value is not in enum");
  EXPECT_EQ(ErrorOf(R"({"type": "string", "enum": ["a", 1]})"),
            "enum[1]: value does not satisfy the schema's other keywords");
  EXPECT_EQ(ErrorOf(R"({"type": "string", "maxLength": 2, "enum": ["ab", "abc"]})"),
            "enum[1]: value does not satisfy the schema's other keywords");
  EXPECT_EQ(ErrorOf(R"({"type": "integer", "const": 1.5})"),
            "const: value does not satisfy the schema's other keywords");
}

TEST(ConstrainJsonSchemaTest, UntrustedInputIsBounded) {
  json deep = json::object();
  for (int i = 0; i < 40; ++i) deep = json{{"items", deep}};
  const std::string deep_error = ErrorOf(deep);
  EXPECT_EQ(deep_error.substr(deep_error.find(": ")), ": schema nests deeper than 32 levels");
  EXPECT_EQ(deep_error.substr(0, 12), "items.items.");

  json wide = {{"type", "object"}, {"properties", json::object()}};
  for (int i = 0; i < 3000; ++i)
    wide["properties"]["p" + std::to_string(10000 + i)] = json::object();
  EXPECT_EQ(ErrorOf(wide),
            "properties.p12047: schema is too large (more than 2048 subschemas "
            "and enum values)");

  json values = json::array();
  for (int i = 0; i < 3000; ++i) values.push_back(i);
  EXPECT_EQ(ErrorOf(json{{"enum", values}}),
            "enum[2047]: schema is too large (more than 2048 subschemas and enum values)");

  json nested = 1;
  for (int i = 0; i < 40; ++i) nested = json::array({nested});
  EXPECT_EQ(ErrorOf(json{{"const", nested}}), "const: value nests deeper than 32 levels");

  EXPECT_EQ(ErrorOf(json{{"enum", {"ok", std::string("\xFF")}}}),
            "enum[1]: value holds a string that is not valid UTF-8");
  EXPECT_EQ(ErrorOf(json{{"properties", {{std::string("a\xFF"), json::object()}}}}),
            std::string("properties.a\xFF: property name is not valid UTF-8"));
}

}  // namespace
}  // namespace agentry::constrain
