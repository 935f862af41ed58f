// runtime/tools/egress_policy.h — which hosts an agent's tools may reach: spec.egress.allow,
// enforced in the runtime before any connection is made (the operator's NetworkPolicy
// enforces it again at the network).
//
//   EgressPolicy egress(spec.egress_allow);
//   if (Status s = egress.Check("http://tickets.team-a.svc/api/tickets/7"); !s.ok()) ...
//
// A rule's host matches the URL's host exactly (case-insensitively), or, written "*.suffix",
// any host below that suffix (not the suffix itself). A rule without ports allows any port;
// a URL without one has its scheme's (80, 443).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/agent_spec.h"
#include "common/status.h"

namespace agentry::tools {

// The parts of an http(s) URL the policy and the tools need.
struct ParsedUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower case, without brackets for IPv6
  int64_t port = 0;    // explicit or the scheme's
  std::string target;  // path and query, "/" when empty
};

// INVALID_ARGUMENT for anything but http(s)://host[:port][/...] with a non-empty host, or
// with user info ("user@host" hides the real host from a careless reader).
StatusOr<ParsedUrl> ParseUrl(std::string_view url);

class EgressPolicy {
 public:
  explicit EgressPolicy(std::vector<config::EgressRule> allow) : allow_(std::move(allow)) {}

  // OK when `url` may be reached; PERMISSION_DENIED naming the host and port otherwise.
  Status Check(std::string_view url) const;

 private:
  std::vector<config::EgressRule> allow_;
};

}  // namespace agentry::tools
