// common/http/client.cc — see client.h.
#include "common/http/client.h"

#include <cctype>

#include <cpprest/http_client.h>
#include <cpprest/rawptrstream.h>

#include "common/http/await_task.h"

namespace agentry::http {
namespace {

using Clock = std::chrono::steady_clock;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string ClientResponse::Header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

StatusOr<ClientResponse> Fetch(const ClientRequest& request, const std::atomic<bool>* stop) {
  const auto start = Clock::now();
  const auto deadline = start + request.timeout;
  web::uri uri;
  try {
    uri = web::uri(utility::conversions::to_string_t(request.url));
  } catch (const std::exception& e) {
    return InvalidArgumentError("url " + request.url + ": " + e.what());
  }
  if (uri.scheme() != "http" && uri.scheme() != "https") {
    return InvalidArgumentError("url " + request.url + ": not http:// or https://");
  }
  web::http::client::http_client_config config;
  // The deadline above is the real limit; cpprestsdk's own timeout only bounds each read.
  config.set_timeout(request.timeout + std::chrono::seconds(1));
  if (!request.ca_file.empty()) {
    const std::string ca = request.ca_file;
    config.set_ssl_context_callback([ca](boost::asio::ssl::context& context) {
      boost::system::error_code error;
      context.load_verify_file(ca, error);  // a missing file fails the handshake, as it should
    });
  }
  pplx::cancellation_token_source cancel;
  // The client owns the connection the task below still uses: it must outlive every wait,
  // including one that ends in cancellation (held by the continuation's capture).
  auto client = std::make_shared<web::http::client::http_client>(uri, config);
  web::http::http_request message(request.method);
  for (const auto& [name, value] : request.headers) message.headers().add(name, value);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    message.set_body(request.body, request.content_type);
  }
  ClientResponse out;
  try {
    pplx::task<web::http::http_response> sent = client->request(message, cancel.get_token());
    const auto keep = [client](const pplx::task<web::http::http_response>& t) {
      try {
        t.wait();
      } catch (...) {  // the outcome was already reported (or abandoned) by the caller
      }
    };
    if (Status s = AwaitTask(sent, deadline, request.timeout, stop, &cancel); !s.ok()) {
      sent.then(keep);
      return s;
    }
    web::http::http_response response = sent.get();
    out.status = response.status_code();
    for (const auto& [name, value] : response.headers()) out.headers[Lower(name)] = value;
    // Read the body a block at a time up to the cap, plus one byte to know it went on.
    concurrency::streams::istream body = response.body();
    // Shared with an abandoned read, which may still write into it after this returns.
    auto block = std::make_shared<std::string>(64 * 1024, '\0');
    while (true) {
      const int64_t room = request.max_response_bytes + 1 - static_cast<int64_t>(out.body.size());
      if (room <= 0) break;
      const size_t want = static_cast<size_t>(std::min<int64_t>(room, block->size()));
      concurrency::streams::rawptr_buffer<uint8_t> target(reinterpret_cast<uint8_t*>(block->data()),
                                                          want);
      pplx::task<size_t> read = body.read(target, want);
      if (Status s = AwaitTask(read, deadline, request.timeout, stop, &cancel); !s.ok()) {
        read.then([client, block](const pplx::task<size_t>& t) {
          try {
            t.wait();
          } catch (...) {  // abandoned
          }
        });
        return s;
      }
      const size_t n = read.get();
      if (n == 0) break;
      out.body.append(block->data(), n);
    }
    if (static_cast<int64_t>(out.body.size()) > request.max_response_bytes) {
      out.body.resize(static_cast<size_t>(request.max_response_bytes));
      out.truncated = true;
      cancel.cancel();  // the rest is not wanted: drop the connection
    }
  } catch (const std::exception& e) {
    return UnavailableError(request.method + " " + request.url + ": " + e.what());
  }
  out.elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  return out;
}

}  // namespace agentry::http
