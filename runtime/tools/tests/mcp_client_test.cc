// The MCP client and MCP tools against a real MCP server written for the test (Streamable
// HTTP on common/http's server): initialize and its session header, paginated tools/list
// filtered by allowedTools, tools/call answered as JSON or as an SSE stream, server errors,
// isError results, timeouts, a server that forgets the session, and one that cannot be
// reached.
#include "runtime/tools/mcp_client.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "common/http/server.h"
#include "common/metrics/registry.h"
#include "runtime/tools/toolbox.h"

namespace agentry::tools {
namespace {

using nlohmann::json;

class McpServer {
 public:
  McpServer() {
    server_ = std::make_unique<http::HttpServer>(http::HttpServerOptions{.registry = &registry_});
    EXPECT_TRUE(
        server_->Route("POST", "/mcp", [this](const http::HttpRequest& r) { return Handle(r); })
            .ok());
    EXPECT_TRUE(server_->Start().ok());
  }
  ~McpServer() { server_->Stop(); }
  std::string url() const { return server_->base_url() + "/mcp"; }

  std::atomic<int> initializations{0};
  std::atomic<bool> forget_sessions{false};
  std::mutex mu;
  std::vector<http::HttpRequest> calls;  // tools/call requests

 private:
  static http::HttpResponse Result(const json& id, const json& result) {
    return http::HttpResponse::Json(200, {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
  }

  http::HttpResponse Handle(const http::HttpRequest& r) {
    const json m = json::parse(r.body, nullptr, false);
    if (m.is_discarded()) return http::HttpResponse::Json(400, {{"error", "not json"}});
    const std::string method = m.value("method", "");
    if (method == "initialize") {
      const int n = ++initializations;
      http::HttpResponse out =
          Result(m["id"], {{"protocolVersion", "2025-06-18"},
                           {"capabilities", {{"tools", json::object()}}},
                           {"serverInfo", {{"name", "test-mcp"}, {"version", "1"}}}});
      out.headers.emplace_back("Mcp-Session-Id", "sess-" + std::to_string(n));
      return out;
    }
    const std::string session = r.Header("mcp-session-id");
    if (session.empty()) return http::HttpResponse::Json(400, {{"error", "no session"}});
    if (forget_sessions.exchange(false) ||
        session != "sess-" + std::to_string(initializations.load())) {
      return http::HttpResponse::Json(404, {{"error", "unknown session"}});
    }
    if (method == "notifications/initialized") {
      http::HttpResponse out;
      out.status = 202;
      return out;
    }
    if (method == "tools/list") {
      const json object = {{"type", "object"}};
      if (!m["params"].contains("cursor")) {
        return Result(m["id"], {{"tools",
                                 {{{"name", "search"},
                                   {"description", "Search issues."},
                                   {"inputSchema",
                                    {{"type", "object"},
                                     {"properties", {{"q", {{"type", "string"}}}}},
                                     {"required", {"q"}}}}},
                                  {{"name", "delete_all"}, {"inputSchema", object}}}},
                                {"nextCursor", "p2"}});
      }
      return Result(m["id"],
                    {{"tools",
                      {{{"name", "bad_schema"},
                        {"inputSchema",
                         {{"type", "object"},
                          {"properties", {{"q", {{"type", "string"}, {"pattern", "^a"}}}}}}}},
                       {{"name", "fail"}, {"inputSchema", object}},
                       {{"name", "iserr"}, {"inputSchema", object}},
                       {{"name", "slow"}, {"inputSchema", object}}}}});
    }
    if (method == "tools/call") {
      {
        std::lock_guard<std::mutex> lock(mu);
        calls.push_back(r);
      }
      const std::string name = m["params"]["name"];
      if (name == "search") {
        // Answered as an SSE stream: a notification first, then the response.
        const json note = {{"jsonrpc", "2.0"},
                           {"method", "notifications/progress"},
                           {"params", {{"progress", 1}}}};
        const json response = {
            {"jsonrpc", "2.0"},
            {"id", m["id"]},
            {"result",
             {{"content",
               {{{"type", "text"},
                 {"text", "found: " + m["params"]["arguments"]["q"].get<std::string>()}}}}}}};
        http::HttpResponse out;
        out.content_type = "text/event-stream";
        out.body = "event: message\ndata: " + note.dump() +
                   "\n\nevent: message\ndata: " + response.dump() + "\n\n";
        return out;
      }
      if (name == "fail") {
        return http::HttpResponse::Json(200, {{"jsonrpc", "2.0"},
                                              {"id", m["id"]},
                                              {"error", {{"code", -32603}, {"message", "boom"}}}});
      }
      if (name == "iserr") {
        return Result(m["id"], {{"content", {{{"type", "text"}, {"text", "no such project"}}}},
                                {"isError", true}});
      }
      if (name == "slow") std::this_thread::sleep_for(std::chrono::seconds(2));
      return Result(m["id"], {{"content", json::array()}});
    }
    return http::HttpResponse::Json(
        200, {{"jsonrpc", "2.0"},
              {"id", m["id"]},
              {"error", {{"code", -32601}, {"message", "no method " + method}}}});
  }

  metrics::Registry registry_;
  std::unique_ptr<http::HttpServer> server_;
};

config::ManagedAgent Agent(const std::string& url, std::vector<std::string> allowed) {
  config::ManagedAgent agent;
  agent.metadata.name = "triage";
  agent.metadata.namespace_name = "team-a";
  config::ToolSpec jira;
  jira.name = "jira";
  jira.mcp = config::McpToolSpec{url, std::move(allowed)};
  agent.spec.tools = {jira};
  agent.spec.egress_allow = {{"127.0.0.1", {}}};
  return agent;
}

ToolContext Context() {
  return {
      .agent = "team-a/triage", .session_id = "s-1", .on_behalf_of = "alice", .call_id = "call_1"};
}

std::vector<std::string> Names(const Toolbox& box) {
  std::vector<std::string> names;
  for (const runtime::ToolDecl& d : box.decls()) names.push_back(d.name);
  return names;
}

TEST(McpToolsTest, AllowedToolsComeFromTheServerWithTheirSchemas) {
  McpServer server;
  StatusOr<std::unique_ptr<Toolbox>> box = Toolbox::Create(
      Agent(server.url(), {"search", "bad_schema", "fail", "iserr", "missing"}), {}, nullptr);
  ASSERT_TRUE(box.ok()) << box.status().message();
  EXPECT_EQ(Names(**box), (std::vector<std::string>{"search", "fail", "iserr"}));
  EXPECT_EQ((*box)->Find("search")->description, "Search issues.");
  EXPECT_EQ((*box)->Find("search")->parameters["required"], json{"q"});
  EXPECT_EQ((*box)->skipped(),
            (std::vector<std::string>{
                "jira/bad_schema: tools[0] (bad_schema).parameters.properties.q.pattern: "
                "unsupported keyword",
                "jira/missing: the server does not list it"}));
  EXPECT_EQ(Toolbox::Create(Agent(server.url(), {}), {}, nullptr).value()->decls().size(), 5u);
}

TEST(McpToolsTest, CallsCarryTheSessionAndProvenanceAndReadSseAnswers) {
  McpServer server;
  StatusOr<std::unique_ptr<Toolbox>> box =
      Toolbox::Create(Agent(server.url(), {"search", "fail", "iserr"}), {}, nullptr);
  ASSERT_TRUE(box.ok()) << box.status().message();
  const ToolOutcome found = (*box)->Run({"search", {{"q", "crash"}}}, Context());
  ASSERT_TRUE(found.ok) << found.content;
  EXPECT_EQ(json::parse(found.content), (json{{"text", "found: crash"}}));
  {
    std::lock_guard<std::mutex> lock(server.mu);
    ASSERT_EQ(server.calls.size(), 1u);
    EXPECT_EQ(server.calls[0].Header("mcp-session-id"), "sess-1");
    EXPECT_EQ(server.calls[0].Header("x-agentry-on-behalf-of"), "alice");
    EXPECT_EQ(server.calls[0].Header("x-agentry-tool-call"), "call_1");
    EXPECT_EQ(server.calls[0].Header("mcp-protocol-version"), "2025-06-18");
    EXPECT_EQ(server.calls[0].Header("authorization"), "");  // not configured
  }
  const ToolOutcome failed = (*box)->Run({"fail", json::object()}, Context());
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.error, "MCP error -32603: boom");
  const ToolOutcome flagged = (*box)->Run({"iserr", json::object()}, Context());
  EXPECT_FALSE(flagged.ok);
  EXPECT_EQ(json::parse(flagged.content),
            (json{{"text", "no such project"}, {"error", "the MCP tool reported an error"}}));
  // Arguments outside the server's schema never reach it.
  EXPECT_FALSE((*box)->Run({"search", {{"query", "x"}}}, Context()).ok);
  EXPECT_EQ(server.calls.size(), 3u);
}

TEST(McpToolsTest, TheProjectedTokenIsSentWhenConfigured) {
  McpServer server;
  const std::string token = ::testing::TempDir() + "/mcp_sa_token_" + std::to_string(getpid());
  std::ofstream(token) << "projected\n";
  config::ManagedAgent agent = Agent(server.url(), {"search"});
  agent.spec.tools[0].mcp->service_account_token = true;
  ToolboxOptions options;
  options.http.service_account_token_file = token;
  StatusOr<std::unique_ptr<Toolbox>> box = Toolbox::Create(agent, options, nullptr);
  ASSERT_TRUE(box.ok()) << box.status().message();
  ASSERT_TRUE((*box)->Run({"search", {{"q", "x"}}}, Context()).ok);
  std::lock_guard<std::mutex> lock(server.mu);
  ASSERT_EQ(server.calls.size(), 1u);
  EXPECT_EQ(server.calls[0].Header("authorization"), "Bearer projected");
  std::filesystem::remove(token);
}

TEST(McpToolsTest, AForgottenSessionIsStartedAgainOnce) {
  McpServer server;
  StatusOr<std::unique_ptr<Toolbox>> box =
      Toolbox::Create(Agent(server.url(), {"search"}), {}, nullptr);
  ASSERT_TRUE(box.ok());
  ASSERT_EQ(server.initializations.load(), 1);
  server.forget_sessions = true;
  const ToolOutcome found = (*box)->Run({"search", {{"q", "again"}}}, Context());
  EXPECT_TRUE(found.ok) << found.content;
  EXPECT_EQ(server.initializations.load(), 2);
}

TEST(McpToolsTest, TimeoutsAndUnreachableServersAreClearErrors) {
  McpServer server;
  ToolboxOptions options;
  options.mcp.timeout = std::chrono::milliseconds(300);
  StatusOr<std::unique_ptr<Toolbox>> box =
      Toolbox::Create(Agent(server.url(), {"slow"}), options, nullptr);
  ASSERT_TRUE(box.ok());
  const ToolOutcome slow = (*box)->Run({"slow", json::object()}, Context());
  EXPECT_FALSE(slow.ok);
  EXPECT_EQ(slow.error, "no answer within the timeout (300 ms)");
  ToolContext short_of_time = Context();
  short_of_time.max_time = std::chrono::milliseconds(200);
  EXPECT_EQ((*box)->Run({"slow", json::object()}, short_of_time).error,
            "no answer within the timeout (200 ms)");

  // A server that is down, or outside the egress list, leaves its tools out; the rest stays.
  config::ManagedAgent agent = Agent("http://127.0.0.1:1/mcp", {});
  config::ToolSpec outside;
  outside.name = "other";
  outside.mcp = config::McpToolSpec{"http://mcp.elsewhere.svc/mcp", {}};
  agent.spec.tools.push_back(outside);
  StatusOr<std::unique_ptr<Toolbox>> down = Toolbox::Create(agent, options, nullptr);
  ASSERT_TRUE(down.ok()) << down.status().message();
  EXPECT_TRUE((*down)->decls().empty());
  ASSERT_EQ((*down)->skipped().size(), 2u);
  EXPECT_EQ((*down)->skipped()[0].rfind("jira: POST http://127.0.0.1:1/mcp: ", 0), 0u)
      << (*down)->skipped()[0];
  EXPECT_EQ((*down)->skipped()[1],
            "other: egress to mcp.elsewhere.svc:80 is not in spec.egress.allow");
}

}  // namespace
}  // namespace agentry::tools
