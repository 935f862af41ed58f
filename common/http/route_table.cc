#include "common/http/route_table.h"

#include <algorithm>

namespace agentry::http {
namespace {

bool IsCapture(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Status RouteTable::Add(const std::string& method, const std::string& pattern, size_t index) {
  if (method.empty()) return InvalidArgumentError("route " + pattern + ": empty method");
  if (pattern.empty() || pattern[0] != '/') {
    return InvalidArgumentError("route \"" + pattern + "\": must start with '/'");
  }
  Route route{method, pattern, SplitPath(pattern), index};
  std::vector<std::string> names;
  for (const std::string& seg : route.segments) {
    const bool has_brace = seg.find_first_of("{}") != std::string::npos;
    if (has_brace && !IsCapture(seg)) {
      return InvalidArgumentError("route \"" + pattern + "\": malformed segment \"" + seg + "\"");
    }
    if (IsCapture(seg)) {
      std::string name = seg.substr(1, seg.size() - 2);
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        return InvalidArgumentError("route \"" + pattern + "\": capture {" + name + "} twice");
      }
      names.push_back(std::move(name));
    }
  }
  for (const Route& existing : routes_) {
    if (existing.method == method && existing.segments == route.segments) {
      return InvalidArgumentError("route " + method + " " + pattern + " registered twice");
    }
  }
  routes_.push_back(std::move(route));
  return OkStatus();
}

std::optional<RouteTable::Match> RouteTable::Find(const std::string& method,
                                                  const std::string& path,
                                                  std::vector<std::string>* allowed) const {
  const std::vector<std::string> segments = SplitPath(path);
  if (allowed != nullptr) allowed->clear();
  for (const Route& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    Match match;
    bool matched = true;
    for (size_t i = 0; i < segments.size() && matched; ++i) {
      const std::string& want = route.segments[i];
      if (IsCapture(want)) {
        match.params[want.substr(1, want.size() - 2)] = segments[i];
      } else {
        matched = want == segments[i];
      }
    }
    if (!matched) continue;
    if (route.method != method) {
      if (allowed != nullptr) allowed->push_back(route.method);
      continue;
    }
    match.index = route.index;
    match.pattern = route.pattern;
    return match;
  }
  return std::nullopt;
}

}  // namespace agentry::http
