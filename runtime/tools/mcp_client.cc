// runtime/tools/mcp_client.cc — see mcp_client.h.
#include "runtime/tools/mcp_client.h"

#include <algorithm>

#include "common/file.h"
#include "common/http/client.h"
#include "common/http/sse.h"

namespace agentry::tools {
namespace {

// JSON-RPC error codes for a request the server refused rather than failed on.
bool IsClientError(int64_t code) { return code == -32600 || code == -32601 || code == -32602; }

}  // namespace

StatusOr<nlohmann::json> McpClient::Post(const nlohmann::json& message, int64_t id,
                                         const ToolContext* context, const std::atomic<bool>* stop,
                                         int* http_status) {
  AGENTRY_RETURN_IF_ERROR(egress_->Check(url_));
  http::ClientRequest request;
  request.method = "POST";
  request.url = url_;
  request.body = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  request.timeout = options_.timeout;
  request.max_response_bytes = options_.max_response_bytes;
  request.headers = {{"Accept", "application/json, text/event-stream"},
                     {"MCP-Protocol-Version", std::string(kMcpProtocolVersion)}};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!session_id_.empty()) request.headers.emplace_back("Mcp-Session-Id", session_id_);
  }
  if (!options_.token_file.empty()) {
    StatusOr<std::string> token = ReadFileToString(options_.token_file);
    if (!token.ok()) return UnavailableError("service-account token: " + token.status().message());
    while (!token->empty() && (token->back() == '\n' || token->back() == '\r')) token->pop_back();
    request.headers.emplace_back("Authorization", "Bearer " + *token);
  }
  if (context != nullptr) {
    request.timeout = std::min(request.timeout, context->max_time);
    request.headers.emplace_back("X-Agentry-Agent", context->agent);
    request.headers.emplace_back("X-Agentry-Session", context->session_id);
    request.headers.emplace_back("X-Agentry-Tool-Call", context->call_id);
    if (!context->on_behalf_of.empty()) {
      request.headers.emplace_back("X-Agentry-On-Behalf-Of", context->on_behalf_of);
    }
  }
  AGENTRY_ASSIGN_OR_RETURN(http::ClientResponse response, http::Fetch(request, stop));
  *http_status = response.status;
  if (id < 0) {  // a notification: 202 Accepted, no body
    if (response.status >= 300) {
      return UnavailableError("MCP server " + url_ + ": HTTP " + std::to_string(response.status));
    }
    return nlohmann::json();
  }
  if (response.status >= 300) {
    return UnavailableError("MCP server " + url_ + ": HTTP " + std::to_string(response.status));
  }
  if (response.truncated) {
    return UnavailableError("MCP server " + url_ + ": response larger than " +
                            std::to_string(options_.max_response_bytes) + " bytes");
  }
  if (const std::string sid = response.Header("mcp-session-id"); !sid.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    session_id_ = sid;
  }
  std::vector<nlohmann::json> messages;
  if (response.Header("content-type").starts_with("text/event-stream")) {
    http::SseParser parser;
    std::vector<http::SseEvent> events = parser.Feed(response.body);
    const std::vector<http::SseEvent> last = parser.Feed("\n\n");  // a stream cut mid-event
    events.insert(events.end(), last.begin(), last.end());
    for (const http::SseEvent& e : events) {
      nlohmann::json m = nlohmann::json::parse(e.data, nullptr, false);
      if (!m.is_discarded()) messages.push_back(std::move(m));
    }
  } else {
    nlohmann::json m = nlohmann::json::parse(response.body, nullptr, false);
    if (m.is_discarded()) {
      return UnavailableError("MCP server " + url_ + ": the response is not JSON");
    }
    if (m.is_array()) {
      for (nlohmann::json& one : m) messages.push_back(std::move(one));
    } else {
      messages.push_back(std::move(m));
    }
  }
  for (const nlohmann::json& m : messages) {
    if (!m.is_object() || !m.contains("id") || m["id"] != id) continue;
    if (m.contains("error") && m["error"].is_object()) {
      const nlohmann::json& e = m["error"];
      const int64_t code =
          e.contains("code") && e["code"].is_number_integer() ? e["code"].get<int64_t>() : 0;
      const std::string text =
          "MCP error " + std::to_string(code) + ": " +
          (e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>()
                                                             : std::string("(no message)"));
      return IsClientError(code) ? InvalidArgumentError(text) : UnavailableError(text);
    }
    if (!m.contains("result")) {
      return UnavailableError("MCP server " + url_ + ": a response without result or error");
    }
    return m["result"];
  }
  return UnavailableError("MCP server " + url_ + ": no response to request " + std::to_string(id));
}

Status McpClient::Initialize(const std::atomic<bool>* stop) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    session_id_.clear();
    initialized_ = false;
  }
  const int64_t id = next_id_++;
  const nlohmann::json init = {{"jsonrpc", "2.0"},
                               {"id", id},
                               {"method", "initialize"},
                               {"params",
                                {{"protocolVersion", kMcpProtocolVersion},
                                 {"capabilities", nlohmann::json::object()},
                                 {"clientInfo", {{"name", "agentry-runtime"}, {"version", "1"}}}}}};
  int status = 0;
  AGENTRY_ASSIGN_OR_RETURN(const nlohmann::json result, Post(init, id, nullptr, stop, &status));
  if (!result.is_object() || !result.contains("protocolVersion")) {
    return UnavailableError("MCP server " + url_ + ": initialize answered without a protocol");
  }
  const nlohmann::json initialized = {{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}};
  AGENTRY_RETURN_IF_ERROR(Post(initialized, -1, nullptr, stop, &status).status());
  std::lock_guard<std::mutex> lock(mu_);
  initialized_ = true;
  return OkStatus();
}

StatusOr<nlohmann::json> McpClient::Request(const std::string& method, const nlohmann::json& params,
                                            const ToolContext* context,
                                            const std::atomic<bool>* stop) {
  for (int attempt = 0;; ++attempt) {
    bool initialized = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      initialized = initialized_;
    }
    if (!initialized) AGENTRY_RETURN_IF_ERROR(Initialize(stop));
    const int64_t id = next_id_++;
    const nlohmann::json message = {
        {"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
    int status = 0;
    StatusOr<nlohmann::json> result = Post(message, id, context, stop, &status);
    // A server that lost the session answers 404: start a new one, once.
    if (!result.ok() && status == 404 && attempt == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      initialized_ = false;
      continue;
    }
    return result;
  }
}

StatusOr<std::vector<McpTool>> McpClient::ListTools(const std::atomic<bool>* stop) {
  std::vector<McpTool> tools;
  nlohmann::json params = nlohmann::json::object();
  for (int page = 0; page < 100; ++page) {
    AGENTRY_ASSIGN_OR_RETURN(const nlohmann::json result,
                             Request("tools/list", params, nullptr, stop));
    if (!result.is_object() || !result.contains("tools") || !result["tools"].is_array()) {
      return UnavailableError("MCP server " + url_ + ": tools/list answered without tools");
    }
    for (const nlohmann::json& t : result["tools"]) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) continue;
      McpTool tool;
      tool.name = t["name"];
      if (t.contains("description") && t["description"].is_string()) {
        tool.description = t["description"];
      }
      tool.input_schema = t.value("inputSchema", nlohmann::json());
      tools.push_back(std::move(tool));
    }
    if (!result.contains("nextCursor") || !result["nextCursor"].is_string()) return tools;
    params["cursor"] = result["nextCursor"];
  }
  return tools;
}

ToolRun McpClient::CallTool(const std::string& name, const nlohmann::json& arguments,
                            const ToolContext& context) {
  ToolRun run;
  StatusOr<nlohmann::json> result =
      Request("tools/call", {{"name", name}, {"arguments", arguments}}, &context, context.stop);
  if (!result.ok()) {
    run.ok = false;
    run.error = result.status().message();
    return run;
  }
  if (result->contains("structuredContent")) {
    run.body = (*result)["structuredContent"].dump(-1, ' ', false,
                                                   nlohmann::json::error_handler_t::replace);
  } else if (result->contains("content") && (*result)["content"].is_array()) {
    for (const nlohmann::json& c : (*result)["content"]) {
      if (c.is_object() && c.contains("type") && c["type"] == "text" && c.contains("text") &&
          c["text"].is_string()) {
        if (!run.body.empty()) run.body += "\n";
        run.body += c["text"].get<std::string>();
      }
    }
  }
  if (result->contains("isError") && (*result)["isError"] == true) {
    run.ok = false;
    run.error = "the MCP tool reported an error";
  }
  return run;
}

}  // namespace agentry::tools
