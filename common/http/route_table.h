// common/http/route_table.h — method + path-pattern routing, independent of any server.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace agentry::http {

// Maps (method, pattern) to an index chosen by the caller. Patterns are "/"-separated
// literal segments and "{name}" captures that match one non-empty segment.
class RouteTable {
 public:
  struct Match {
    size_t index = 0;
    std::string pattern;
    std::map<std::string, std::string> params;
  };

  Status Add(const std::string& method, const std::string& pattern, size_t index);

  // The route for method+path, or nullopt. When the path matches under other methods only,
  // `allowed_methods` lists them (for 405 and the Allow header).
  std::optional<Match> Find(const std::string& method, const std::string& path,
                            std::vector<std::string>* allowed_methods) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{x}" entries are captures
    size_t index;
  };
  std::vector<Route> routes_;
};

// "/a/b/" -> {"a","b"}; empty segments dropped.
std::vector<std::string> SplitPath(const std::string& path);

}  // namespace agentry::http
