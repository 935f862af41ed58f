// runtime/api/openai_api.h — `POST /v1/chat/completions`, OpenAI's chat API over the agent's
// sessions, so that existing clients work unchanged (docs/api.md).
//
// OpenAI clients send the whole conversation every time; the agent keeps it as a session.
// The session is the `X-Agentry-Session` header's, else one named after the conversation's
// first message and the request's `user`. When the session's transcript is exactly the
// request's messages before the last, the last (a user message) is one more turn, and the
// node daemon's KV is reused. Otherwise (a new conversation, or a client that edited its
// history) the conversation goes into a new session, named after all of it, whose transcript
// starts as the request's earlier messages. The agent's own instructions and tools always
// come first; the client's system messages follow them. `model` is echoed, not used: an
// agent serves one model.
#pragma once

#include <string>

#include "common/http/server.h"
#include "common/status.h"
#include "runtime/harness/harness.h"
#include "runtime/harness/state_client.h"

namespace agentry::api {

class SessionApi;

class OpenAiApi {
 public:
  // `sessions` serialises turns with the session API's (one turn at a time per session).
  OpenAiApi(harness::Harness* harness, harness::StateClient* state, SessionApi* sessions);
  Status Register(http::HttpServer* server);

 private:
  http::HttpResponse ChatCompletions(const http::HttpRequest& request);

  harness::Harness* harness_;
  harness::StateClient* state_;
  SessionApi* sessions_;
};

}  // namespace agentry::api
