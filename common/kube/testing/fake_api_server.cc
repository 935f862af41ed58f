// common/kube/testing/fake_api_server.cc — see fake_api_server.h.
#include "common/kube/testing/fake_api_server.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <utility>

#include "common/http/server.h"
#include "common/metrics/registry.h"

namespace agentry::kube::testing {
namespace {

using Json = nlohmann::json;
using FieldPath = std::vector<std::string>;  // object keys from the root: {"spec","replicas"}
using FieldSet = std::set<FieldPath>;

constexpr const char* kApplyPatch = "application/apply-patch+yaml";
constexpr const char* kMergePatch = "application/merge-patch+json";
constexpr const char* kJsonPatch = "application/json-patch+json";
constexpr const char* kStrategicPatch = "application/strategic-merge-patch+json";

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// --- Errors: every one is a Kubernetes Status object ---

struct ApiError {
  int code = 500;
  std::string reason{};
  std::string message{};
  Json details{};  // null, or {"name","group","kind","causes"}
};

std::string ReasonFor(int code) {
  static const std::map<int, std::string> kReasons = {
      {400, "BadRequest"},      {401, "Unauthorized"},         {403, "Forbidden"},
      {404, "NotFound"},        {405, "MethodNotAllowed"},     {409, "Conflict"},
      {410, "Expired"},         {415, "UnsupportedMediaType"}, {422, "Invalid"},
      {429, "TooManyRequests"}, {500, "InternalError"},        {503, "ServiceUnavailable"},
      {504, "Timeout"}};
  auto it = kReasons.find(code);
  return it == kReasons.end() ? "" : it->second;
}

ApiError Error(int code, std::string message) {
  return ApiError{.code = code, .reason = ReasonFor(code), .message = std::move(message)};
}

Json StatusObject(const ApiError& e) {
  Json s = {{"kind", "Status"},    {"apiVersion", "v1"},   {"metadata", Json::object()},
            {"status", "Failure"}, {"message", e.message}, {"reason", e.reason},
            {"code", e.code}};
  if (!e.details.is_null()) s["details"] = e.details;
  return s;
}

http::HttpResponse ErrorResponse(const ApiError& e) {
  http::HttpResponse r = http::HttpResponse::Json(e.code, StatusObject(e));
  if (e.code == 429) r.headers.emplace_back("Retry-After", "1");
  return r;
}

// "statefulsets.apps", "configmaps": how the real server names a resource in messages.
std::string ResourceName(const ResourceKind& kind) {
  return kind.group.empty() ? kind.plural : kind.plural + "." + kind.group;
}

Json Details(const ResourceKind& kind, const std::string& name) {
  Json d = {{"kind", kind.plural}};
  if (!name.empty()) d["name"] = name;
  if (!kind.group.empty()) d["group"] = kind.group;
  return d;
}

ApiError NotFound(const ResourceKind& kind, const std::string& name) {
  ApiError e = Error(404, ResourceName(kind) + " \"" + name + "\" not found");
  e.details = Details(kind, name);
  return e;
}

ApiError Modified(const ResourceKind& kind, const std::string& name) {
  ApiError e = Error(409, "Operation cannot be fulfilled on " + ResourceName(kind) + " \"" + name +
                              "\": the object has been modified; please apply your changes to "
                              "the latest version and try again");
  e.details = Details(kind, name);
  return e;
}

// --- Small helpers ---

std::string Now() {
  const time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::optional<int64_t> ParseInt(const std::string& s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string Trim(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// The media type of the request body, lower-cased, without parameters.
std::string MediaType(const http::HttpRequest& req) {
  std::string type = req.Header("Content-Type");
  type = Trim(type.substr(0, type.find(';')));
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return type;
}

std::optional<ApiError> ParseBody(const http::HttpRequest& req, Json* out) {
  StatusOr<Json> body = req.JsonBody();
  if (!body.ok()) return Error(400, body.status().message());
  *out = std::move(*body);
  return std::nullopt;
}

std::optional<ApiError> UnsupportedMedia(const std::string& type, const std::string& accepted) {
  return Error(415, "the body of the request was in an unknown format (\"" + type +
                        "\") - accepted media types include: " + accepted);
}

// A lowercase RFC 1123 subdomain, as metadata.name must be.
bool IsDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return alnum(s.front()) && alnum(s.back());
}

// Checks what the real server's decoding and validation would refuse in metadata.
std::optional<ApiError> ValidateMetadata(const Json& object) {
  if (!object.is_object()) return Error(400, "the request body is not a JSON object");
  if (!object.contains("metadata")) return std::nullopt;
  const Json& m = object["metadata"];
  if (!m.is_object()) return Error(400, "metadata: must be an object");
  for (const char* map : {"labels", "annotations"}) {
    if (!m.contains(map) || m[map].is_null()) continue;
    if (!m[map].is_object()) return Error(400, std::string("metadata.") + map + ": not a map");
    for (const auto& [k, v] : m[map].items()) {
      if (!v.is_string()) {
        return Error(400, std::string("metadata.") + map + "." + k + ": value must be a string");
      }
    }
  }
  if (m.contains("finalizers") && !m["finalizers"].is_null()) {
    const Json& finalizers = m["finalizers"];
    const bool ok =
        finalizers.is_array() && std::all_of(finalizers.begin(), finalizers.end(),
                                             [](const Json& f) { return f.is_string(); });
    if (!ok) return Error(400, "metadata.finalizers: must be a list of strings");
  }
  if (m.contains("name") && !m["name"].is_string())
    return Error(400, "metadata.name: not a string");
  const std::string name = m.value("name", "");
  if (!name.empty() && !IsDnsSubdomain(name)) {
    return Error(422, "metadata.name: Invalid value: \"" + name +
                          "\": a lowercase RFC 1123 subdomain must consist of lower case "
                          "alphanumeric characters, '-' or '.', and must start and end with an "
                          "alphanumeric character");
  }
  return std::nullopt;
}

std::string MetaString(const Json& object, const char* field) {
  if (!object.is_object() || !object.contains("metadata")) return "";
  const Json& m = object["metadata"];
  if (!m.is_object() || !m.contains(field) || !m[field].is_string()) return "";
  return m[field].get<std::string>();
}

bool HasFinalizers(const Json& object) {
  const Json& m = object["metadata"];
  return m.contains("finalizers") && m["finalizers"].is_array() && !m["finalizers"].empty();
}

// Metadata the server owns: clients cannot set it through writes, and it is no field of any
// field manager.
bool IsSystemMetadata(const std::string& key) {
  static const std::set<std::string> kSystem = {"name",
                                                "namespace",
                                                "uid",
                                                "resourceVersion",
                                                "generation",
                                                "creationTimestamp",
                                                "managedFields",
                                                "deletionTimestamp",
                                                "deletionGracePeriodSeconds",
                                                "selfLink"};
  return kSystem.count(key) != 0;
}

void EraseSystemMetadata(Json* meta, bool keep_name) {
  for (auto it = meta->begin(); it != meta->end();) {
    const bool drop = IsSystemMetadata(it.key()) && !(keep_name && it.key() == "name");
    it = drop ? meta->erase(it) : std::next(it);
  }
}

// --- Field paths and scopes (the simplified structured merge) ---

// Which part of an object a write may change: the whole object (kinds without a status
// subresource), all but .status (the main resource of a kind with one), or only .status.
enum class Scope { kWhole, kMain, kStatus };

Scope ScopeFor(const ResourceKind& kind, const std::string& subresource) {
  if (subresource == "status") return Scope::kStatus;
  return kind.has_status ? Scope::kMain : Scope::kWhole;
}

bool InScope(const std::string& top_key, Scope scope) {
  if (top_key == "apiVersion" || top_key == "kind") return false;
  if (top_key == "status") return scope != Scope::kMain;
  return scope != Scope::kStatus;
}

void CollectLeaves(const Json& value, FieldPath* path, FieldSet* out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, child] : value.items()) {
      path->push_back(key);
      CollectLeaves(child, path, out);
      path->pop_back();
    }
    return;
  }
  out->insert(*path);  // scalars, lists (atomic), empty objects
}

// The field paths a manager would own for `object` within `scope`.
FieldSet OwnedLeaves(const Json& object, Scope scope) {
  FieldSet out;
  FieldPath path;
  for (const auto& [key, value] : object.items()) {
    if (!InScope(key, scope)) continue;
    path.push_back(key);
    if (key == "metadata" && value.is_object()) {
      for (const auto& [mk, mv] : value.items()) {
        if (IsSystemMetadata(mk)) continue;
        path.push_back(mk);
        CollectLeaves(mv, &path, &out);
        path.pop_back();
      }
    } else if (key != "metadata") {
      CollectLeaves(value, &path, &out);
    }
    path.pop_back();
  }
  return out;
}

// The part of `patch` a write in `scope` may set (no apiVersion/kind, no system metadata).
Json Restrict(const Json& patch, Scope scope) {
  Json out = Json::object();
  for (const auto& [key, value] : patch.items()) {
    if (!InScope(key, scope)) continue;
    if (key == "metadata" && value.is_object()) {
      Json m = Json::object();
      for (const auto& [mk, mv] : value.items()) {
        if (!IsSystemMetadata(mk)) m[mk] = mv;
      }
      out[key] = std::move(m);
    } else if (key != "metadata") {
      out[key] = value;
    }
  }
  return out;
}

// Objects merge key by key; anything else replaces.
void DeepMerge(Json* dst, const Json& src) {
  for (const auto& [key, value] : src.items()) {
    Json& slot = (*dst)[key];
    if (value.is_object()) {
      if (!slot.is_object()) slot = Json::object();
      DeepMerge(&slot, value);
    } else {
      slot = value;
    }
  }
}

void StripNulls(Json* value) {
  if (!value->is_object()) return;
  for (auto it = value->begin(); it != value->end();) {
    if (it->is_null()) {
      it = value->erase(it);
    } else {
      StripNulls(&*it);
      ++it;
    }
  }
}

const Json* Find(const Json& root, const FieldPath& path) {
  const Json* node = &root;
  for (const std::string& key : path) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

bool SameAt(const Json& a, const Json& b, const FieldPath& path) {
  const Json* x = Find(a, path);
  const Json* y = Find(b, path);
  if (x == nullptr || y == nullptr) return x == y;
  return *x == *y;
}

// Whether applying `patch` changes `current` at `path` (an empty object in the patch only
// asks for an object to be there).
bool ApplyChanges(const Json& current, const Json& patch, const FieldPath& path) {
  const Json* want = Find(patch, path);
  const Json* have = Find(current, path);
  if (want != nullptr && want->is_object() && want->empty()) {
    return have == nullptr || !have->is_object();
  }
  return have == nullptr || want == nullptr || *have != *want;
}

// --- Associative lists: elements as "k:{...}" keys, so the merge above handles them ---

// The element's key in FieldsV1: k:{"type":"Ready"} (the key fields, sorted by name).
std::optional<std::string> ElementKey(const Json& element, const std::vector<std::string>& keys) {
  if (!element.is_object()) return std::nullopt;
  Json k = Json::object();
  for (const std::string& key : keys) {
    auto it = element.find(key);
    if (it == element.end() || it->is_null() || it->is_object() || it->is_array()) {
      return std::nullopt;
    }
    k[key] = *it;
  }
  return "k:" + k.dump();
}

Json* FindMutable(Json* root, const std::vector<std::string>& path) {
  Json* node = root;
  for (const std::string& key : path) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

std::string Dotted(const std::vector<std::string>& path) {
  std::string s;
  for (const std::string& key : path) s += (s.empty() ? "" : ".") + key;
  return s;
}

// `object` with each of the kind's associative lists turned into an object of its elements by
// key. An element without its keys, or two with the same, is an error naming it (the real
// server's 422); `error` may be null to leave such a list as it is (atomic).
Json Keyed(Json object, const ResourceKind& kind, std::string* error) {
  for (const AssociativeList& list : kind.associative_lists) {
    Json* node = FindMutable(&object, list.path);
    if (node == nullptr || !node->is_array()) continue;
    Json keyed = Json::object();
    bool valid = true;
    for (size_t i = 0; i < node->size() && valid; ++i) {
      const std::optional<std::string> key = ElementKey((*node)[i], list.keys);
      const std::string where = Dotted(list.path) + "[" + std::to_string(i) + "]";
      if (!key.has_value()) {
        if (error != nullptr)
          *error =
              where + ": Required value: the list's keys (" + Dotted(list.keys) + ") must be set";
        valid = false;
      } else if (keyed.contains(*key)) {
        if (error != nullptr) *error = where + ": Duplicate value: " + key->substr(2);
        valid = false;
      } else {
        keyed[*key] = (*node)[i];
      }
    }
    if (!valid && error != nullptr) return object;
    if (valid) *node = std::move(keyed);
  }
  return object;
}

// The inverse of Keyed: each keyed list back to an array, in the order its elements have in
// the lists of `order` (the stored object, then the patch), then by key.
Json Unkeyed(Json object, const ResourceKind& kind, const std::vector<const Json*>& order) {
  for (const AssociativeList& list : kind.associative_lists) {
    Json* node = FindMutable(&object, list.path);
    if (node == nullptr || !node->is_object()) continue;
    Json array = Json::array();
    std::set<std::string> placed;
    const auto place = [&](const std::string& key) {
      auto it = node->find(key);
      if (it != node->end() && placed.insert(key).second) array.push_back(*it);
    };
    for (const Json* source : order) {
      const Json* hint = source == nullptr ? nullptr : Find(*source, list.path);
      if (hint == nullptr || !hint->is_array()) continue;
      for (const Json& element : *hint) {
        if (std::optional<std::string> key = ElementKey(element, list.keys)) place(*key);
      }
    }
    for (const auto& [key, value] : node->items()) place(key);
    *node = std::move(array);
  }
  return object;
}

// One path is the other or lies under it.
bool Related(const FieldPath& a, const FieldPath& b) {
  const size_t n = std::min(a.size(), b.size());
  return std::equal(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(n), b.begin());
}

// Removes the field at `path`, then every object the removal left empty (never metadata).
void EraseAt(Json* root, const FieldPath& path) {
  if (path.empty()) return;
  std::vector<Json*> chain = {root};  // chain[i]: the node at path[0..i)
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    Json* node = chain.back();
    if (!node->is_object() || !node->contains(path[i])) return;
    chain.push_back(&(*node)[path[i]]);
  }
  if (!chain.back()->is_object()) return;
  chain.back()->erase(path.back());
  for (size_t i = chain.size() - 1; i >= 1; --i) {
    if (!chain[i]->is_object() || !chain[i]->empty()) break;
    if (i == 1 && path[0] == "metadata") break;
    chain[i - 1]->erase(path[i - 1]);
  }
}

std::string PathString(const FieldPath& path) {
  std::string s;
  for (const std::string& key : path) s += "." + key;
  return s;
}

// FieldsV1: {"f:spec":{"f:replicas":{}}}.
Json EncodeFields(const FieldSet& fields) {
  Json root = Json::object();
  for (const FieldPath& path : fields) {
    Json* node = &root;
    for (const std::string& key : path) {
      node = &(*node)[key.rfind("k:", 0) == 0 ? key : "f:" + key];
      if (!node->is_object()) *node = Json::object();
    }
  }
  return root;
}

// Everything but metadata and status: what a generation bump is about.
Json SpecPart(Json object) {
  object.erase("metadata");
  object.erase("status");
  return object;
}

// --- Selectors ---

struct Requirement {
  enum class Op { kEquals, kNotEquals, kExists, kNotExists, kIn, kNotIn };
  Op op = Op::kEquals;
  std::string key{};
  std::set<std::string> values{};
};

bool ValidSelectorToken(const std::string& s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/';
  });
}

// Splits at commas outside parentheses.
std::vector<std::string> SplitTerms(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(Trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(Trim(cur));
  return out;
}

// "key=value", "key==value" or "key!=value".
bool SplitComparison(const std::string& term, Requirement* r) {
  size_t at = term.find("!=");
  size_t skip = 2;
  r->op = Requirement::Op::kNotEquals;
  if (at == std::string::npos) {
    r->op = Requirement::Op::kEquals;
    at = term.find("==");
    if (at == std::string::npos) {
      at = term.find('=');
      skip = 1;
    }
  }
  if (at == std::string::npos) return false;
  r->key = Trim(term.substr(0, at));
  r->values.insert(Trim(term.substr(at + skip)));
  return true;
}

std::optional<ApiError> ParseLabelSelector(const std::string& text, std::vector<Requirement>* out) {
  if (Trim(text).empty()) return std::nullopt;
  for (const std::string& term : SplitTerms(text)) {
    const ApiError bad = Error(
        400, "unable to parse requirement \"" + term + "\" in labelSelector \"" + text + "\"");
    Requirement r;
    const size_t paren = term.find('(');
    if (!term.empty() && term[0] == '!') {
      r.op = Requirement::Op::kNotExists;
      r.key = Trim(term.substr(1));
    } else if (paren != std::string::npos) {
      if (term.back() != ')') return bad;
      const std::string head = Trim(term.substr(0, paren));
      const size_t space = head.find_last_of(" \t");
      if (space == std::string::npos) return bad;
      r.key = Trim(head.substr(0, space));
      const std::string op = head.substr(space + 1);
      if (op == "in") {
        r.op = Requirement::Op::kIn;
      } else if (op == "notin") {
        r.op = Requirement::Op::kNotIn;
      } else {
        return bad;
      }
      const std::string list = term.substr(paren + 1, term.size() - paren - 2);
      for (const std::string& v : SplitTerms(list)) {
        if (!ValidSelectorToken(v, true)) return bad;
        r.values.insert(v);
      }
    } else if (term.find('=') != std::string::npos) {
      if (!SplitComparison(term, &r)) return bad;
    } else {
      r.op = Requirement::Op::kExists;
      r.key = term;
    }
    if (!ValidSelectorToken(r.key, false)) return bad;
    for (const std::string& v : r.values) {
      if (!ValidSelectorToken(v, true)) return bad;
    }
    out->push_back(std::move(r));
  }
  return std::nullopt;
}

std::optional<ApiError> ParseFieldSelector(const std::string& text, std::vector<Requirement>* out) {
  if (Trim(text).empty()) return std::nullopt;
  for (const std::string& term : SplitTerms(text)) {
    Requirement r;
    if (!SplitComparison(term, &r)) {
      return Error(400, "invalid fieldSelector term \"" + term + "\": want field=value");
    }
    if (r.key != "metadata.name" && r.key != "metadata.namespace") {
      return Error(400, "field label not supported: " + r.key);
    }
    out->push_back(std::move(r));
  }
  return std::nullopt;
}

bool Holds(const Requirement& r, const std::optional<std::string>& value) {
  switch (r.op) {
    case Requirement::Op::kEquals:
    case Requirement::Op::kIn:
      return value && r.values.count(*value) != 0;
    case Requirement::Op::kNotEquals:
    case Requirement::Op::kNotIn:
      return !value || r.values.count(*value) == 0;
    case Requirement::Op::kExists:
      return value.has_value();
    case Requirement::Op::kNotExists:
      return !value.has_value();
  }
  return false;
}

struct Selector {
  std::vector<Requirement> labels;
  std::vector<Requirement> fields;

  bool Matches(const Json& object) const {
    const Json* labels_json = Find(object, {"metadata", "labels"});
    for (const Requirement& r : labels) {
      std::optional<std::string> value;
      if (labels_json != nullptr && labels_json->is_object()) {
        auto it = labels_json->find(r.key);
        if (it != labels_json->end() && it->is_string()) value = it->get<std::string>();
      }
      if (!Holds(r, value)) return false;
    }
    for (const Requirement& r : fields) {
      const std::string field = r.key == "metadata.name" ? "name" : "namespace";
      if (!Holds(r, MetaString(object, field.c_str()))) return false;
    }
    return true;
  }
};

std::optional<ApiError> ParseSelector(const http::HttpRequest& req, Selector* out) {
  auto label = req.query.find("labelSelector");
  if (label != req.query.end()) {
    if (auto e = ParseLabelSelector(label->second, &out->labels)) return e;
  }
  auto field = req.query.find("fieldSelector");
  if (field != req.query.end()) {
    if (auto e = ParseFieldSelector(field->second, &out->fields)) return e;
  }
  return std::nullopt;
}

std::string QueryValue(const http::HttpRequest& req, const std::string& key) {
  auto it = req.query.find(key);
  return it == req.query.end() ? std::string() : it->second;
}

bool IsWrite(Verb verb) {
  return verb == Verb::kCreate || verb == Verb::kUpdate || verb == Verb::kPatch ||
         verb == Verb::kDelete;
}

}  // namespace

std::vector<ResourceKind> DefaultResourceKinds() {
  return {
      {.group = "", .version = "v1", .plural = "serviceaccounts", .kind = "ServiceAccount"},
      {.group = "", .version = "v1", .plural = "configmaps", .kind = "ConfigMap"},
      {.group = "", .version = "v1", .plural = "services", .kind = "Service", .has_status = true},
      {.group = "", .version = "v1", .plural = "secrets", .kind = "Secret"},
      {.group = "",
       .version = "v1",
       .plural = "persistentvolumeclaims",
       .kind = "PersistentVolumeClaim",
       .has_status = true},
      {.group = "apps",
       .version = "v1",
       .plural = "statefulsets",
       .kind = "StatefulSet",
       .has_status = true},
      {.group = "networking.k8s.io",
       .version = "v1",
       .plural = "networkpolicies",
       .kind = "NetworkPolicy"},
      {.group = "policy",
       .version = "v1",
       .plural = "poddisruptionbudgets",
       .kind = "PodDisruptionBudget",
       .has_status = true},
      {.group = "events.k8s.io", .version = "v1", .plural = "events", .kind = "Event"},
      {.group = "coordination.k8s.io", .version = "v1", .plural = "leases", .kind = "Lease"},
      {.group = "rbac.authorization.k8s.io", .version = "v1", .plural = "roles", .kind = "Role"},
      {.group = "rbac.authorization.k8s.io",
       .version = "v1",
       .plural = "rolebindings",
       .kind = "RoleBinding"},
      {.group = "agentry.dev",
       .version = "v1alpha1",
       .plural = "managedagents",
       .kind = "ManagedAgent",
       .has_status = true,
       .associative_lists = {{.path = {"status", "conditions"}, .keys = {"type"}},
                             {.path = {"status", "runtimes"}, .keys = {"pod"}}}},
  };
}

class FakeApiServer::Impl {
 public:
  explicit Impl(FakeApiServerOptions options) : options_(std::move(options)), rng_(Seed()) {
    for (const ResourceKind& kind : options_.kinds) {
      // The belief: plurals name kinds uniquely here (Get() and List() take a plural).
      if (!kinds_.emplace(kind.plural, kind).second) {
        std::fprintf(stderr, "FakeApiServer: resource %s registered twice\n", kind.plural.c_str());
        std::abort();
      }
    }
  }

  ~Impl() { Stop(); }

  Status Start() {
    if (server_) return FailedPreconditionError("fake API server already started");
    registry_ = std::make_unique<metrics::Registry>();
    auto server = std::make_unique<http::HttpServer>(http::HttpServerOptions{
        .host = "127.0.0.1",
        .port = bound_port_ != 0 ? bound_port_.load() : options_.port,
        .max_body_bytes = size_t{3} << 20,  // the real server's limit is about 3 MiB
        .shutdown_grace = std::chrono::milliseconds(5000),
        .registry = registry_.get()});
    AGENTRY_RETURN_IF_ERROR(RegisterRoutes(server.get()));
    {
      std::lock_guard<std::mutex> lock(mu_);
      serving_ = true;
    }
    if (Status s = server->Start(); !s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      serving_ = false;
      return s;
    }
    bound_port_ = server->port();
    server_ = std::move(server);
    return OkStatus();
  }

  void Stop() {
    if (!server_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      serving_ = false;
      ++watch_epoch_;
    }
    changed_.notify_all();
    server_->Stop();
    server_.reset();
    registry_.reset();
  }

  uint16_t port() const { return bound_port_; }

  StatusOr<Json> Put(Json object) {
    if (!object.is_object()) return InvalidArgumentError("Put: not a JSON object");
    const std::string api_version = object.value("apiVersion", "");
    const std::string kind_name = object.value("kind", "");
    const ResourceKind* kind = nullptr;
    for (const auto& [plural, k] : kinds_) {
      if (k.api_version() == api_version && k.kind == kind_name) kind = &k;
    }
    if (kind == nullptr) {
      return InvalidArgumentError("Put: no resource for apiVersion \"" + api_version +
                                  "\" kind \"" + kind_name + "\"");
    }
    if (auto e = ValidateMetadata(object)) return InvalidArgumentError("Put: " + e->message);
    const std::string name = MetaString(object, "name");
    if (name.empty()) return InvalidArgumentError("Put: metadata.name is required");
    Json& meta = object["metadata"];
    if (MetaString(object, "namespace").empty()) meta["namespace"] = "default";
    const ObjectKey key{meta["namespace"].get<std::string>(), name};

    std::lock_guard<std::mutex> lock(mu_);
    const Stored* old = FindObject(kind->plural, key);
    Stored next;
    if (old != nullptr) {
      next.managers = old->managers;
      for (const char* field : {"uid", "creationTimestamp", "generation"}) {
        if (!meta.contains(field)) meta[field] = old->object["metadata"][field];
      }
    }
    if (!meta.contains("uid")) meta["uid"] = NewUid();
    if (!meta.contains("creationTimestamp")) meta["creationTimestamp"] = Now();
    meta.erase("resourceVersion");
    next.object = std::move(object);
    return Commit(*kind, key, old, std::move(next));
  }

  std::optional<Json> Get(const std::string& plural, const std::string& ns,
                          const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto by_kind = objects_.find(plural);
    if (by_kind == objects_.end()) return std::nullopt;
    auto it = by_kind->second.find({ns, name});
    if (it == by_kind->second.end()) return std::nullopt;
    return it->second.object;
  }

  std::vector<Json> List(const std::string& plural, const std::string& ns) const {
    std::vector<Json> out;
    std::lock_guard<std::mutex> lock(mu_);
    auto by_kind = objects_.find(plural);
    if (by_kind == objects_.end()) return out;
    for (const auto& [key, stored] : by_kind->second) {
      if (ns.empty() || key.first == ns) out.push_back(stored.object);
    }
    return out;
  }

  void Compact() {
    std::lock_guard<std::mutex> lock(mu_);
    history_.clear();
    compacted_rv_ = resource_version_;
  }

  void DropWatches() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++watch_epoch_;
    }
    changed_.notify_all();
  }

  void FailNext(Verb verb, int times, int code, std::string message) {
    std::lock_guard<std::mutex> lock(mu_);
    injected_[verb] = Injected{.times = times, .code = code, .message = std::move(message)};
  }

  int64_t resource_version() const {
    std::lock_guard<std::mutex> lock(mu_);
    return resource_version_;
  }

  uint64_t count(Verb verb) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = counts_.find(verb);
    return it == counts_.end() ? 0 : it->second;
  }

  uint64_t writes() const {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t n = 0;
    for (const auto& [verb, c] : counts_) {
      if (IsWrite(verb)) n += c;
    }
    return n;
  }

  void ResetCounts() {
    std::lock_guard<std::mutex> lock(mu_);
    counts_.clear();
  }

  size_t active_watches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return active_watches_;
  }

 private:
  using ObjectKey = std::pair<std::string, std::string>;  // namespace, name

  // One field manager's entry in metadata.managedFields.
  struct ManagerEntry {
    std::string manager{};
    std::string operation{};    // "Apply" or "Update"
    std::string subresource{};  // "" or "status"
    std::string api_version{};
    std::string time{};
    FieldSet fields{};
  };

  struct Stored {
    Json object{};
    std::vector<ManagerEntry> managers{};
  };

  struct Event {
    int64_t rv = 0;
    std::string type{};  // ADDED, MODIFIED, DELETED
    std::string plural{};
    std::string ns{};
    Json object{};
    Json old_object{};  // MODIFIED: the object before, for selectors it stopped matching
  };

  // What a request is about, from its path.
  struct Target {
    const ResourceKind* kind = nullptr;
    std::string ns{};  // empty: all namespaces (list and watch only)
    std::string name{};
    std::string subresource{};  // "" or "status"
  };

  struct Result {
    std::optional<ApiError> error{};
    int code = 200;
    Json object{};
  };

  struct Injected {
    int times = 0;
    int code = 0;
    std::string message{};
  };

  static uint64_t Seed() { return std::random_device{}(); }

  // --- Routing ---

  Status RegisterRoutes(http::HttpServer* server) {
    static const char* const kPatterns[] = {
        "/api/v1/{plural}",
        "/api/v1/{plural}/{name}",
        "/api/v1/namespaces/{ns}/{plural}",
        "/api/v1/namespaces/{ns}/{plural}/{name}",
        "/api/v1/namespaces/{ns}/{plural}/{name}/{sub}",
        "/apis/{group}/{version}/{plural}",
        "/apis/{group}/{version}/{plural}/{name}",
        "/apis/{group}/{version}/namespaces/{ns}/{plural}",
        "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}",
        "/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}/{sub}",
    };
    for (const char* pattern : kPatterns) {
      for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
        AGENTRY_RETURN_IF_ERROR(server->Route(
            method, pattern, [this](const http::HttpRequest& req) { return Serve(req); }));
      }
    }
    return OkStatus();
  }

  http::HttpResponse Serve(const http::HttpRequest& req) {
    try {
      return ServeOrThrow(req);
    } catch (const std::exception& e) {
      return ErrorResponse(Error(500, std::string("fake API server: ") + e.what()));
    }
  }

  http::HttpResponse ServeOrThrow(const http::HttpRequest& req) {
    auto param = [&](const char* name) {
      auto it = req.path_params.find(name);
      return it == req.path_params.end() ? std::string() : it->second;
    };
    const bool core = req.path_params.count("group") == 0;
    const std::string group = core ? "" : param("group");
    const std::string version = core ? "v1" : param("version");
    Target target;
    auto kind = kinds_.find(param("plural"));
    if (kind != kinds_.end() && kind->second.group == group && kind->second.version == version) {
      target.kind = &kind->second;
    }
    target.ns = param("ns");
    target.name = param("name");
    target.subresource = param("sub");
    const bool cluster_item = !target.name.empty() && req.path_params.count("ns") == 0;
    if (target.kind == nullptr || cluster_item) {
      return ErrorResponse(Error(404, "the server could not find the requested resource"));
    }
    if (!target.subresource.empty() &&
        (target.subresource != "status" || !target.kind->has_status)) {
      return ErrorResponse(Error(404, "the server could not find the requested resource"));
    }

    const bool collection = target.name.empty();
    std::optional<Verb> verb;
    const std::string& m = req.method;
    if (collection) {
      const std::string watch = QueryValue(req, "watch");
      if (m == "GET") verb = (watch == "true" || watch == "1") ? Verb::kWatch : Verb::kList;
      if (m == "POST" && !target.ns.empty()) verb = Verb::kCreate;
    } else {
      if (m == "GET") verb = Verb::kGet;
      if (m == "PUT") verb = Verb::kUpdate;
      if (m == "PATCH") verb = Verb::kPatch;
      if (m == "DELETE" && target.subresource.empty()) verb = Verb::kDelete;
    }
    if (!verb) {
      return ErrorResponse(Error(405,
                                 "the server does not allow this method on the requested "
                                 "resource (method " +
                                     m + ")"));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++counts_[*verb];
      if (!serving_) return ErrorResponse(Error(503, "the fake API server is shutting down"));
      if (auto e = ConsumeInjectedFailure(*verb)) return ErrorResponse(*e);
    }
    if (IsWrite(*verb) && req.query.count("dryRun") != 0) {
      return ErrorResponse(Error(400, "dryRun is not supported by the fake API server"));
    }

    Result result;
    switch (*verb) {
      case Verb::kGet:
        result = GetOne(target);
        break;
      case Verb::kList:
        return ListObjects(req, target);
      case Verb::kWatch:
        return Watch(req, target);
      case Verb::kCreate:
        result = Create(req, target);
        break;
      case Verb::kUpdate:
        result = Update(req, target);
        break;
      case Verb::kPatch:
        result = Patch(req, target);
        break;
      case Verb::kDelete:
        result = Delete(req, target);
        break;
    }
    if (result.error) return ErrorResponse(*result.error);
    return http::HttpResponse::Json(result.code, result.object);
  }

  // --- Reads ---

  Result GetOne(const Target& target) {
    std::lock_guard<std::mutex> lock(mu_);
    const Stored* stored = FindObject(target.kind->plural, {target.ns, target.name});
    if (stored == nullptr) return {.error = NotFound(*target.kind, target.name)};
    return {.object = stored->object};
  }

  http::HttpResponse ListObjects(const http::HttpRequest& req, const Target& target) {
    Selector selector;
    if (auto e = ParseSelector(req, &selector)) return ErrorResponse(*e);
    int64_t limit = 0;
    if (const std::string l = QueryValue(req, "limit"); !l.empty()) {
      std::optional<int64_t> parsed = ParseInt(l);
      if (!parsed || *parsed < 0) return ErrorResponse(Error(400, "limit: invalid value " + l));
      limit = *parsed;
    }
    // The continue token is "namespace/name" of the last item served (names have no '/').
    std::optional<ObjectKey> after;
    if (const std::string token = QueryValue(req, "continue"); !token.empty()) {
      const size_t slash = token.find('/');
      if (slash == std::string::npos) {
        return ErrorResponse(Error(400, "continue: invalid token \"" + token + "\""));
      }
      after = ObjectKey{token.substr(0, slash), token.substr(slash + 1)};
    }

    const ResourceKind& kind = *target.kind;
    Json list = {{"kind", kind.kind + "List"},
                 {"apiVersion", kind.api_version()},
                 {"metadata", Json::object()},
                 {"items", Json::array()}};
    std::lock_guard<std::mutex> lock(mu_);
    list["metadata"]["resourceVersion"] = std::to_string(resource_version_);
    auto by_kind = objects_.find(kind.plural);
    if (by_kind == objects_.end()) return http::HttpResponse::Json(200, list);
    int64_t remaining = 0;
    ObjectKey last;
    for (const auto& [key, stored] : by_kind->second) {
      if (!target.ns.empty() && key.first != target.ns) continue;
      if (after && key <= *after) continue;
      if (!selector.Matches(stored.object)) continue;
      if (limit > 0 && static_cast<int64_t>(list["items"].size()) == limit) {
        ++remaining;
        continue;
      }
      list["items"].push_back(stored.object);
      last = key;
    }
    if (remaining > 0) {
      list["metadata"]["continue"] = last.first + "/" + last.second;
      list["metadata"]["remainingItemCount"] = remaining;
    }
    return http::HttpResponse::Json(200, list);
  }

  // --- Watch ---

  http::HttpResponse Watch(const http::HttpRequest& req, const Target& target) {
    Selector selector;
    if (auto e = ParseSelector(req, &selector)) return ErrorResponse(*e);
    std::optional<int64_t> from;  // nullopt: start with the current objects
    if (const std::string rv = QueryValue(req, "resourceVersion"); !rv.empty() && rv != "0") {
      from = ParseInt(rv);
      if (!from || *from < 0) {
        return ErrorResponse(Error(400, "resourceVersion: invalid value \"" + rv + "\""));
      }
    }
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (const std::string t = QueryValue(req, "timeoutSeconds"); !t.empty()) {
      std::optional<int64_t> seconds = ParseInt(t);
      if (!seconds || *seconds < 0) {
        return ErrorResponse(Error(400, "timeoutSeconds: invalid value \"" + t + "\""));
      }
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(*seconds);
    }
    const bool bookmarks = QueryValue(req, "allowWatchBookmarks") == "true";
    http::HttpResponse r;
    r.status = 200;
    r.content_type = "application/json";
    r.stream = [this, kind = *target.kind, ns = target.ns, selector, from, bookmarks,
                deadline](const http::HttpResponse::Writer& write) {
      StreamWatch(write, kind, ns, selector, from, bookmarks, deadline);
    };
    return r;
  }

  static std::string EventLine(const std::string& type, const Json& object) {
    return Dump(Json{{"type", type}, {"object", object}}) + "\n";
  }

  void StreamWatch(const http::HttpResponse::Writer& write, const ResourceKind& kind,
                   const std::string& ns, const Selector& selector, std::optional<int64_t> from,
                   bool bookmarks, std::optional<std::chrono::steady_clock::time_point> deadline) {
    using Clock = std::chrono::steady_clock;
    std::unique_lock<std::mutex> lock(mu_);
    if (!serving_) return;
    const uint64_t epoch = watch_epoch_;
    ++active_watches_;
    std::vector<std::string> out;  // lines to send
    bool done = false;             // after a 410: send what is queued, then end
    int64_t last = 0;              // every event up to here has been considered
    if (!from) {
      auto by_kind = objects_.find(kind.plural);
      if (by_kind != objects_.end()) {
        for (const auto& [key, stored] : by_kind->second) {
          if ((ns.empty() || key.first == ns) && selector.Matches(stored.object)) {
            out.push_back(EventLine("ADDED", stored.object));
          }
        }
      }
      last = resource_version_;
    } else {
      last = *from;
    }
    Clock::time_point last_write = Clock::now();
    while (serving_ && watch_epoch_ == epoch) {
      if (!done && last < compacted_rv_) {
        // The events after `last` are gone: what a real server says to a too-old watch.
        ApiError e = Error(410, "too old resource version: " + std::to_string(last) + " (" +
                                    std::to_string(compacted_rv_) + ")");
        out.push_back(EventLine("ERROR", StatusObject(e)));
        done = true;
      }
      if (!done) {
        auto it = std::upper_bound(history_.begin(), history_.end(), last,
                                   [](int64_t rv, const Event& e) { return rv < e.rv; });
        for (; it != history_.end(); ++it) {
          last = it->rv;
          if (it->plural != kind.plural || (!ns.empty() && it->ns != ns)) continue;
          // A label change can move an object into or out of the selector.
          const bool matches = selector.Matches(it->object);
          const bool matched = !it->old_object.is_null() && selector.Matches(it->old_object);
          std::string type = it->type;
          if (type == "MODIFIED" && matches != matched) type = matches ? "ADDED" : "DELETED";
          if (!matches && !matched) continue;
          out.push_back(EventLine(type, it->object));
        }
        last = std::max(last, resource_version_);
      }
      if (out.empty()) {
        if (done) break;
        const Clock::time_point now = Clock::now();
        if (deadline && now >= *deadline) break;
        const Clock::time_point bookmark_due = last_write + options_.bookmark_interval;
        if (bookmarks && now >= bookmark_due) {
          out.push_back(
              EventLine("BOOKMARK", {{"kind", kind.kind},
                                     {"apiVersion", kind.api_version()},
                                     {"metadata", {{"resourceVersion", std::to_string(last)}}}}));
        } else {
          Clock::time_point wake = Clock::time_point::max();
          if (deadline) wake = *deadline;
          if (bookmarks) wake = std::min(wake, bookmark_due);
          if (wake == Clock::time_point::max()) {
            changed_.wait(lock);
          } else {
            changed_.wait_until(lock, wake);
          }
          continue;
        }
      }
      lock.unlock();
      bool client_there = true;
      for (const std::string& line : out) {
        if (!write(line)) {
          client_there = false;
          break;
        }
      }
      out.clear();
      lock.lock();
      last_write = Clock::now();
      if (!client_there) break;
    }
    --active_watches_;
  }

  // --- Writes ---

  static std::string FieldManager(const http::HttpRequest& req) {
    const std::string m = QueryValue(req, "fieldManager");
    return m.empty() ? "unknown" : m;
  }

  // The checks of a PUT or non-apply PATCH body against the URL.
  static std::optional<ApiError> CheckIdentity(const Json& object, const Target& target) {
    const ResourceKind& kind = *target.kind;
    if (object.contains("apiVersion") && object["apiVersion"] != kind.api_version()) {
      return Error(400, "the API version in the data (" + Dump(object["apiVersion"]) +
                            ") does not match the expected API version (" + kind.api_version() +
                            ")");
    }
    if (object.contains("kind") && object["kind"] != kind.kind) {
      return Error(400, "the kind in the data (" + Dump(object["kind"]) +
                            ") does not match the expected kind (" + kind.kind + ")");
    }
    const std::string name = MetaString(object, "name");
    if (!target.name.empty() && !name.empty() && name != target.name) {
      return Error(400, "the name of the object (" + name +
                            ") does not match the name on the URL (" + target.name + ")");
    }
    const std::string ns = MetaString(object, "namespace");
    if (!ns.empty() && ns != target.ns) {
      return Error(400, "the namespace of the provided object (" + ns +
                            ") does not match the namespace sent on the request (" + target.ns +
                            ")");
    }
    return std::nullopt;
  }

  // Optimistic concurrency: a resourceVersion or uid in `object` must be the stored one.
  static std::optional<ApiError> CheckPreconditions(const Json& object, const Stored& stored,
                                                    const Target& target) {
    const std::string rv = MetaString(object, "resourceVersion");
    if (!rv.empty() && rv != MetaString(stored.object, "resourceVersion")) {
      return Modified(*target.kind, target.name);
    }
    const std::string uid = MetaString(object, "uid");
    if (!uid.empty() && uid != MetaString(stored.object, "uid")) {
      ApiError e = Error(409, "Precondition failed: UID in precondition: " + uid +
                                  ", UID in object meta: " + MetaString(stored.object, "uid"));
      e.details = Details(*target.kind, target.name);
      return e;
    }
    return std::nullopt;
  }

  // The object a PUT or non-apply PATCH of `target` stores: `body` within the write's scope,
  // the rest (system metadata; .status or everything but .status) from `old`.
  static Json WithinScope(const Json& old, const Json& body, const Target& target) {
    const ResourceKind& kind = *target.kind;
    if (target.subresource == "status") {
      Json out = old;
      if (body.contains("status")) {
        out["status"] = body["status"];
      } else {
        out.erase("status");
      }
      return out;
    }
    Json out = body;
    out["apiVersion"] = kind.api_version();
    out["kind"] = kind.kind;
    if (!out.contains("metadata") || !out["metadata"].is_object()) out["metadata"] = Json::object();
    Json& meta = out["metadata"];
    const Json& old_meta = old["metadata"];
    EraseSystemMetadata(&meta, /*keep_name=*/false);
    for (const auto& [key, value] : old_meta.items()) {
      if (IsSystemMetadata(key)) meta[key] = value;
    }
    if (kind.has_status) {
      if (old.contains("status")) {
        out["status"] = old["status"];
      } else {
        out.erase("status");
      }
    }
    return out;
  }

  static ManagerEntry* FindManager(std::vector<ManagerEntry>* managers, const std::string& manager,
                                   const std::string& operation, const std::string& subresource) {
    for (ManagerEntry& e : *managers) {
      if (e.manager == manager && e.operation == operation && e.subresource == subresource) {
        return &e;
      }
    }
    managers->push_back(ManagerEntry{.manager = manager,
                                     .operation = operation,
                                     .subresource = subresource,
                                     .api_version = "",
                                     .time = "",
                                     .fields = {}});
    return &managers->back();
  }

  static void DropEmptyManagers(std::vector<ManagerEntry>* managers) {
    managers->erase(std::remove_if(managers->begin(), managers->end(),
                                   [](const ManagerEntry& e) { return e.fields.empty(); }),
                    managers->end());
  }

  // A non-apply write from `old` to `next`: the writer owns the fields it changed, and every
  // other manager loses the fields that changed or went away.
  static void TrackUpdate(std::vector<ManagerEntry>* managers, const Json& old, const Json& next,
                          const std::string& manager, const Target& target) {
    const Scope scope = ScopeFor(*target.kind, target.subresource);
    const Json old_keyed = Keyed(old, *target.kind, nullptr);
    const Json next_keyed = Keyed(next, *target.kind, nullptr);
    const FieldSet before = OwnedLeaves(old_keyed, scope);
    const FieldSet after = OwnedLeaves(next_keyed, scope);
    FieldSet touched;
    FieldSet changed;
    for (const FieldPath& p : after) {
      if (!SameAt(old_keyed, next_keyed, p)) changed.insert(p);
    }
    touched = changed;
    for (const FieldPath& p : before) {
      if (after.count(p) == 0) touched.insert(p);
    }
    if (touched.empty()) return;
    for (ManagerEntry& e : *managers) {
      for (auto it = e.fields.begin(); it != e.fields.end();) {
        const FieldPath& q = *it;
        const bool lost = std::any_of(touched.begin(), touched.end(),
                                      [&](const FieldPath& t) { return Related(q, t); });
        it = lost ? e.fields.erase(it) : std::next(it);
      }
    }
    if (!changed.empty()) {
      ManagerEntry* self = FindManager(managers, manager, "Update", target.subresource);
      self->fields.insert(changed.begin(), changed.end());
      self->api_version = target.kind->api_version();
      self->time = Now();
    }
    DropEmptyManagers(managers);
  }

  Result Create(const http::HttpRequest& req, const Target& target) {
    const ResourceKind& kind = *target.kind;
    if (const std::string type = MediaType(req); type != "application/json") {
      return {.error = UnsupportedMedia(type, "application/json")};
    }
    Json object;
    if (auto e = ParseBody(req, &object)) return {.error = e};
    if (auto e = ValidateMetadata(object)) return {.error = e};
    if (auto e = CheckIdentity(object, target)) return {.error = e};
    object["apiVersion"] = kind.api_version();
    object["kind"] = kind.kind;
    if (!object.contains("metadata")) object["metadata"] = Json::object();
    Json& meta = object["metadata"];
    EraseSystemMetadata(&meta, /*keep_name=*/true);
    if (kind.has_status) object.erase("status");

    std::lock_guard<std::mutex> lock(mu_);
    std::string name = MetaString(object, "name");
    if (name.empty() && !MetaString(object, "generateName").empty()) {
      name = MetaString(object, "generateName") + RandomSuffix();
      if (!IsDnsSubdomain(name)) {
        return {.error = Error(422, "metadata.generateName: Invalid value: \"" +
                                        MetaString(object, "generateName") + "\"")};
      }
    }
    if (name.empty()) {
      return {.error = Error(422,
                             "metadata.name: Required value: name or generateName is "
                             "required")};
    }
    const ObjectKey key{target.ns, name};
    if (FindObject(kind.plural, key) != nullptr) {
      ApiError e = Error(409, ResourceName(kind) + " \"" + name + "\" already exists");
      e.reason = "AlreadyExists";
      e.details = Details(kind, name);
      return {.error = e};
    }
    meta["name"] = name;
    meta["namespace"] = target.ns;
    meta["uid"] = NewUid();
    meta["creationTimestamp"] = Now();
    meta["generation"] = 1;
    Stored next;
    ManagerEntry entry{.manager = FieldManager(req),
                       .operation = "Update",
                       .subresource = "",
                       .api_version = kind.api_version(),
                       .time = Now(),
                       .fields = OwnedLeaves(Keyed(object, kind, nullptr), ScopeFor(kind, ""))};
    if (!entry.fields.empty()) next.managers.push_back(std::move(entry));
    next.object = std::move(object);
    return {.code = 201, .object = Commit(kind, key, nullptr, std::move(next))};
  }

  Result Update(const http::HttpRequest& req, const Target& target) {
    if (const std::string type = MediaType(req); type != "application/json") {
      return {.error = UnsupportedMedia(type, "application/json")};
    }
    Json body;
    if (auto e = ParseBody(req, &body)) return {.error = e};
    if (auto e = ValidateMetadata(body)) return {.error = e};
    if (auto e = CheckIdentity(body, target)) return {.error = e};
    std::lock_guard<std::mutex> lock(mu_);
    return Rewrite(req, target, body);
  }

  // Stores what a PUT or non-apply PATCH made of the object (`body`: the whole new object).
  // With mu_ held.
  Result Rewrite(const http::HttpRequest& req, const Target& target, const Json& body) {
    const ObjectKey key{target.ns, target.name};
    const Stored* stored = FindObject(target.kind->plural, key);
    if (stored == nullptr) return {.error = NotFound(*target.kind, target.name)};
    if (auto e = CheckPreconditions(body, *stored, target)) return {.error = e};
    Stored next = *stored;
    next.object = WithinScope(stored->object, body, target);
    TrackUpdate(&next.managers, stored->object, next.object, FieldManager(req), target);
    return {.object = Commit(*target.kind, key, stored, std::move(next))};
  }

  Result Patch(const http::HttpRequest& req, const Target& target) {
    const std::string type = MediaType(req);
    const std::string accepted = std::string(kApplyPatch) + ", " + kMergePatch + ", " + kJsonPatch;
    if (type == kStrategicPatch) {
      return {.error = UnsupportedMedia(type, accepted + " (strategic merge patch is not "
                                                         "implemented by the fake API server)")};
    }
    if (type != kApplyPatch && type != kMergePatch && type != kJsonPatch) {
      return {.error = UnsupportedMedia(type, accepted)};
    }
    Json patch;
    if (auto e = ParseBody(req, &patch)) return {.error = e};
    if (type == kApplyPatch) return Apply(req, target, std::move(patch));
    if (type == kMergePatch && !patch.is_object()) {
      return {.error = Error(400, "a merge patch must be a JSON object")};
    }
    if (type == kJsonPatch && !patch.is_array()) {
      return {.error = Error(400, "a JSON patch must be a JSON array of operations")};
    }

    std::lock_guard<std::mutex> lock(mu_);
    const Stored* stored = FindObject(target.kind->plural, {target.ns, target.name});
    if (stored == nullptr) return {.error = NotFound(*target.kind, target.name)};
    Json patched = stored->object;
    if (type == kMergePatch) {
      patched.merge_patch(patch);
    } else {
      try {
        patched = patched.patch(patch);
      } catch (const Json::exception& e) {
        return {.error = Error(422, std::string("the JSON patch cannot be applied: ") + e.what())};
      }
    }
    if (auto e = ValidateMetadata(patched)) return {.error = e};
    if (auto e = CheckIdentity(patched, target)) return {.error = e};
    return Rewrite(req, target, patched);
  }

  // Server-side apply (the simplified structured merge described in the header).
  Result Apply(const http::HttpRequest& req, const Target& target, Json patch) {
    const ResourceKind& kind = *target.kind;
    const std::string manager = QueryValue(req, "fieldManager");
    if (manager.empty()) {
      return {.error = Error(400, "fieldManager: Required value: is required for apply patch")};
    }
    const bool force = QueryValue(req, "force") == "true";
    if (!patch.is_object()) return {.error = Error(400, "an apply patch must be an object")};
    if (!patch.contains("apiVersion") || !patch.contains("kind")) {
      return {.error = Error(400, "an apply patch must set apiVersion and kind")};
    }
    if (auto e = CheckIdentity(patch, target)) return {.error = e};
    StripNulls(&patch);
    if (auto e = ValidateMetadata(patch)) return {.error = e};
    const Json as_sent = patch;  // its associative lists' order, for the merged lists
    std::string invalid;
    patch = Keyed(std::move(patch), kind, &invalid);
    if (!invalid.empty()) return {.error = Error(422, invalid)};
    const Scope scope = ScopeFor(kind, target.subresource);
    const FieldSet applied = OwnedLeaves(patch, scope);

    std::lock_guard<std::mutex> lock(mu_);
    const ObjectKey key{target.ns, target.name};
    const Stored* stored = FindObject(kind.plural, key);
    if (stored == nullptr && target.subresource == "status") {
      return {.error = NotFound(kind, target.name)};
    }
    if (stored == nullptr && !MetaString(patch, "resourceVersion").empty()) {
      return {.error = Modified(kind, target.name)};
    }
    if (stored != nullptr) {
      if (auto e = CheckPreconditions(patch, *stored, target)) return {.error = e};
    }
    Stored next;
    if (stored != nullptr) {
      next = *stored;
      next.object = Keyed(std::move(next.object), kind, nullptr);
    } else {
      next.object = {{"apiVersion", kind.api_version()},
                     {"kind", kind.kind},
                     {"metadata",
                      {{"name", target.name},
                       {"namespace", target.ns},
                       {"uid", NewUid()},
                       {"creationTimestamp", Now()},
                       {"generation", 1}}}};
    }
    const Json current = next.object;

    // Conflicts: another manager owns a path at, above or below an applied one whose value
    // the patch changes.
    struct Conflict {
      size_t entry;
      FieldPath owned;
      FieldPath applied;
    };
    std::vector<Conflict> conflicts;
    for (size_t i = 0; i < next.managers.size(); ++i) {
      const ManagerEntry& e = next.managers[i];
      if (e.manager == manager && e.operation == "Apply" && e.subresource == target.subresource) {
        continue;
      }
      for (const FieldPath& q : e.fields) {
        for (const FieldPath& p : applied) {
          if (Related(p, q) && ApplyChanges(current, patch, p)) {
            conflicts.push_back({i, q, p});
            break;
          }
        }
      }
    }
    if (!conflicts.empty() && !force) {
      std::string message = "Apply failed with " + std::to_string(conflicts.size()) +
                            (conflicts.size() == 1 ? " conflict: " : " conflicts: ");
      Json causes = Json::array();
      for (size_t i = 0; i < conflicts.size(); ++i) {
        const ManagerEntry& e = next.managers[conflicts[i].entry];
        const std::string with =
            "conflict with \"" + e.manager + "\"" +
            (e.operation == "Update" ? "" : " using " + e.api_version) +
            (e.subresource.empty() ? "" : " with subresource \"" + e.subresource + "\"");
        message += (i > 0 ? "; " : "") + with + ": " + PathString(conflicts[i].owned);
        causes.push_back({{"reason", "FieldManagerConflict"},
                          {"message", with},
                          {"field", PathString(conflicts[i].owned)}});
      }
      ApiError e = Error(409, message);
      e.details = Details(kind, target.name);
      e.details["causes"] = causes;
      return {.error = e};
    }
    for (const Conflict& c : conflicts) next.managers[c.entry].fields.erase(c.owned);

    ManagerEntry* self = FindManager(&next.managers, manager, "Apply", target.subresource);
    // Fields this manager stops applying go, unless someone still owns them.
    for (const FieldPath& r : FieldSet(self->fields)) {
      if (applied.count(r) != 0) continue;
      // Still applied: at or below r, or above it as a leaf that holds it (a list or a
      // scalar; an empty object holds nothing).
      bool owned = std::any_of(applied.begin(), applied.end(), [&](const FieldPath& p) {
        if (!Related(p, r)) return false;
        const Json* leaf = p.size() < r.size() ? Find(patch, p) : nullptr;
        return leaf == nullptr || !leaf->is_object();
      });
      for (const ManagerEntry& e : next.managers) {
        if (&e == self) continue;
        owned = owned || std::any_of(e.fields.begin(), e.fields.end(),
                                     [&](const FieldPath& q) { return Related(q, r); });
      }
      if (!owned) EraseAt(&next.object, r);
    }
    DeepMerge(&next.object, Restrict(patch, scope));
    next.object = Unkeyed(std::move(next.object), kind,
                          {stored == nullptr ? nullptr : &stored->object, &as_sent});
    if (self->fields != applied) {
      self->fields = applied;
      self->api_version = kind.api_version();
      self->time = Now();
    }
    DropEmptyManagers(&next.managers);
    const bool created = stored == nullptr;
    Json object = Commit(kind, key, stored, std::move(next));
    return {.code = created ? 201 : 200, .object = std::move(object)};
  }

  Result Delete(const http::HttpRequest& req, const Target& target) {
    Json options;
    if (!req.body.empty()) {
      if (const std::string type = MediaType(req); type != "application/json") {
        return {.error = UnsupportedMedia(type, "application/json")};
      }
      if (auto e = ParseBody(req, &options)) return {.error = e};
      if (!options.is_object()) return {.error = Error(400, "DeleteOptions must be an object")};
    }
    const ObjectKey key{target.ns, target.name};
    std::lock_guard<std::mutex> lock(mu_);
    const Stored* stored = FindObject(target.kind->plural, key);
    if (stored == nullptr) return {.error = NotFound(*target.kind, target.name)};
    if (options.is_object() && options.contains("preconditions")) {
      const Json as_object = {{"metadata", options["preconditions"]}};
      if (auto e = CheckPreconditions(as_object, *stored, target)) return {.error = e};
    }
    if (!HasFinalizers(stored->object)) return {.object = Remove(*target.kind, key)};
    // Finalizers: mark it; it goes when a write leaves its finalizers empty.
    if (stored->object["metadata"].contains("deletionTimestamp")) return {.object = stored->object};
    Stored next = *stored;
    next.object["metadata"]["deletionTimestamp"] = Now();
    next.object["metadata"]["deletionGracePeriodSeconds"] = 0;
    return {.object = Commit(*target.kind, key, stored, std::move(next))};
  }

  // --- Storage (all with mu_ held) ---

  std::optional<ApiError> ConsumeInjectedFailure(Verb verb) {
    auto it = injected_.find(verb);
    if (it == injected_.end() || it->second.times <= 0) return std::nullopt;
    --it->second.times;
    return Error(it->second.code, it->second.message);
  }

  Stored* FindObject(const std::string& plural, const ObjectKey& key) {
    auto by_kind = objects_.find(plural);
    if (by_kind == objects_.end()) return nullptr;
    auto it = by_kind->second.find(key);
    return it == by_kind->second.end() ? nullptr : &it->second;
  }

  Json Commit(const ResourceKind& kind, const ObjectKey& key, const Stored* old, Stored next) {
    Json& meta = next.object["metadata"];
    if (next.managers.empty()) {
      meta.erase("managedFields");
    } else {
      Json fields = Json::array();
      for (const ManagerEntry& e : next.managers) {
        Json entry = {{"manager", e.manager},        {"operation", e.operation},
                      {"apiVersion", e.api_version}, {"time", e.time},
                      {"fieldsType", "FieldsV1"},    {"fieldsV1", EncodeFields(e.fields)}};
        if (!e.subresource.empty()) entry["subresource"] = e.subresource;
        fields.push_back(std::move(entry));
      }
      meta["managedFields"] = std::move(fields);
    }
    Json old_object;
    if (old != nullptr) {
      old_object = old->object;
      const Json& old_meta = old_object["metadata"];
      meta["resourceVersion"] = old_meta["resourceVersion"];
      const int64_t old_generation = old_meta.value("generation", int64_t{1});
      if (!meta.contains("generation")) meta["generation"] = old_generation;
      if (meta["generation"] == old_generation && SpecPart(old_object) != SpecPart(next.object)) {
        meta["generation"] = old_generation + 1;
      }
      if (meta.contains("deletionTimestamp") && !HasFinalizers(next.object)) {
        objects_[kind.plural][key] = std::move(next);
        return Remove(kind, key);
      }
      if (next.object == old_object) return old_object;  // a no-op write stores nothing
    } else if (!meta.contains("generation")) {
      meta["generation"] = 1;
    }
    meta["resourceVersion"] = std::to_string(++resource_version_);
    Json object = next.object;
    objects_[kind.plural][key] = std::move(next);
    Record(old != nullptr ? "MODIFIED" : "ADDED", kind.plural, object, std::move(old_object));
    return object;
  }

  Json Remove(const ResourceKind& kind, const ObjectKey& key) {
    auto& by_key = objects_[kind.plural];
    auto it = by_key.find(key);
    Json object = std::move(it->second.object);
    by_key.erase(it);
    object["metadata"]["resourceVersion"] = std::to_string(++resource_version_);
    Record("DELETED", kind.plural, object, Json());
    return object;
  }

  void Record(const std::string& type, const std::string& plural, const Json& object,
              Json old_object) {
    history_.push_back(Event{.rv = resource_version_,
                             .type = type,
                             .plural = plural,
                             .ns = MetaString(object, "namespace"),
                             .object = object,
                             .old_object = std::move(old_object)});
    while (history_.size() > options_.history_limit) {
      compacted_rv_ = history_.front().rv;
      history_.pop_front();
    }
    changed_.notify_all();
  }

  std::string NewUid() {
    std::uniform_int_distribution<uint32_t> hex(0, 15);
    std::string uid = "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx";
    for (char& c : uid) {
      if (c == 'x') c = "0123456789abcdef"[hex(rng_)];
    }
    return uid;
  }

  std::string RandomSuffix() {
    static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
    std::string s;
    for (int i = 0; i < 5; ++i) s += kAlphabet[pick(rng_)];
    return s;
  }

  const FakeApiServerOptions options_;
  std::map<std::string, ResourceKind> kinds_;  // by plural
  std::atomic<uint16_t> bound_port_{0};        // kept across Stop() and Start()
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<http::HttpServer> server_;

  mutable std::mutex mu_;
  std::condition_variable changed_;  // a new event, DropWatches(), Stop()
  std::mt19937_64 rng_;
  std::map<std::string, std::map<ObjectKey, Stored>> objects_;  // by plural
  std::deque<Event> history_;
  int64_t resource_version_ = 1;
  int64_t compacted_rv_ = 1;  // events up to here may be gone from history_
  uint64_t watch_epoch_ = 0;  // bumped by DropWatches() and Stop()
  bool serving_ = false;
  size_t active_watches_ = 0;
  std::map<Verb, uint64_t> counts_;
  std::map<Verb, Injected> injected_;
};

FakeApiServer::FakeApiServer(FakeApiServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeApiServer::~FakeApiServer() = default;

Status FakeApiServer::Start() { return impl_->Start(); }
void FakeApiServer::Stop() { impl_->Stop(); }
uint16_t FakeApiServer::port() const { return impl_->port(); }
std::string FakeApiServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port());
}
StatusOr<nlohmann::json> FakeApiServer::Put(nlohmann::json object) {
  return impl_->Put(std::move(object));
}
std::optional<nlohmann::json> FakeApiServer::Get(const std::string& plural, const std::string& ns,
                                                 const std::string& name) const {
  return impl_->Get(plural, ns, name);
}
std::vector<nlohmann::json> FakeApiServer::List(const std::string& plural,
                                                const std::string& ns) const {
  return impl_->List(plural, ns);
}
void FakeApiServer::Compact() { impl_->Compact(); }
void FakeApiServer::DropWatches() { impl_->DropWatches(); }
void FakeApiServer::FailNext(Verb verb, int times, int code, std::string message) {
  impl_->FailNext(verb, times, code, std::move(message));
}
int64_t FakeApiServer::resource_version() const { return impl_->resource_version(); }
uint64_t FakeApiServer::count(Verb verb) const { return impl_->count(verb); }
uint64_t FakeApiServer::writes() const { return impl_->writes(); }
void FakeApiServer::ResetCounts() { impl_->ResetCounts(); }
size_t FakeApiServer::active_watches() const { return impl_->active_watches(); }

}  // namespace agentry::kube::testing
