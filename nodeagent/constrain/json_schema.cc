// nodeagent/constrain/json_schema.cc — see json_schema.h.
#include "nodeagent/constrain/json_schema.h"

#include <array>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "nodeagent/constrain/matcher.h"

namespace agentry::constrain {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 6> kAnnotations = {"description", "title",   "default",
                                                          "examples",    "$schema", "$comment"};
constexpr std::array<std::string_view, 13> kKeywords = {
    "type",     "properties", "required",  "additionalProperties",
    "enum",     "const",      "items",     "minItems",
    "maxItems", "minLength",  "maxLength", "anyOf",
    "oneOf"};
constexpr std::array<std::string_view, 7> kTypes = {"object", "array",   "string", "integer",
                                                    "number", "boolean", "null"};

bool Contains(const auto& list, std::string_view s) {
  for (std::string_view x : list) {
    if (x == s) return true;
  }
  return false;
}

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

Status Error(const std::string& path, const std::string& message) {
  return InvalidArgumentError(path.empty() ? message : path + ": " + message);
}

const json* Find(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// Whether `value`'s arrays and objects nest at most `limit` levels; recurses no deeper.
bool DepthAtMost(const json& value, int limit) {
  if (!value.is_structured()) return true;
  if (limit == 0) return false;
  for (const json& child : value) {
    if (!DepthAtMost(child, limit - 1)) return false;
  }
  return true;
}

// A count keyword (minItems, ...): a non-negative integer (3.0 too, as JSON Schema allows).
StatusOr<uint32_t> ReadCount(const json& value, const std::string& path) {
  const Status bad =
      Error(path, "must be a non-negative integer below " + std::to_string(kUnbounded));
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u < kUnbounded) return static_cast<uint32_t>(u);
    return bad;
  }
  if (value.is_number_integer()) {  // negative: unsigned ones were handled above
    return bad;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (d >= 0 && d < kUnbounded && std::floor(d) == d) return static_cast<uint32_t>(d);
  }
  return bad;
}

class SchemaCompiler {
 public:
  StatusOr<Grammar> Compile(const json& schema, const std::string& path, int depth);

 private:
  Status Charge(const std::string& path) {
    if (++units_ > kMaxSchemaSize) {
      return Error(path, "schema is too large (more than " + std::to_string(kMaxSchemaSize) +
                             " subschemas and enum values)");
    }
    return OkStatus();
  }
  StatusOr<Grammar> CompileAlternatives(const json& schema, const char* keyword,
                                        const std::string& path, int depth);
  StatusOr<std::vector<std::string>> ReadTypes(const json& schema, const std::string& path);
  StatusOr<Grammar> CompileValues(const json& schema, const std::string& path, const Grammar* rest);

  int units_ = 0;
};

StatusOr<Grammar> SchemaCompiler::CompileAlternatives(const json& schema, const char* keyword,
                                                      const std::string& path, int depth) {
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    if (it.key() != keyword && !Contains(kAnnotations, it.key())) {
      return Error(Join(path, it.key()), std::string("cannot be combined with ") + keyword);
    }
  }
  const std::string list_path = Join(path, keyword);
  const json& list = schema[keyword];
  if (!list.is_array() || list.empty()) {
    return Error(list_path, "must be a non-empty array of schemas");
  }
  std::vector<Grammar> alternatives;
  for (size_t i = 0; i < list.size(); ++i) {
    AGENTRY_ASSIGN_OR_RETURN(Grammar g, Compile(list[i], Index(list_path, i), depth + 1));
    alternatives.push_back(std::move(g));
  }
  return Grammar::Choice(std::move(alternatives));
}

StatusOr<std::vector<std::string>> SchemaCompiler::ReadTypes(const json& schema,
                                                             const std::string& path) {
  std::vector<std::string> types;
  const json* type = Find(schema, "type");
  if (type == nullptr) return types;
  const std::string type_path = Join(path, "type");
  auto add = [&types](const json& name, const std::string& where) -> Status {
    if (!name.is_string()) return Error(where, "must be a type name");
    const std::string& s = name.get_ref<const std::string&>();
    if (!Contains(kTypes, s)) {
      return Error(where, "unknown type \"" + s +
                              "\" (known: object, array, string, integer, number, boolean, "
                              "null)");
    }
    for (const std::string& t : types) {
      if (t == s) return Error(where, "type \"" + s + "\" is listed twice");
    }
    types.push_back(s);
    return OkStatus();
  };
  if (type->is_string()) {
    AGENTRY_RETURN_IF_ERROR(add(*type, type_path));
  } else if (type->is_array() && !type->empty()) {
    for (size_t i = 0; i < type->size(); ++i) {
      AGENTRY_RETURN_IF_ERROR(add((*type)[i], Index(type_path, i)));
    }
  } else {
    return Error(type_path, "must be a type name or a non-empty array of type names");
  }
  return types;
}

// The enum or const values as literals. Each must satisfy `rest` (the grammar of the other
// keywords) when there is one: a value the schema's type excludes is an author's mistake.
StatusOr<Grammar> SchemaCompiler::CompileValues(const json& schema, const std::string& path,
                                                const Grammar* rest) {
  const json* enum_values = Find(schema, "enum");
  const json* const_value = Find(schema, "const");
  std::vector<std::pair<const json*, std::string>> values;  // value, its path
  if (const_value != nullptr) {
    if (enum_values != nullptr) {
      bool listed = false;
      for (const json& v : *enum_values) listed = listed || v == *const_value;
      if (!listed) return Error(Join(path, "const"), "value is not in enum");
    }
    values.emplace_back(const_value, Join(path, "const"));
  } else {
    for (size_t i = 0; i < enum_values->size(); ++i) {
      values.emplace_back(&(*enum_values)[i], Index(Join(path, "enum"), i));
    }
  }
  std::vector<std::string> texts;
  for (const auto& [value, where] : values) {
    AGENTRY_RETURN_IF_ERROR(Charge(where));
    if (!DepthAtMost(*value, kMaxSchemaDepth)) {
      return Error(where, "value nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    }
    std::string text;
    try {
      text = value->dump();
    } catch (const json::exception&) {
      return Error(where, "value holds a string that is not valid UTF-8");
    }
    if (rest != nullptr) {
      Matcher m(*rest);
      if (!m.AdvanceAll(text) || !m.IsComplete()) {
        return Error(where, "value does not satisfy the schema's other keywords");
      }
    }
    texts.push_back(std::move(text));
  }
  return Grammar::LiteralSet(std::move(texts));
}

StatusOr<Grammar> SchemaCompiler::Compile(const json& schema, const std::string& path, int depth) {
  if (depth > kMaxSchemaDepth) {
    return Error(path, "schema nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
  }
  AGENTRY_RETURN_IF_ERROR(Charge(path));
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return Grammar::JsonAny();
    return Error(path, "schema false allows no value");
  }
  if (!schema.is_object()) return Error(path, "schema must be an object or a boolean");
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    if (!Contains(kKeywords, it.key()) && !Contains(kAnnotations, it.key())) {
      return Error(Join(path, it.key()), "unsupported keyword");
    }
  }
  if (schema.contains("anyOf")) return CompileAlternatives(schema, "anyOf", path, depth);
  if (schema.contains("oneOf")) return CompileAlternatives(schema, "oneOf", path, depth);

  AGENTRY_ASSIGN_OR_RETURN(std::vector<std::string> types, ReadTypes(schema, path));

  // Object keywords. Subschemas are compiled (so checked) whatever the type.
  const json* properties = Find(schema, "properties");
  const json* required = Find(schema, "required");
  const json* additional = Find(schema, "additionalProperties");
  const std::string properties_path = Join(path, "properties");
  if (properties != nullptr && !properties->is_object()) {
    return Error(properties_path, "must be an object mapping property names to schemas");
  }
  std::set<std::string> required_names;
  if (required != nullptr) {
    const std::string required_path = Join(path, "required");
    if (!required->is_array()) return Error(required_path, "must be an array of property names");
    for (size_t i = 0; i < required->size(); ++i) {
      const json& name = (*required)[i];
      if (!name.is_string()) return Error(Index(required_path, i), "must be a property name");
      const std::string& s = name.get_ref<const std::string&>();
      if (properties == nullptr || !properties->contains(s)) {
        return Error(Index(required_path, i), "\"" + s + "\" is not in properties");
      }
      required_names.insert(s);
    }
  }
  if (additional != nullptr && !(additional->is_boolean() && !additional->get<bool>())) {
    return Error(Join(path, "additionalProperties"),
                 "unsupported value (only false is supported: no other properties)");
  }
  std::vector<JsonProperty> members;
  if (properties != nullptr) {
    for (auto it = properties->begin(); it != properties->end(); ++it) {
      const std::string property_path = Join(properties_path, it.key());
      const bool is_required = required_names.count(it.key()) != 0;
      try {
        (void)json(it.key()).dump();
      } catch (const json::exception&) {
        return Error(property_path, "property name is not valid UTF-8");
      }
      if (it->is_boolean() && !it->get<bool>()) {
        // A property that may not appear: fine unless it is required.
        if (is_required) return Error(property_path, "schema false, but the property is required");
        AGENTRY_RETURN_IF_ERROR(Charge(property_path));
        continue;
      }
      AGENTRY_ASSIGN_OR_RETURN(Grammar value, Compile(*it, property_path, depth + 1));
      members.push_back(JsonProperty{it.key(), std::move(value), is_required});
    }
  }

  // Array keywords.
  const json* items = Find(schema, "items");
  const std::string items_path = Join(path, "items");
  Grammar item = Grammar::JsonAny();
  bool items_false = false;
  if (items != nullptr) {
    if (items->is_boolean() && !items->get<bool>()) {
      items_false = true;
    } else if (items->is_object() || items->is_boolean()) {
      AGENTRY_ASSIGN_OR_RETURN(item, Compile(*items, items_path, depth + 1));
    } else {
      return Error(items_path, "must be a schema (an object or a boolean)");
    }
  }
  uint32_t bounds[4] = {0, kUnbounded, 0, kUnbounded};  // minItems, maxItems, minLength, ...
  const char* bound_names[4] = {"minItems", "maxItems", "minLength", "maxLength"};
  for (int k = 0; k < 4; ++k) {
    if (const json* v = Find(schema, bound_names[k]); v != nullptr) {
      AGENTRY_ASSIGN_OR_RETURN(bounds[k], ReadCount(*v, Join(path, bound_names[k])));
    }
  }
  for (int k = 0; k < 4; k += 2) {
    if (bounds[k] > bounds[k + 1]) {
      return Error(Join(path, bound_names[k]),
                   "is greater than " + std::string(bound_names[k + 1]) + " (" +
                       std::to_string(bounds[k]) + " > " + std::to_string(bounds[k + 1]) + ")");
    }
  }
  if (items_false) {
    if (bounds[0] > 0) {
      return Error(Join(path, "minItems"), "must be 0 when items is false (no item is allowed)");
    }
    bounds[1] = 0;
  }

  const json* enum_values = Find(schema, "enum");
  if (enum_values != nullptr && (!enum_values->is_array() || enum_values->empty())) {
    return Error(Join(path, "enum"), "must be a non-empty array");
  }

  if (types.empty()) {
    auto has = [&schema](std::initializer_list<const char*> keys) {
      for (const char* key : keys) {
        if (schema.contains(key)) return true;
      }
      return false;
    };
    if (has({"properties", "required", "additionalProperties"})) types.emplace_back("object");
    if (has({"items", "minItems", "maxItems"})) types.emplace_back("array");
    if (has({"minLength", "maxLength"})) types.emplace_back("string");
  }
  std::vector<Grammar> branches;
  for (const std::string& type : types) {
    if (type == "object") {
      branches.push_back(Grammar::JsonObject(members));
    } else if (type == "array") {
      branches.push_back(Grammar::JsonArray(item, bounds[0], bounds[1]));
    } else if (type == "string") {
      branches.push_back(Grammar::JsonString(bounds[2], bounds[3]));
    } else if (type == "integer") {
      branches.push_back(Grammar::JsonInteger());
    } else if (type == "number") {
      branches.push_back(Grammar::JsonNumber());
    } else if (type == "boolean") {
      branches.push_back(Grammar::JsonBoolean());
    } else {
      branches.push_back(Grammar::JsonNull());
    }
  }
  const bool constrained = !branches.empty();
  Grammar rest = constrained ? Grammar::Choice(std::move(branches)) : Grammar::JsonAny();
  if (enum_values != nullptr || schema.contains("const")) {
    return CompileValues(schema, path, constrained ? &rest : nullptr);
  }
  return rest;
}

}  // namespace

StatusOr<Grammar> CompileJsonSchema(const nlohmann::json& schema, std::string_view path) {
  SchemaCompiler compiler;
  return compiler.Compile(schema, std::string(path), 0);
}

}  // namespace agentry::constrain
