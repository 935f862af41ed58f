// runtime/tools/http_tool.cc — see http_tool.h.
#include "runtime/tools/http_tool.h"

#include <algorithm>

#include "common/file.h"
#include "common/http/client.h"

namespace agentry::tools {
namespace {

// RFC 3986 unreserved characters stay; every other byte is %XX.
std::string PercentEscape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ArgumentText(const nlohmann::json& value) {
  return value.is_string() ? value.get<std::string>()
                           : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

StatusOr<std::string> ReadTrimmed(const std::string& path) {
  AGENTRY_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

}  // namespace

StatusOr<std::string> FillUrlTemplate(const std::string& url_template, nlohmann::json* rest) {
  std::string url;
  size_t at = 0;
  while (true) {
    const size_t open = url_template.find('{', at);
    if (open == std::string::npos) break;
    const size_t close = url_template.find('}', open);
    if (close == std::string::npos) break;
    url.append(url_template, at, open - at);
    const std::string name = url_template.substr(open + 1, close - open - 1);
    if (!rest->is_object() || !rest->contains(name)) {
      return InvalidArgumentError("the URL needs argument \"" + name + "\"");
    }
    url += PercentEscape(ArgumentText((*rest)[name]));
    rest->erase(name);
    at = close + 1;
  }
  url.append(url_template, at);
  return url;
}

ToolRun HttpTool::Call(const nlohmann::json& arguments, const ToolContext& context) const {
  ToolRun run;
  const auto fail = [&](const Status& s) {
    run.ok = false;
    run.error = s.message();
    return run;
  };
  nlohmann::json rest = arguments.is_object() ? arguments : nlohmann::json::object();
  StatusOr<std::string> url = FillUrlTemplate(spec_.url, &rest);
  if (!url.ok()) return fail(url.status());
  http::ClientRequest request;
  request.method = spec_.method;
  const bool query = spec_.method == "GET" || spec_.method == "DELETE";
  if (query && !rest.empty()) {
    std::string q;
    for (const auto& [name, value] : rest.items()) {
      q += (q.empty() ? "" : "&") + PercentEscape(name) + "=" + PercentEscape(ArgumentText(value));
    }
    *url += (url->find('?') == std::string::npos ? "?" : "&") + q;
  } else if (!query) {
    request.body = rest.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (Status s = egress_->Check(*url); !s.ok()) return fail(s);
  request.url = *url;
  request.timeout = std::min(spec_.timeout, context.max_time);
  request.max_response_bytes = spec_.max_response_size.value;
  request.headers = {{"X-Agentry-Agent", context.agent},
                     {"X-Agentry-Session", context.session_id},
                     {"X-Agentry-Tool-Call", context.call_id}};
  if (!context.on_behalf_of.empty()) {
    request.headers.emplace_back("X-Agentry-On-Behalf-Of", context.on_behalf_of);
  }
  if (spec_.service_account_token) {
    StatusOr<std::string> token = ReadTrimmed(options_.service_account_token_file);
    if (!token.ok()) return fail(token.status());
    request.headers.emplace_back("Authorization", "Bearer " + *token);
  }
  for (const config::HttpHeaderSpec& h : spec_.headers) {
    if (h.secret_name.empty()) {
      request.headers.emplace_back(h.name, h.value);
      continue;
    }
    StatusOr<std::string> value =
        ReadTrimmed(options_.secrets_dir + "/" + h.secret_name + "/" + h.secret_key);
    if (!value.ok()) {
      return fail(InvalidArgumentError("header " + h.name + ": secret " + h.secret_name + "/" +
                                       h.secret_key + " is not mounted"));
    }
    request.headers.emplace_back(h.name, *value);
  }
  StatusOr<http::ClientResponse> response = http::Fetch(request, context.stop);
  if (!response.ok()) return fail(response.status());
  run.http_status = response->status;
  run.body = std::move(response->body);
  run.truncated = response->truncated;
  if (response->status >= 300) {
    run.ok = false;
    run.error = "HTTP " + std::to_string(response->status);
  }
  return run;
}

}  // namespace agentry::tools
