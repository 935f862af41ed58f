// runtime/tools/mcp_client.h — a Model Context Protocol client over Streamable HTTP, for the
// tools an MCP server offers (spec.tools[].mcp).
//
// JSON-RPC 2.0 requests are POSTed to the server's one endpoint with
// "Accept: application/json, text/event-stream"; the answer is either a JSON body or an SSE
// stream whose events carry JSON-RPC messages, of which the one with the request's id is the
// response. The session the server assigns at `initialize` (the Mcp-Session-Id header) is sent
// on every later request; a server that forgot it (404) is initialized again, once.
//
//   McpClient mcp(url, &egress, options);
//   StatusOr<std::vector<McpTool>> tools = mcp.ListTools(nullptr);  // initializes first
//   StatusOr<ToolRun> run = mcp.CallTool("search", {{"q", "crash"}}, context);
//
// Every request passes the egress policy first and carries the provenance headers the HTTP
// tools send (http_tool.h) when it is made for a call. JSON-RPC errors are UNAVAILABLE (the
// server failed) or INVALID_ARGUMENT (it refused the request), with the server's message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "runtime/tools/egress_policy.h"
#include "runtime/tools/tool_context.h"
#include "runtime/tools/tool_result.h"

namespace agentry::tools {

inline constexpr std::string_view kMcpProtocolVersion = "2025-06-18";

struct McpTool {
  std::string name;
  std::string description;
  nlohmann::json input_schema;  // the server's JSON schema of the arguments
};

struct McpClientOptions {
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  int64_t max_response_bytes = int64_t{1} << 20;
  // When set, every request carries "Authorization: Bearer" with this file's token (the
  // pod's projected service-account token, read at each request: it rotates).
  std::string token_file;
};

class McpClient {
 public:
  McpClient(std::string url, const EgressPolicy* egress, McpClientOptions options = {})
      : url_(std::move(url)), egress_(egress), options_(options) {}

  // Every tool the server lists (all pages).
  StatusOr<std::vector<McpTool>> ListTools(const std::atomic<bool>* stop);
  // The call's result: its text content (or structured content, as JSON) as the body; a
  // result the server flags isError is a failed run with that body.
  ToolRun CallTool(const std::string& name, const nlohmann::json& arguments,
                   const ToolContext& context);

 private:
  // One JSON-RPC request; its result. Initializes the session first when there is none.
  StatusOr<nlohmann::json> Request(const std::string& method, const nlohmann::json& params,
                                   const ToolContext* context, const std::atomic<bool>* stop);
  // POSTs `message`; the response with `id` (or nothing for a notification, id < 0).
  StatusOr<nlohmann::json> Post(const nlohmann::json& message, int64_t id,
                                const ToolContext* context, const std::atomic<bool>* stop,
                                int* http_status);
  Status Initialize(const std::atomic<bool>* stop);

  std::string url_;
  const EgressPolicy* egress_;
  McpClientOptions options_;
  std::mutex mu_;  // guards the session
  std::string session_id_;
  bool initialized_ = false;
  std::atomic<int64_t> next_id_{1};
};

}  // namespace agentry::tools
