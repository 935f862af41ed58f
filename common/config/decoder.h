// common/config/decoder.h — decode YAML into typed structs with field-path errors.
//
// Every error names the field path and the reason, plus the line and column in the source:
//   spec.sessions.maxTurns: must be a positive integer, got 0 (line 14, column 15)
// Decoding goes on after an error so that one run reports every problem in a manifest.
// Unknown fields are errors too (as kubectl's strict decoding does), because a misspelt
// field silently ignored is a setting the user believes in and does not have.
//
//   Errors errors;
//   ObjectDecoder spec(root["spec"], "spec", &errors);
//   spec.Required("replicas", &out.replicas, NonNegative<int64_t>());
//   spec.Optional("sessions", &out.sessions);       // a struct with its own DecodeValue
//   spec.RejectUnknownFields();
//   if (!errors.empty()) return errors.ToStatus();
//
// Scalar rules follow YAML 1.2's core schema as Kubernetes reads it: integers and booleans
// must be plain scalars ("5" in quotes is a string, not a number), booleans are true/false.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace agentry::config {

struct FieldError {
  std::string path;
  std::string reason;
  int line = -1;    // 1-based; -1 when unknown
  int column = -1;  // 1-based
  std::string ToString() const;
};

class Errors {
 public:
  void Add(std::string path, std::string reason, const YAML::Mark& mark);
  bool empty() const { return errors_.empty(); }
  const std::vector<FieldError>& list() const { return errors_; }
  // InvalidArgument with one error per line; OK when there are none.
  Status ToStatus() const;

 private:
  std::vector<FieldError> errors_;
};

// A duration in Go's syntax, as Kubernetes uses: "300ms", "30s", "15m", "2h", "1h30m".
using Duration = std::chrono::milliseconds;
StatusOr<Duration> ParseDuration(std::string_view text);
std::string FormatDuration(Duration d);

// A Kubernetes resource quantity ("1Gi", "500M", "128974848", "1.5Gi"), kept with its text.
struct Quantity {
  int64_t value = 0;  // in base units (bytes for memory), rounded up
  std::string text;
};
StatusOr<Quantity> ParseQuantity(std::string_view text);

// A validation rule: returns "" when the value is fine, else the reason.
template <typename T>
using Rule = std::function<std::string(const T&)>;

template <typename T>
Rule<T> Positive() {
  return [](const T& v) {
    if constexpr (std::is_same_v<T, Duration>) {
      return v.count() > 0 ? std::string() : "must be a positive duration";
    } else {
      return v > 0 ? std::string() : "must be a positive integer, got " + std::to_string(v);
    }
  };
}
template <typename T>
Rule<T> NonNegative() {
  return [](const T& v) {
    return v >= 0 ? std::string() : "must be zero or more, got " + std::to_string(v);
  };
}
template <typename T>
Rule<T> InRange(T lo, T hi) {
  return [lo, hi](const T& v) {
    if (v >= lo && v <= hi) return std::string();
    return "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
           std::to_string(v);
  };
}
Rule<std::string> NonEmpty();
Rule<std::string> OneOf(std::vector<std::string> allowed);
// RFC 1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric, ≤ 63.
Rule<std::string> DnsLabel();

// Path of a map key or list index below `path`.
std::string JoinPath(const std::string& path, std::string_view key);
std::string IndexPath(const std::string& path, size_t index);

// Decoders for one value. Each returns false (after recording an error) when the node cannot
// be decoded; `*out` is then unchanged. User structs add an overload of the same shape in
// their own namespace (found by argument-dependent lookup).
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, std::string* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, bool* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, int64_t* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, double* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, Duration* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, Quantity* out);
// Any YAML (for JSON-schema blocks); YAML-only constructs (non-string keys) are errors.
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 nlohmann::json* out);
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 std::map<std::string, std::string>* out);

template <typename T>
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 std::vector<T>* out) {
  if (!node.IsSequence()) {
    errors->Add(path, "must be a list", node.Mark());
    return false;
  }
  std::vector<T> items(node.size());
  bool ok = true;
  for (size_t i = 0; i < node.size(); ++i) {
    ok = DecodeValue(node[i], IndexPath(path, i), errors, &items[i]) && ok;
  }
  if (ok) *out = std::move(items);
  return ok;
}

template <typename T>
bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 std::optional<T>* out) {
  T value{};
  if (!DecodeValue(node, path, errors, &value)) return false;
  *out = std::move(value);
  return true;
}

// Reads the fields of one YAML mapping, remembering which were read.
class ObjectDecoder {
 public:
  // A null or absent node decodes as an empty object; anything else that is not a
  // mapping is an error ("must be an object") and every read then finds nothing.
  ObjectDecoder(const YAML::Node& node, std::string path, Errors* errors);

  bool Has(std::string_view key) const;
  std::string FieldPath(std::string_view key) const { return JoinPath(path_, key); }
  // Records an error at `path.key` (for rules that involve several fields).
  void Error(std::string_view key, std::string reason);

  template <typename T>
  bool Required(std::string_view key, T* out, Rule<T> rule = nullptr) {
    if (!Has(key)) {
      if (valid_) Error(key, "required field is missing");
      Mark(key);
      return false;
    }
    return Optional(key, out, std::move(rule));
  }

  // Absent or null: `*out` keeps its default and this returns true.
  template <typename T>
  bool Optional(std::string_view key, T* out, Rule<T> rule = nullptr) {
    Mark(key);
    if (!Has(key)) return true;
    const YAML::Node child = Child(key);
    T value = *out;
    if (!DecodeValue(child, FieldPath(key), errors_, &value)) return false;
    if (rule) {
      std::string reason = rule(value);
      if (!reason.empty()) {
        errors_->Add(FieldPath(key), std::move(reason), child.Mark());
        return false;
      }
    }
    *out = std::move(value);
    return true;
  }

  // A decoder for the object at `key` (absent or null: an empty object); marks `key` read.
  ObjectDecoder Nested(std::string_view key);
  // Marks `key` as read without decoding it (fields owned by someone else, like status).
  void Ignore(std::string_view key) { Mark(key); }

  // Fields this decoder never read and repeated keys become errors. Call once, last.
  void RejectUnknownFields();
  // RejectUnknownFields(), then whether no error was recorded since this decoder was made
  // (by it, by nested decoders, or by the caller): what a struct's DecodeValue returns.
  bool Finish();
  // Marks every field as read (for objects where unknown fields are allowed, e.g. metadata).
  void AllowUnknownFields() { allow_unknown_ = true; }

  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node Child(std::string_view key) const;
  void Mark(std::string_view key) { read_.emplace(key); }

  YAML::Node node_;
  std::string path_;
  Errors* errors_;
  size_t errors_at_start_;
  bool valid_ = true;
  bool allow_unknown_ = false;
  std::set<std::string, std::less<>> read_;
};

// Parses YAML text; syntax errors name the source and the line and column.
StatusOr<YAML::Node> ParseYaml(std::string_view text, std::string_view source);
// Every document of a multi-document stream ("---" separated), empty ones dropped.
StatusOr<std::vector<YAML::Node>> ParseYamlDocuments(std::string_view text,
                                                     std::string_view source);

}  // namespace agentry::config
