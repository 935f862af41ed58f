// runtime/api/session_api.h — the runtime's session HTTP API (docs/api.md), over the harness.
//
//   POST   /v1/sessions                 {"id"?, "on_behalf_of"?}      → 201 the session
//   GET    /v1/sessions                 ?state=                       → {"sessions": [...]}
//   GET    /v1/sessions/{id}            the session, its transcript and usage
//   POST   /v1/sessions/{id}/messages   {"content", "stream"?}        → the reply, or SSE
//   DELETE /v1/sessions/{id}            stops its running turn at once and closes it
//
// One turn at a time per session: a message to a session whose turn is running is 409.
// Errors are {"error": {"code", "message"}} with the status for the code (common/http).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/http/server.h"
#include "common/status.h"
#include "runtime/harness/harness.h"
#include "runtime/harness/state_client.h"

namespace agentry::api {

class SessionApi {
 public:
  SessionApi(harness::Harness* harness, harness::StateClient* state);
  Status Register(http::HttpServer* server);

  // Marks session `id` as running a turn and returns the flag that stops it (DELETE sets
  // it); nullptr when a turn already runs. Every route that runs turns goes through these.
  std::shared_ptr<std::atomic<bool>> BeginTurn(const std::string& id);
  void EndTurn(const std::string& id);

 private:
  http::HttpResponse Create(const http::HttpRequest& request);
  http::HttpResponse List(const http::HttpRequest& request);
  http::HttpResponse Get(const http::HttpRequest& request);
  http::HttpResponse Message(const http::HttpRequest& request);
  http::HttpResponse Delete(const http::HttpRequest& request);

  harness::Harness* harness_;
  harness::StateClient* state_;
  std::mutex mu_;
  // Sessions with a turn running, and the flag that stops it.
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> running_;
};

}  // namespace agentry::api
