// nodeagent/constrain/tests/test_support.h — helpers shared by the constrain tests: where a
// matcher refuses a text, a random walk that picks uniformly among the allowed bytes, and a
// small JSON Schema validator for the keywords json_schema.h supports (the independent check
// that what the grammar lets through really satisfies the schema).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodeagent/constrain/grammar.h"
#include "nodeagent/constrain/matcher.h"

namespace agentry::constrain::test_support {

// kAccepted when `text` is a whole match of `g`; kIncomplete when every byte is accepted but
// more must follow; otherwise the offset of the first byte that cannot come next.
inline constexpr int kAccepted = -1;
inline constexpr int kIncomplete = -2;
inline int RejectAt(const Grammar& g, std::string_view text) {
  Matcher m(g);
  for (size_t i = 0; i < text.size(); ++i) {
    if (!m.Advance(static_cast<unsigned char>(text[i]))) return static_cast<int>(i);
  }
  return m.IsComplete() ? kAccepted : kIncomplete;
}

// A random text of `g`: each step picks uniformly among the bytes that may come next and,
// when the text is already whole, stopping. Fails the walk (returns false) if it has not
// ended after `max_bytes` or reaches a state with no way on (a dead end).
inline bool RandomWalk(const Grammar& g, std::mt19937_64* rng, size_t max_bytes,
                       std::string* text) {
  Matcher m(g);
  text->clear();
  Matcher next = m;  // assigned, not constructed, in the loop: its buffers are reused
  std::vector<int> options;
  while (text->size() <= max_bytes) {
    options.clear();
    for (int c = 0; c < 256; ++c) {
      next = m;
      if (next.Advance(static_cast<unsigned char>(c))) options.push_back(c);
    }
    if (m.CanContinue() != !options.empty()) return false;  // CanContinue must agree
    if (m.IsComplete()) options.push_back(-1);
    if (options.empty()) return false;
    const int pick = options[std::uniform_int_distribution<size_t>(0, options.size() - 1)(*rng)];
    if (pick < 0) return true;
    if (!m.Advance(static_cast<unsigned char>(pick))) return false;
    text->push_back(static_cast<char>(pick));
  }
  return false;
}

// Code points of a valid UTF-8 string.
inline size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

inline bool HasType(const nlohmann::json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  return false;
}

// Whether `v` satisfies `schema` under the supported keywords, with Agentry's reading that
// an object has no properties but the listed ones. `why` gets the first failure.
inline bool Satisfies(const nlohmann::json& v, const nlohmann::json& schema, std::string* why) {
  auto fail = [why](const std::string& reason) {
    *why = reason;
    return false;
  };
  if (schema.is_boolean()) return schema.get<bool>() || fail("false schema");
  if (schema.contains("anyOf") || schema.contains("oneOf")) {
    const bool one = schema.contains("oneOf");
    int matched = 0;
    std::string ignored;
    for (const auto& branch : schema[one ? "oneOf" : "anyOf"]) {
      matched += Satisfies(v, branch, &ignored);
    }
    if (one ? matched != 1 : matched == 0) return fail("anyOf/oneOf: " + v.dump());
    return true;
  }
  if (schema.contains("const") && v != schema["const"]) return fail("const: " + v.dump());
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == v;
    if (!found) return fail("enum: " + v.dump());
  }
  if (schema.contains("type")) {
    const nlohmann::json& t = schema["type"];
    bool ok = false;
    if (t.is_string()) ok = HasType(v, t.get<std::string>());
    for (const auto& name : t.is_array() ? t : nlohmann::json::array()) {
      ok = ok || HasType(v, name.get<std::string>());
    }
    if (!ok) return fail("type: " + v.dump());
  }
  // Agentry's reading: a schema that constrains objects at all allows only its properties.
  const bool object_schema = schema.contains("type") || schema.contains("properties") ||
                             schema.contains("required") || schema.contains("additionalProperties");
  if (v.is_object() && object_schema) {
    const nlohmann::json props = schema.value("properties", nlohmann::json::object());
    for (const auto& [key, value] : v.items()) {
      if (!props.contains(key)) return fail("additional property " + key);
      if (!Satisfies(value, props[key], why)) return false;
    }
    for (const auto& name : schema.value("required", nlohmann::json::array())) {
      if (!v.contains(name.get<std::string>())) return fail("required " + name.dump());
    }
  }
  if (v.is_array()) {
    if (v.size() < schema.value("minItems", size_t{0})) return fail("minItems");
    if (v.size() > schema.value("maxItems", SIZE_MAX)) return fail("maxItems");
    if (schema.contains("items")) {
      for (const auto& item : v) {
        if (!Satisfies(item, schema["items"], why)) return false;
      }
    }
  }
  if (v.is_string()) {
    const size_t n = CodePoints(v.get<std::string>());
    if (n < schema.value("minLength", size_t{0})) return fail("minLength: " + v.dump());
    if (n > schema.value("maxLength", SIZE_MAX)) return fail("maxLength: " + v.dump());
  }
  return true;
}

}  // namespace agentry::constrain::test_support
