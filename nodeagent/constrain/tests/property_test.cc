// Property test: for several schemas, seeded random walks that pick uniformly among the bytes
// the grammar allows always end, within a bound, in text that nlohmann::json parses and that
// satisfies the schema (checked by the independent validator in test_support.h).
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "nodeagent/constrain/json_schema.h"
#include "nodeagent/constrain/tests/test_support.h"

namespace agentry::constrain {
namespace {

using nlohmann::json;

struct Case {
  const char* name;
  const char* schema;
  int walks;
};

// NOLINTNEXTLINE(cert-err58-cpp): test data
const Case kCases[] = {
    {"ticket", R"({"type": "object", "properties": {
        "id": {"type": "integer"},
        "note": {"type": "string", "maxLength": 40},
        "priority": {"enum": ["low", "high", "highest"]},
        "tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 8},
                 "maxItems": 4}},
        "required": ["id"]})",
     500},
    {"nested", R"({"type": "object", "properties": {
        "filter": {"type": "object", "properties": {
            "status": {"type": ["string", "null"], "maxLength": 12},
            "limit": {"type": "integer"},
            "score": {"type": "number"}},
            "required": ["limit"]},
        "ok": {"type": "boolean"},
        "data": {"maxItems": 3}},
        "required": ["filter"]})",
     500},
    {"alternatives", R"({"oneOf": [
        {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}},
         "required": ["kind", "x"]},
        {"type": "object", "properties": {"kind": {"const": "b"},
            "y": {"type": "array", "items": {"type": "number"}, "minItems": 1}},
         "required": ["kind"]},
        {"type": "array", "items": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
         "maxItems": 3}]})",
     500},
    {"optional_everything", R"({"type": "object", "properties": {
        "a": {"type": "integer"}, "ab": {"type": "null"}, "b": {"type": "boolean"},
        "c": {"type": "array", "items": {"type": "array", "items": {"type": "boolean"},
              "minItems": 1, "maxItems": 2}, "minItems": 2, "maxItems": 3},
        "d": {"type": "string", "minLength": 3, "maxLength": 5}, "e": {"const": [1, {"x": null}]}}})",
     500},
    {"any", "{}", 300},
    {"long_strings", R"({"type": "array", "items": {"type": "string"}, "maxItems": 3})", 100},
};

TEST(ConstrainPropertyTest, RandomWalksProduceValidJsonThatSatisfiesTheSchema) {
  for (const Case& c : kCases) {
    const json schema = json::parse(c.schema);
    StatusOr<Grammar> g = CompileJsonSchema(schema);
    ASSERT_TRUE(g.ok()) << c.name << ": " << g.status().message();
    std::mt19937_64 rng(0x5eed + c.walks);
    size_t longest = 0;
    for (int walk = 0; walk < c.walks; ++walk) {
      std::string text;
      ASSERT_TRUE(test_support::RandomWalk(*g, &rng, 1 << 16, &text))
          << c.name << " walk " << walk << " did not end: " << text.substr(0, 200);
      longest = std::max(longest, text.size());
      const json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
      ASSERT_FALSE(value.is_discarded()) << c.name << ": not JSON: " << text;
      std::string why;
      EXPECT_TRUE(test_support::Satisfies(value, schema, &why))
          << c.name << ": " << why << " in " << text;
    }
    RecordProperty(std::string(c.name) + "_longest", static_cast<int>(longest));
  }
}

}  // namespace
}  // namespace agentry::constrain
