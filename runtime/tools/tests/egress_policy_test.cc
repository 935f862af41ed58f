// EgressPolicy: exact and wildcard hosts, ports (explicit and the scheme's), and URLs that
// try to hide their host.
#include "runtime/tools/egress_policy.h"

#include <gtest/gtest.h>

namespace agentry::tools {
namespace {

TEST(EgressPolicyTest, AllowsOnlyListedHostsAndPorts) {
  const EgressPolicy egress(
      {{"tickets.team-a.svc", {80}}, {"*.example.com", {}}, {"Jira.Tools.svc", {8443, 443}}});
  EXPECT_TRUE(egress.Check("http://tickets.team-a.svc/api/tickets/7").ok());
  EXPECT_TRUE(egress.Check("http://TICKETS.team-a.svc:80/x?y=1").ok());
  EXPECT_TRUE(egress.Check("https://api.example.com:9999/").ok());
  EXPECT_TRUE(egress.Check("https://jira.tools.svc/rest").ok());
  EXPECT_TRUE(egress.Check("https://jira.tools.svc:8443").ok());
  const Status port = egress.Check("http://tickets.team-a.svc:8080/api");
  EXPECT_EQ(port.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(port.message(), "egress to tickets.team-a.svc:8080 is not in spec.egress.allow");
  EXPECT_EQ(egress.Check("https://tickets.team-a.svc/").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(egress.Check("http://example.com/").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(egress.Check("http://evil.com/.example.com").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(egress.Check("http://api.example.com.evil.com/").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(egress.Check("http://tickets.team-a.svc@evil.com/").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(egress.Check("ftp://tickets.team-a.svc/").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(egress.Check("http:///x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(egress.Check("http://tickets.team-a.svc:99999/").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(EgressPolicy({}).Check("http://tickets.team-a.svc/").code(),
            StatusCode::kPermissionDenied);
}

TEST(EgressPolicyTest, ParsesIpv6AndDefaults) {
  StatusOr<ParsedUrl> v6 = ParseUrl("http://[::1]:8080/a");
  ASSERT_TRUE(v6.ok()) << v6.status().message();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  StatusOr<ParsedUrl> bare = ParseUrl("https://h.svc?q=1");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->port, 443);
  EXPECT_EQ(bare->target, "/?q=1");
}

}  // namespace
}  // namespace agentry::tools
