// crds/tests/openapi_schema.cc — see openapi_schema.h.
#include "crds/tests/openapi_schema.h"

#include <regex>

namespace agentry::crds {
namespace {

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

bool IsInteger(const YAML::Node& v) {
  if (!v.IsScalar() || v.Tag() == "!") return false;  // a quoted scalar is a string
  try {
    (void)v.as<int64_t>();
    return true;
  } catch (const YAML::Exception&) {
    return false;
  }
}

bool IsBoolean(const YAML::Node& v) {
  if (!v.IsScalar() || v.Tag() == "!") return false;
  const std::string s = v.Scalar();
  return s == "true" || s == "false";
}

}  // namespace

void ApplyDefaults(const YAML::Node& schema, YAML::Node value) {
  if (value.IsMap() && schema["properties"]) {
    for (const auto& property : schema["properties"]) {
      const std::string key = property.first.as<std::string>();
      const YAML::Node sub = property.second;
      if (!value[key] && sub["default"]) value[key] = YAML::Clone(sub["default"]);
      if (value[key]) ApplyDefaults(sub, value[key]);
    }
  }
  if (value.IsSequence() && schema["items"]) {
    for (YAML::Node item : value) ApplyDefaults(schema["items"], item);
  }
}

std::vector<std::string> Validate(const YAML::Node& schema, const YAML::Node& value,
                                  const std::string& path) {
  std::vector<std::string> errors;
  const auto fail = [&](const std::string& why) { errors.push_back(path + ": " + why); };
  const std::string type = schema["type"] ? schema["type"].as<std::string>() : "";
  const bool int_or_string = schema["x-kubernetes-int-or-string"].IsDefined();
  if (int_or_string) {
    if (!value.IsScalar()) fail("must be an integer or a string");
  } else if (type == "object") {
    if (!value.IsMap()) {
      fail("must be an object");
      return errors;
    }
  } else if (type == "array") {
    if (!value.IsSequence()) {
      fail("must be an array");
      return errors;
    }
  } else if (type == "integer") {
    if (!IsInteger(value)) fail("must be an integer");
  } else if (type == "boolean") {
    if (!IsBoolean(value)) fail("must be a boolean");
  } else if (type == "string") {
    if (!value.IsScalar()) fail("must be a string");
  }
  if (!errors.empty()) return errors;

  if (value.IsScalar()) {
    const std::string text = value.Scalar();
    if (schema["enum"]) {
      bool found = false;
      for (const auto& e : schema["enum"]) found = found || e.Scalar() == text;
      if (!found) fail("unsupported value \"" + text + "\"");
    }
    if (schema["pattern"] && (type == "string" || (int_or_string && !IsInteger(value))) &&
        !std::regex_search(text, std::regex(schema["pattern"].as<std::string>()))) {
      fail("\"" + text + "\" does not match " + schema["pattern"].as<std::string>());
    }
    if (schema["minLength"] && text.size() < schema["minLength"].as<size_t>()) fail("too short");
    if (schema["maxLength"] && text.size() > schema["maxLength"].as<size_t>()) fail("too long");
    if (type == "integer") {
      const int64_t n = value.as<int64_t>();
      if (schema["minimum"] && n < schema["minimum"].as<int64_t>()) fail("below the minimum");
      if (schema["maximum"] && n > schema["maximum"].as<int64_t>()) fail("above the maximum");
    }
  }
  if (value.IsSequence()) {
    if (schema["maxItems"] && value.size() > schema["maxItems"].as<size_t>()) {
      fail("too many items");
    }
    for (size_t i = 0; i < value.size(); ++i) {
      for (std::string& e :
           Validate(schema["items"], value[i], path + "[" + std::to_string(i) + "]")) {
        errors.push_back(std::move(e));
      }
    }
  }
  if (value.IsMap() && !schema["x-kubernetes-preserve-unknown-fields"]) {
    for (const auto& required : schema["required"]) {
      if (!value[required.as<std::string>()]) {
        fail("required field \"" + required.as<std::string>() + "\" is missing");
      }
    }
    for (const auto& field : value) {
      const std::string key = field.first.as<std::string>();
      const YAML::Node sub = schema["properties"] ? schema["properties"][key] : YAML::Node();
      if (!sub) {
        // metadata's own schema is the API server's, not the CRD's.
        if (!schema["properties"] || !schema["properties"].size()) continue;
        errors.push_back(Join(path, key) + ": unknown field");
        continue;
      }
      for (std::string& e : Validate(sub, field.second, Join(path, key))) {
        errors.push_back(std::move(e));
      }
    }
  }
  return errors;
}

std::vector<std::string> PropertyPaths(const YAML::Node& schema, const std::string& path) {
  std::vector<std::string> out;
  if (schema["properties"]) {
    for (const auto& property : schema["properties"]) {
      const std::string sub = Join(path, property.first.as<std::string>());
      out.push_back(sub);
      for (std::string& p : PropertyPaths(property.second, sub)) out.push_back(std::move(p));
    }
  }
  if (schema["items"]) {
    for (std::string& p : PropertyPaths(schema["items"], path + "[]")) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace agentry::crds
