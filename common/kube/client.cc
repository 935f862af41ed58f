// common/kube/client.cc — see client.h.
#include "common/kube/client.h"

#include <cpprest/http_client.h>

#include "common/file.h"
#include "common/http/await_task.h"

namespace agentry::kube {
namespace {

using Clock = std::chrono::steady_clock;

StatusCode CodeFor(int http_status, const std::string& reason) {
  switch (http_status) {
    case 400:
    case 422:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return reason == "AlreadyExists" ? StatusCode::kAlreadyExists : StatusCode::kAborted;
    case 410:
      return StatusCode::kFailedPrecondition;
    case 429:
      return StatusCode::kResourceExhausted;
    default:
      return http_status >= 500 ? StatusCode::kUnavailable : StatusCode::kUnknown;
  }
}

// A watch has no deadline: it waits for the server or for `stop`.
template <typename T>
Status AwaitStopped(const pplx::task<T>& task, const std::atomic<bool>* stop,
                    pplx::cancellation_token_source* cancel) {
  return http::AwaitTask(task, Clock::time_point::max(), std::chrono::milliseconds(0), stop,
                         cancel);
}

std::string Query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    q += (q.empty() ? "?" : "&") + name + "=" + web::uri::encode_data_string(value);
  }
  return q;
}

}  // namespace

Status ApiError(int http_status, const std::string& body) {
  const Json status = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string reason;
  std::string message;
  if (status.is_object() && status.value("kind", "") == "Status") {
    reason = status.value("reason", "");
    message = status.value("message", "");
  }
  if (reason.empty()) reason = http_status >= 500 ? "InternalError" : "Unknown";
  if (message.empty()) message = body.substr(0, 512);
  return Status(CodeFor(http_status, reason),
                reason + ": " + message + " (HTTP " + std::to_string(http_status) + ")");
}

std::string Reason(const Status& status) {
  const std::string& m = status.message();
  const size_t colon = m.find(':');
  if (colon == std::string::npos || colon == 0) return "";
  for (size_t i = 0; i < colon; ++i) {
    if (!std::isalpha(static_cast<unsigned char>(m[i]))) return "";
  }
  return m.substr(0, colon);
}

struct Client::Impl {
  web::http::client::http_client_config Config(std::chrono::milliseconds timeout) const {
    web::http::client::http_client_config c;
    c.set_timeout(timeout);
    c.set_validate_certificates(!config.insecure_skip_tls_verify);
    const KubeConfig k = config;
    c.set_ssl_context_callback([k](boost::asio::ssl::context& context) {
      boost::system::error_code error;
      // Errors here fail the handshake, which reports them: a CA or key that does not load
      // is a connection error, not a silent downgrade.
      if (!k.ca_file.empty()) context.load_verify_file(k.ca_file, error);
      if (!k.ca_pem.empty()) {
        context.add_certificate_authority(boost::asio::buffer(k.ca_pem), error);
      }
      if (!k.client_cert_pem.empty()) {
        context.use_certificate_chain(boost::asio::buffer(k.client_cert_pem), error);
        context.use_private_key(boost::asio::buffer(k.client_key_pem),
                                boost::asio::ssl::context::pem, error);
      }
    });
    return c;
  }

  KubeConfig config;
  std::unique_ptr<web::http::client::http_client> api;
  std::mutex token_mu;
  std::string token;  // from token_file, re-read each minute
  Clock::time_point token_read{};
};

Client::Client(KubeConfig config, ClientOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      limiter_(options_.qps, options_.burst),
      impl_(std::make_unique<Impl>()) {}

Client::~Client() = default;

StatusOr<std::unique_ptr<Client>> Client::Create(KubeConfig config, ClientOptions options) {
  if (config.server.empty()) return InvalidArgumentError("kube client: no server");
  std::unique_ptr<Client> client(new Client(std::move(config), std::move(options)));
  client->impl_->config = client->config_;
  try {
    client->impl_->api = std::make_unique<web::http::client::http_client>(
        utility::conversions::to_string_t(client->config_.server),
        client->impl_->Config(client->options_.timeout));
  } catch (const std::exception& e) {
    return InvalidArgumentError("kube client: server " + client->config_.server + ": " + e.what());
  }
  return client;
}

StatusOr<std::string> Client::BearerToken() {
  if (config_.token_file.empty()) return config_.token;
  std::lock_guard<std::mutex> lock(impl_->token_mu);
  // The kubelet rotates a projected token well before it expires; a minute-old copy is fine.
  if (impl_->token.empty() || Clock::now() - impl_->token_read > std::chrono::minutes(1)) {
    StatusOr<std::string> text = ReadFileToString(config_.token_file);
    if (!text.ok()) return UnauthenticatedError("token file: " + text.status().message());
    std::string token = *text;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    impl_->token = token;
    impl_->token_read = Clock::now();
  }
  return impl_->token;
}

StatusOr<Json> Client::Call(const std::string& method, const std::string& path_and_query,
                            const std::string& body, const std::string& content_type) {
  limiter_.Acquire();
  ++requests_;
  AGENTRY_ASSIGN_OR_RETURN(const std::string token, BearerToken());
  web::http::http_request request(method);
  request.set_request_uri(path_and_query);
  request.headers().add("Accept", "application/json");
  request.headers().add("User-Agent", options_.user_agent);
  if (!token.empty()) request.headers().add("Authorization", "Bearer " + token);
  if (!body.empty()) request.set_body(body, content_type);
  try {
    web::http::http_response response = impl_->api->request(request).get();
    const std::string text = response.extract_utf8string(true).get();
    if (response.status_code() >= 400) return ApiError(response.status_code(), text);
    Json out = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (out.is_discarded()) {
      return UnavailableError(method + " " + path_and_query + ": the answer is not JSON");
    }
    return out;
  } catch (const std::exception& e) {
    return UnavailableError(method + " " + config_.server + path_and_query + ": " + e.what());
  }
}

StatusOr<Json> Client::Get(const Resource& resource, const std::string& ns,
                           const std::string& name) {
  return Call("GET", resource.Path(ns, name), "", "");
}

StatusOr<Json> Client::List(const Resource& resource, const std::string& ns,
                            const ListOptions& options) {
  return Call(
      "GET",
      resource.Path(ns) + Query({{"labelSelector", options.label_selector},
                                 {"resourceVersion", options.resource_version},
                                 {"limit", options.limit > 0 ? std::to_string(options.limit) : ""},
                                 {"continue", options.continue_token}}),
      "", "");
}

StatusOr<Json> Client::ListAll(const Resource& resource, const std::string& ns,
                               const ListOptions& options) {
  ListOptions page = options;
  AGENTRY_ASSIGN_OR_RETURN(Json all, List(resource, ns, page));
  if (!all.contains("items") || !all["items"].is_array()) all["items"] = Json::array();
  std::string next = all["metadata"].value("continue", "");
  while (!next.empty()) {
    page.continue_token = next;
    page.resource_version.clear();  // a continued list may not name one
    AGENTRY_ASSIGN_OR_RETURN(Json more, List(resource, ns, page));
    if (more.contains("items") && more["items"].is_array()) {
      for (Json& item : more["items"]) all["items"].push_back(std::move(item));
    }
    next = more.contains("metadata") ? more["metadata"].value("continue", "") : "";
  }
  all["metadata"].erase("continue");
  return all;
}

Status Client::Watch(const Resource& resource, const std::string& ns, const WatchOptions& options,
                     const std::function<bool(const WatchEvent&)>& on_event,
                     const std::atomic<bool>* stop) {
  limiter_.Acquire();
  ++requests_;
  AGENTRY_ASSIGN_OR_RETURN(const std::string token, BearerToken());
  const std::string path =
      resource.Path(ns) + Query({{"watch", "true"},
                                 {"resourceVersion", options.resource_version},
                                 {"allowWatchBookmarks", options.bookmarks ? "true" : ""},
                                 {"timeoutSeconds", std::to_string(options.timeout.count())},
                                 {"labelSelector", options.label_selector}});
  // Its own connection, whose reads may wait as long as the server keeps the watch open.
  auto client = std::make_shared<web::http::client::http_client>(
      utility::conversions::to_string_t(config_.server),
      impl_->Config(std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout) +
                    std::chrono::seconds(30)));
  web::http::http_request request("GET");
  request.set_request_uri(path);
  request.headers().add("Accept", "application/json");
  request.headers().add("User-Agent", options_.user_agent);
  if (!token.empty()) request.headers().add("Authorization", "Bearer " + token);
  pplx::cancellation_token_source cancel;
  // Abandoned tasks still use the client: keep it alive until they finish.
  const auto keep = [client](const pplx::task<web::http::http_response>& t) {
    try {
      t.wait();
    } catch (...) {  // abandoned
    }
  };
  try {
    pplx::task<web::http::http_response> sent = client->request(request, cancel.get_token());
    if (Status s = AwaitStopped(sent, stop, &cancel); !s.ok()) {
      sent.then(keep);
      return s;
    }
    web::http::http_response response = sent.get();
    if (response.status_code() >= 400) {
      return ApiError(response.status_code(), response.extract_utf8string(true).get());
    }
    concurrency::streams::istream body = response.body();
    while (true) {
      auto line = std::make_shared<concurrency::streams::container_buffer<std::string>>();
      pplx::task<size_t> read = body.read_line(*line);
      if (Status s = AwaitStopped(read, stop, &cancel); !s.ok()) {
        read.then([client, line](const pplx::task<size_t>& t) {
          try {
            t.wait();
          } catch (...) {  // abandoned
          }
        });
        return s;
      }
      read.get();
      const std::string& text = line->collection();
      if (text.empty()) {
        if (body.is_eof()) return OkStatus();  // the server ended the watch
        continue;
      }
      const Json event = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!event.is_object() || !event.contains("type") || !event.contains("object")) {
        return UnavailableError("watch " + path + ": not a watch event: " + text.substr(0, 200));
      }
      const std::string type = event["type"];
      if (type == "ERROR") {
        const Json& status = event["object"];
        return ApiError(status.value("code", 500), status.dump());
      }
      if (!on_event({type, event["object"]})) {
        cancel.cancel();
        return CancelledError("the watcher stopped");
      }
    }
  } catch (const std::exception& e) {
    return UnavailableError("watch " + config_.server + path + ": " + e.what());
  }
}

StatusOr<Json> Client::Create(const Resource& resource, const std::string& ns, const Json& object) {
  return Call("POST", resource.Path(ns), object.dump(), "application/json");
}

StatusOr<Json> Client::Update(const Resource& resource, const std::string& ns, const Json& object) {
  const std::string name = object["metadata"].value("name", "");
  return Call("PUT", resource.Path(ns, name), object.dump(), "application/json");
}

StatusOr<Json> Client::Delete(const Resource& resource, const std::string& ns,
                              const std::string& name) {
  return Call("DELETE", resource.Path(ns, name), "", "");
}

namespace {

std::string ApplyQuery(const ApplyOptions& options) {
  return Query({{"fieldManager", options.field_manager}, {"force", options.force ? "true" : ""}});
}

// An apply body names its type: the caller's object, or the resource's.
std::string ApplyBody(const Resource& resource, Json object) {
  if (!object.contains("apiVersion")) object["apiVersion"] = resource.ApiVersion();
  if (!object.contains("kind")) object["kind"] = std::string(resource.kind);
  return object.dump();
}

}  // namespace

StatusOr<Json> Client::Apply(const Resource& resource, const std::string& ns, const Json& object,
                             const ApplyOptions& options) {
  if (options.field_manager.empty()) return InvalidArgumentError("apply: no field manager");
  const std::string name = object.contains("metadata") ? object["metadata"].value("name", "") : "";
  if (name.empty()) return InvalidArgumentError("apply: metadata.name is required");
  return Call("PATCH", resource.Path(ns, name) + ApplyQuery(options), ApplyBody(resource, object),
              "application/apply-patch+yaml");
}

StatusOr<Json> Client::ApplyStatus(const Resource& resource, const std::string& ns,
                                   const Json& object, const ApplyOptions& options) {
  if (options.field_manager.empty()) return InvalidArgumentError("apply: no field manager");
  const std::string name = object.contains("metadata") ? object["metadata"].value("name", "") : "";
  if (name.empty()) return InvalidArgumentError("apply: metadata.name is required");
  return Call("PATCH", resource.Path(ns, name, "status") + ApplyQuery(options),
              ApplyBody(resource, object), "application/apply-patch+yaml");
}

}  // namespace agentry::kube
