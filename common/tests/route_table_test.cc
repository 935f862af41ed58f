#include "common/http/route_table.h"

#include <gtest/gtest.h>

namespace agentry::http {
namespace {

TEST(RouteTableTest, LiteralAndCaptureSegments) {
  RouteTable t;
  ASSERT_TRUE(t.Add("GET", "/v1/sessions", 0).ok());
  ASSERT_TRUE(t.Add("GET", "/v1/sessions/{id}", 1).ok());
  ASSERT_TRUE(t.Add("POST", "/v1/sessions/{id}/approvals/{call}", 2).ok());

  auto m = t.Find("GET", "/v1/sessions/", nullptr);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->index, 0u);
  m = t.Find("GET", "/v1/sessions/abc", nullptr);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->index, 1u);
  EXPECT_EQ(m->pattern, "/v1/sessions/{id}");
  EXPECT_EQ(m->params.at("id"), "abc");
  m = t.Find("POST", "/v1/sessions/s1/approvals/c9", nullptr);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->params.at("call"), "c9");
  EXPECT_FALSE(t.Find("GET", "/v1/sessions/a/b", nullptr));
}

TEST(RouteTableTest, WrongMethodListsAllowed) {
  RouteTable t;
  ASSERT_TRUE(t.Add("GET", "/x/{id}", 0).ok());
  ASSERT_TRUE(t.Add("DELETE", "/x/{id}", 1).ok());
  std::vector<std::string> allowed;
  EXPECT_FALSE(t.Find("PUT", "/x/1", &allowed));
  EXPECT_EQ(allowed, (std::vector<std::string>{"GET", "DELETE"}));
  EXPECT_FALSE(t.Find("PUT", "/nothing", &allowed));
  EXPECT_TRUE(allowed.empty());
}

TEST(RouteTableTest, RejectsBadPatterns) {
  RouteTable t;
  EXPECT_FALSE(t.Add("GET", "no-slash", 0).ok());
  EXPECT_FALSE(t.Add("GET", "/a/{open", 0).ok());
  EXPECT_FALSE(t.Add("GET", "/a/{}", 0).ok());
  EXPECT_FALSE(t.Add("GET", "/a/{x}/{x}", 0).ok());
  EXPECT_FALSE(t.Add("", "/a", 0).ok());
  ASSERT_TRUE(t.Add("GET", "/a", 0).ok());
  Status dup = t.Add("GET", "/a/", 1);
  EXPECT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("twice"), std::string::npos);
}

TEST(SplitPathTest, DropsEmptySegments) {
  EXPECT_EQ(SplitPath("//a///b/"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(SplitPath("/").empty());
}

}  // namespace
}  // namespace agentry::http
