// remember and recall through a real state sidecar: facts come back by keyword, per
// on-behalf-of user unless the memory is shared, and survive a new client (a restarted
// runtime). Through the Toolbox, as a tool call runs them.
#include "runtime/tools/memory_tools.h"

#include <gtest/gtest.h>

#include "runtime/harness/tests/data_plane.h"
#include "runtime/tools/toolbox.h"

namespace agentry::tools {
namespace {

using nlohmann::json;

config::ManagedAgent Agent(bool shared) {
  config::ManagedAgent agent;
  agent.metadata.name = "triage";
  agent.metadata.namespace_name = "team-a";
  agent.spec.memory.shared = shared;
  config::ToolSpec remember;
  remember.name = "remember";
  remember.builtin = config::kBuiltinRemember;
  config::ToolSpec recall;
  recall.name = "recall";
  recall.builtin = config::kBuiltinRecall;
  agent.spec.tools = {remember, recall};
  return agent;
}

ToolContext For(const std::string& user) {
  return {.agent = "team-a/triage", .session_id = "s-" + user, .on_behalf_of = user};
}

std::vector<std::string> Texts(const ToolOutcome& out) {
  std::vector<std::string> texts;
  EXPECT_TRUE(out.ok) << out.content;
  const json parsed = json::parse(out.content);
  for (const json& m : parsed["memories"]) texts.push_back(m["text"]);
  return texts;
}

TEST(MemoryToolsTest, RecallFindsWhatTheSameUserRemembered) {
  harness::LocalDataPlane plane;
  ASSERT_EQ(plane.Start(), "");
  {
    harness::StateClient state(plane.state_target());
    StatusOr<std::unique_ptr<Toolbox>> box = Toolbox::Create(Agent(false), {}, &state);
    ASSERT_TRUE(box.ok()) << box.status().message();
    EXPECT_EQ((*box)->decls().size(), 2u);
    const ToolOutcome stored =
        (*box)->Run({"remember", {{"text", "alice is on the payments team"}}}, For("alice"));
    ASSERT_TRUE(stored.ok) << stored.content;
    EXPECT_EQ(json::parse(stored.content)["remembered"], true);
    ASSERT_TRUE((*box)->Run({"remember", {{"text", "bob prefers email"}}}, For("bob")).ok);
  }
  // A new client, as a restarted runtime has: the memory is in the sidecar.
  harness::StateClient state(plane.state_target());
  StatusOr<std::unique_ptr<Toolbox>> box = Toolbox::Create(Agent(false), {}, &state);
  ASSERT_TRUE(box.ok());
  EXPECT_EQ(Texts((*box)->Run({"recall", {{"query", "which team"}}}, For("alice"))),
            std::vector<std::string>{"alice is on the payments team"});
  // Bob's memory holds only his own facts.
  EXPECT_EQ(Texts((*box)->Run({"recall", {{"query", "team email"}}}, For("bob"))),
            std::vector<std::string>{"bob prefers email"});
  // Arguments that do not fit the tool's schema never reach the sidecar.
  const ToolOutcome bad = (*box)->Run({"remember", {{"txt", "x"}}}, For("alice"));
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.content, R"({"error":"arguments do not match the parameters of remember"})");
  EXPECT_FALSE((*box)->Run({"forget", json::object()}, For("alice")).ok);

  // Shared memory: one scope for every user of the agent.
  StatusOr<std::unique_ptr<Toolbox>> shared = Toolbox::Create(Agent(true), {}, &state);
  ASSERT_TRUE(shared.ok());
  ASSERT_TRUE(
      (*shared)->Run({"remember", {{"text", "the on-call team is payments"}}}, For("alice")).ok);
  EXPECT_EQ(Texts((*shared)->Run({"recall", {{"query", "on-call"}}}, For("bob"))),
            std::vector<std::string>{"the on-call team is payments"});
}

TEST(MemoryToolsTest, ASchemaTheConstraintCannotExpressIsRefusedAtCreate) {
  config::ManagedAgent agent = Agent(false);
  config::ToolSpec bad;
  bad.name = "search";
  bad.parameters = json::parse(R"({"type":"object","properties":{"q":{"pattern":"^a"}}})");
  bad.http = config::HttpToolSpec();
  bad.http->url = "http://x/";
  agent.spec.tools.push_back(bad);
  StatusOr<std::unique_ptr<Toolbox>> box = Toolbox::Create(agent, {}, nullptr);
  ASSERT_FALSE(box.ok());
  EXPECT_EQ(box.status().message(),
            "spec.tools[2] (search).parameters.properties.q.pattern: unsupported keyword");
}

}  // namespace
}  // namespace agentry::tools
