// runtime/tools/egress_policy.cc — see egress_policy.h.
#include "runtime/tools/egress_policy.h"

#include <algorithm>
#include <cctype>

namespace agentry::tools {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool HostMatches(const std::string& rule, const std::string& host) {
  const std::string pattern = Lower(rule);
  if (pattern.starts_with("*.")) {
    const std::string_view suffix = std::string_view{pattern}.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.ends_with(suffix);
  }
  return pattern == host;
}

}  // namespace

StatusOr<ParsedUrl> ParseUrl(std::string_view url) {
  ParsedUrl out;
  std::string_view rest;
  if (url.starts_with("http://")) {
    out.scheme = "http";
    out.port = 80;
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    out.scheme = "https";
    out.port = 443;
    rest = url.substr(8);
  } else {
    return InvalidArgumentError("url " + std::string(url) + ": not http:// or https://");
  }
  const size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  out.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (out.target.starts_with("?")) out.target = "/" + out.target;
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError("url " + std::string(url) + ": user info is not allowed");
  }
  std::string_view port;
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError("url " + std::string(url) + ": unclosed [");
    }
    out.host = Lower(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(":")) {
      return InvalidArgumentError("url " + std::string(url) + ": bad host");
    }
    if (!after.empty()) port = after.substr(1);
  } else {
    const size_t colon = authority.find(':');
    out.host = Lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return InvalidArgumentError("url " + std::string(url) + ": no host");
  if (!port.empty() || authority.ends_with(":")) {
    int64_t p = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || p > 65535) {
        return InvalidArgumentError("url " + std::string(url) + ": bad port");
      }
      p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) return InvalidArgumentError("url " + std::string(url) + ": bad port");
    out.port = p;
  }
  return out;
}

Status EgressPolicy::Check(std::string_view url) const {
  AGENTRY_ASSIGN_OR_RETURN(const ParsedUrl parsed, ParseUrl(url));
  for (const config::EgressRule& rule : allow_) {
    if (!HostMatches(rule.host, parsed.host)) continue;
    if (rule.ports.empty() ||
        std::find(rule.ports.begin(), rule.ports.end(), parsed.port) != rule.ports.end()) {
      return OkStatus();
    }
  }
  return PermissionDeniedError("egress to " + parsed.host + ":" + std::to_string(parsed.port) +
                               " is not in spec.egress.allow");
}

}  // namespace agentry::tools
