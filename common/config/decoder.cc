#include "common/config/decoder.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include <yaml-cpp/eventhandler.h>

namespace agentry::config {
namespace {

// yaml-cpp tags a quoted scalar "!" and a plain one "?" (or with an explicit tag).
bool IsPlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() != "!"; }

std::string Quote(const std::string& s) {
  constexpr size_t kMax = 40;
  return "\"" + (s.size() > kMax ? s.substr(0, kMax) + "..." : s) + "\"";
}

std::string Describe(const YAML::Node& node) {
  if (node.IsMap()) return "an object";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "null";
  return Quote(node.Scalar());
}

// Checked multiply/add for int64 parsing of quantities and durations.
bool MulAdd(int64_t a, int64_t mul, int64_t add, int64_t* out) {
  int64_t m = 0;
  if (__builtin_mul_overflow(a, mul, &m)) return false;
  return !__builtin_add_overflow(m, add, out);
}

}  // namespace

std::string FieldError::ToString() const {
  std::string out = path.empty() ? "(document)" : path;
  out += ": ";
  out += reason;
  if (line > 0)
    out += " (line " + std::to_string(line) + ", column " + std::to_string(column) + ")";
  return out;
}

void Errors::Add(std::string path, std::string reason, const YAML::Mark& mark) {
  FieldError e;
  e.path = std::move(path);
  e.reason = std::move(reason);
  if (!mark.is_null()) {
    e.line = mark.line + 1;
    e.column = mark.column + 1;
  }
  errors_.push_back(std::move(e));
}

Status Errors::ToStatus() const {
  if (errors_.empty()) return OkStatus();
  std::string message;
  for (const FieldError& e : errors_) {
    if (!message.empty()) message += "\n";
    message += e.ToString();
  }
  return InvalidArgumentError(std::move(message));
}

StatusOr<Duration> ParseDuration(std::string_view text) {
  const std::string bad =
      "must be a duration such as 30s, 15m or 1h30m, got \"" + std::string(text) + "\"";
  if (text.empty()) return InvalidArgumentError(bad);
  if (text == "0") return Duration(0);
  int64_t total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t num_start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == num_start) return InvalidArgumentError(bad);
    int64_t number = 0;
    auto [ptr, ec] = std::from_chars(text.data() + num_start, text.data() + i, number);
    if (ec != std::errc()) return InvalidArgumentError(bad);
    const size_t unit_start = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z'))) ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    int64_t ms_per_unit = 0;
    if (unit == "ms") {
      ms_per_unit = 1;
    } else if (unit == "s") {
      ms_per_unit = 1000;
    } else if (unit == "m") {
      ms_per_unit = int64_t{60} * 1000;
    } else if (unit == "h") {
      ms_per_unit = int64_t{3600} * 1000;
    } else {
      return InvalidArgumentError(bad);
    }
    if (!MulAdd(number, ms_per_unit, total_ms, &total_ms)) {
      return InvalidArgumentError("duration \"" + std::string(text) + "\" is too large");
    }
  }
  return Duration(total_ms);
}

std::string FormatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const int64_t h = ms / 3600000;
  const int64_t m = (ms / 60000) % 60;
  const int64_t s = (ms / 1000) % 60;
  const int64_t rest = ms % 1000;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (s) out += std::to_string(s) + "s";
  if (rest) out += std::to_string(rest) + "ms";
  return out;
}

StatusOr<Quantity> ParseQuantity(std::string_view text) {
  const std::string bad =
      "must be a quantity such as 512Mi, 1Gi or 1000000, got \"" + std::string(text) + "\"";
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  const std::string_view number = text.substr(0, i);
  const std::string_view suffix = text.substr(i);
  if (number.empty() || number.front() == '.' || number.back() == '.' ||
      number.find('.') != number.rfind('.')) {
    return InvalidArgumentError(bad);
  }
  static const std::map<std::string_view, int64_t> kMultipliers = {
      {"", 1},
      {"k", 1000},
      {"M", 1000000},
      {"G", 1000000000},
      {"T", 1000000000000},
      {"P", 1000000000000000},
      {"Ki", int64_t{1} << 10},
      {"Mi", int64_t{1} << 20},
      {"Gi", int64_t{1} << 30},
      {"Ti", int64_t{1} << 40},
      {"Pi", int64_t{1} << 50},
  };
  auto it = kMultipliers.find(suffix);
  if (it == kMultipliers.end()) return InvalidArgumentError(bad);
  // Integer and fraction parts separately, so "1.5Gi" is exact and nothing goes through a
  // lossy double.
  const size_t dot = number.find('.');
  const std::string_view int_part = number.substr(0, dot);
  const std::string_view frac_part =
      dot == std::string_view::npos ? std::string_view() : number.substr(dot + 1);
  const std::string too_large = "quantity \"" + std::string(text) + "\" is too large";
  int64_t whole = 0;
  for (char c : int_part) {
    if (!MulAdd(whole, 10, c - '0', &whole)) return InvalidArgumentError(too_large);
  }
  int64_t value = 0;
  if (!MulAdd(whole, it->second, 0, &value)) return InvalidArgumentError(too_large);
  // Fraction: digits / 10^n * multiplier, rounded up (Kubernetes rounds quantities up).
  int64_t frac_value = 0;
  int64_t scale = 1;
  for (char c : frac_part) {
    if (scale > std::numeric_limits<int64_t>::max() / 10) break;  // beyond precision
    frac_value = frac_value * 10 + (c - '0');
    scale *= 10;
  }
  if (frac_value > 0) {
    // ceil(frac_value * multiplier / scale), computed without overflow in 128 bits.
    const __int128 num = static_cast<__int128>(frac_value) * it->second;
    const __int128 add = (num + scale - 1) / scale;
    if (static_cast<__int128>(value) + add > std::numeric_limits<int64_t>::max()) {
      return InvalidArgumentError(too_large);
    }
    value += static_cast<int64_t>(add);
  }
  return Quantity{value, std::string(text)};
}

Rule<std::string> NonEmpty() {
  return [](const std::string& v) { return v.empty() ? "must not be empty" : std::string(); };
}

Rule<std::string> OneOf(std::vector<std::string> allowed) {
  return [allowed = std::move(allowed)](const std::string& v) {
    for (const std::string& a : allowed) {
      if (a == v) return std::string();
    }
    std::string list;
    for (size_t i = 0; i < allowed.size(); ++i) {
      list += (i == 0 ? "" : (i + 1 == allowed.size() ? " or " : ", ")) + allowed[i];
    }
    return "must be one of " + list + ", got " + Quote(v);
  };
}

Rule<std::string> DnsLabel() {
  return [](const std::string& v) {
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    bool ok = !v.empty() && v.size() <= 63 && alnum(v.front()) && alnum(v.back());
    for (char c : v) ok = ok && (alnum(c) || c == '-');
    return ok ? std::string()
              : "must be a DNS label (lower-case letters, digits and '-', starting and ending "
                "with a letter or digit, at most 63 characters), got " +
                    Quote(v);
  };
}

std::string JoinPath(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return path + "." + std::string(key);
}

std::string IndexPath(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 std::string* out) {
  if (!node.IsScalar()) {
    errors->Add(path, "must be a string, got " + Describe(node), node.Mark());
    return false;
  }
  *out = node.Scalar();
  return true;
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, bool* out) {
  if (IsPlainScalar(node)) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
      *out = true;
      return true;
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      *out = false;
      return true;
    }
  }
  errors->Add(path, "must be true or false, got " + Describe(node), node.Mark());
  return false;
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, int64_t* out) {
  if (IsPlainScalar(node)) {
    const std::string& s = node.Scalar();
    int64_t value = 0;
    const char* begin = s.data() + (s.size() > 1 && s[0] == '+' ? 1 : 0);
    auto [ptr, ec] = std::from_chars(begin, s.data() + s.size(), value);
    if (ec == std::errc() && ptr == s.data() + s.size() && !s.empty()) {
      *out = value;
      return true;
    }
    if (ec == std::errc::result_out_of_range) {
      errors->Add(path, "integer out of range, got " + Quote(s), node.Mark());
      return false;
    }
  }
  errors->Add(path, "must be an integer, got " + Describe(node), node.Mark());
  return false;
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, double* out) {
  if (IsPlainScalar(node)) {
    const std::string& s = node.Scalar();
    double value = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec == std::errc() && ptr == s.data() + s.size() && !s.empty() && std::isfinite(value)) {
      *out = value;
      return true;
    }
  }
  errors->Add(path, "must be a number, got " + Describe(node), node.Mark());
  return false;
}

namespace {

// A scalar parsed by `parse` (whose error message becomes the field's reason); `expected`
// describes the wanted form when the node is not a scalar at all.
template <typename T>
bool DecodeParsedScalar(const YAML::Node& node, const std::string& path, Errors* errors,
                        StatusOr<T> (*parse)(std::string_view), const char* expected, T* out) {
  if (!node.IsScalar()) {
    errors->Add(path, std::string("must be ") + expected + ", got " + Describe(node), node.Mark());
    return false;
  }
  StatusOr<T> value = parse(node.Scalar());
  if (!value.ok()) {
    errors->Add(path, value.status().message(), node.Mark());
    return false;
  }
  *out = std::move(value).value();
  return true;
}

}  // namespace

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, Duration* out) {
  return DecodeParsedScalar(node, path, errors, &ParseDuration,
                            "a duration such as 30s, 15m or 1h30m", out);
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors, Quantity* out) {
  return DecodeParsedScalar(node, path, errors, &ParseQuantity, "a quantity such as 512Mi or 1Gi",
                            out);
}

namespace {

// YAML aliases let a few bytes name an exponential tree ("billion laughs"); converting to a
// JSON DOM would expand it. Both limits are far above any real JSON schema.
constexpr size_t kMaxJsonValues = 100000;
constexpr int kMaxJsonDepth = 64;

bool DecodeJson(const YAML::Node& node, const std::string& path, Errors* errors, int depth,
                size_t* budget, nlohmann::json* out) {
  if (*budget == 0) return false;  // reported once by the caller
  --*budget;
  if (depth > kMaxJsonDepth) {
    errors->Add(path, "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels",
                node.Mark());
    return false;
  }
  if (node.IsNull() || !node.IsDefined()) {
    *out = nullptr;
    return true;
  }
  if (node.IsScalar()) {
    // Plain scalars keep their YAML type (number, bool, null); quoted ones are strings.
    const std::string& s = node.Scalar();
    if (IsPlainScalar(node)) {
      int64_t i = 0;
      double d = 0;
      bool b = false;
      Errors scratch;
      if (s == "null" || s == "~") {
        *out = nullptr;
      } else if (DecodeValue(node, path, &scratch, &i)) {
        *out = i;
      } else if (DecodeValue(node, path, &scratch, &d)) {
        *out = d;
      } else if (DecodeValue(node, path, &scratch, &b)) {
        *out = b;
      } else {
        *out = s;
      }
    } else {
      *out = s;
    }
    return true;
  }
  if (node.IsSequence()) {
    nlohmann::json arr = nlohmann::json::array();
    for (size_t i = 0; i < node.size(); ++i) {
      nlohmann::json item;
      if (!DecodeJson(node[i], IndexPath(path, i), errors, depth + 1, budget, &item)) {
        return false;
      }
      arr.push_back(std::move(item));
    }
    *out = std::move(arr);
    return true;
  }
  nlohmann::json obj = nlohmann::json::object();
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      errors->Add(path, "object keys must be strings", it->first.Mark());
      return false;
    }
    const std::string key = it->first.Scalar();
    nlohmann::json value;
    if (!DecodeJson(it->second, JoinPath(path, key), errors, depth + 1, budget, &value)) {
      return false;
    }
    obj[key] = std::move(value);
  }
  *out = std::move(obj);
  return true;
}

}  // namespace

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 nlohmann::json* out) {
  size_t budget = kMaxJsonValues;
  nlohmann::json value;
  const size_t errors_before = errors->list().size();
  if (DecodeJson(node, path, errors, 0, &budget, &value)) {
    *out = std::move(value);
    return true;
  }
  if (errors->list().size() == errors_before) {
    errors->Add(path, "too large (more than " + std::to_string(kMaxJsonValues) + " values)",
                node.Mark());
  }
  return false;
}

bool DecodeValue(const YAML::Node& node, const std::string& path, Errors* errors,
                 std::map<std::string, std::string>* out) {
  if (!node.IsMap()) {
    errors->Add(path, "must be an object of strings, got " + Describe(node), node.Mark());
    return false;
  }
  std::map<std::string, std::string> result;
  bool ok = true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      errors->Add(path, "keys must be strings", it->first.Mark());
      ok = false;
      continue;
    }
    std::string value;
    ok = DecodeValue(it->second, JoinPath(path, it->first.Scalar()), errors, &value) && ok;
    result[it->first.Scalar()] = std::move(value);
  }
  if (ok) *out = std::move(result);
  return ok;
}

ObjectDecoder::ObjectDecoder(const YAML::Node& node, std::string path, Errors* errors)
    : node_(node),
      path_(std::move(path)),
      errors_(errors),
      errors_at_start_(errors->list().size()) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    errors_->Add(path_, "must be an object, got " + Describe(node_), node_.Mark());
    valid_ = false;
  }
}

bool ObjectDecoder::Has(std::string_view key) const {
  if (!valid_ || !node_.IsMap()) return false;
  const YAML::Node child = Child(key);
  return child.IsDefined() && !child.IsNull();
}

YAML::Node ObjectDecoder::Child(std::string_view key) const { return node_[std::string(key)]; }

ObjectDecoder ObjectDecoder::Nested(std::string_view key) {
  Mark(key);
  return ObjectDecoder(Has(key) ? Child(key) : YAML::Node(), FieldPath(key), errors_);
}

void ObjectDecoder::Error(std::string_view key, std::string reason) {
  const YAML::Node child = Has(key) ? Child(key) : node_;
  errors_->Add(FieldPath(key), std::move(reason), child.Mark());
}

void ObjectDecoder::RejectUnknownFields() {
  if (!valid_ || !node_.IsMap()) return;
  std::set<std::string> seen;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (!it->first.IsScalar()) {
      errors_->Add(path_, "keys must be strings", it->first.Mark());
      continue;
    }
    const std::string& key = it->first.Scalar();
    if (!seen.insert(key).second) {
      errors_->Add(FieldPath(key), "field appears more than once", it->first.Mark());
    } else if (!allow_unknown_ && read_.find(key) == read_.end()) {
      errors_->Add(FieldPath(key), "unknown field", it->first.Mark());
    }
  }
}

bool ObjectDecoder::Finish() {
  RejectUnknownFields();
  return errors_->list().size() == errors_at_start_;
}

StatusOr<YAML::Node> ParseYaml(std::string_view text, std::string_view source) {
  AGENTRY_ASSIGN_OR_RETURN(std::vector<YAML::Node> docs, ParseYamlDocuments(text, source));
  if (docs.empty()) return InvalidArgumentError(std::string(source) + ": empty document");
  if (docs.size() > 1) {
    return InvalidArgumentError(std::string(source) + ": expected one YAML document, found " +
                                std::to_string(docs.size()));
  }
  return docs.front();
}

namespace {

// Counts documents without building nodes.
class DocumentCounter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// yaml-cpp 0.7 (Debian bookworm) loops forever, allocating an empty document each time,
// when a stream starts with a flow indicator such as "," (found by fuzz/manifest_fuzz).
// A first pass that only counts documents stops such a stream: no real stream has more
// documents than a third of its bytes ("---" each), so beyond that the parser is stuck.
Status CheckDocumentStreamTerminates(std::string_view text, std::string_view source) {
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentCounter counter;
  const size_t max_documents = text.size() / 3 + 2;
  size_t documents = 0;
  while (parser.HandleNextDocument(counter)) {
    if (++documents > max_documents) {
      return InvalidArgumentError(std::string(source) +
                                  ": invalid YAML: the parser makes no progress (a stray ',', "
                                  "'[' or '{' outside a flow collection?)");
    }
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::vector<YAML::Node>> ParseYamlDocuments(std::string_view text,
                                                     std::string_view source) {
  try {
    AGENTRY_RETURN_IF_ERROR(CheckDocumentStreamTerminates(text, source));
    std::vector<YAML::Node> all = YAML::LoadAll(std::string(text));
    std::vector<YAML::Node> out;
    for (YAML::Node& doc : all) {
      if (doc.IsDefined() && !doc.IsNull()) out.push_back(std::move(doc));
    }
    return out;
  } catch (const YAML::Exception& e) {
    std::string message = std::string(source) + ": invalid YAML";
    if (!e.mark.is_null()) {
      message += " at line " + std::to_string(e.mark.line + 1) + ", column " +
                 std::to_string(e.mark.column + 1);
    }
    return InvalidArgumentError(message + ": " + e.msg);
  }
}

}  // namespace agentry::config
