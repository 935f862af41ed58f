#include "runtime/api/openai_api.h"

#include <chrono>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/sha256.h"
#include "runtime/api/session_api.h"

namespace agentry::api {
namespace {

using http::HttpRequest;
using http::HttpResponse;
using Json = nlohmann::json;
namespace statepb = agentry::state::v1;

struct ChatMessage {
  std::string role;
  std::string content;
};

StatusOr<std::vector<ChatMessage>> ParseMessages(const Json& body) {
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    return InvalidArgumentError("messages: a non-empty array");
  }
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < body["messages"].size(); ++i) {
    const Json& m = body["messages"][i];
    const std::string field = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return InvalidArgumentError(field + ".role: required, a string");
    }
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      return InvalidArgumentError(field + ".role: system, user, assistant or tool");
    }
    std::string content;
    if (m.contains("content") && m["content"].is_string()) {
      content = m["content"].get<std::string>();
    } else if (m.contains("content") && m["content"].is_array()) {
      // The content-parts form: the text parts, in order.
      for (const Json& part : m["content"]) {
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
            part["text"].is_string()) {
          content += part["text"].get<std::string>();
        }
      }
    } else if (!(m.contains("content") && m["content"].is_null())) {
      return InvalidArgumentError(field + ".content: a string");
    }
    out.push_back({role, std::move(content)});
  }
  if (out.back().role != "user") {
    return InvalidArgumentError("messages: the last message must be the user's");
  }
  return out;
}

std::string SessionIdFor(const std::string& user, const std::vector<ChatMessage>& messages,
                         size_t count) {
  Sha256 digest;
  digest.Update(user);
  for (size_t i = 0; i < count; ++i) {
    digest.Update("\n" + messages[i].role + "\n");
    digest.Update(messages[i].content);
  }
  return "oa-" + digest.FinishHex().substr(0, 32);
}

bool TranscriptIs(const std::vector<statepb::Event>& events,
                  const std::vector<ChatMessage>& messages, size_t count) {
  if (events.size() != count) return false;
  for (size_t i = 0; i < count; ++i) {
    if (events[i].kind() != messages[i].role || events[i].content() != messages[i].content) {
      return false;
    }
  }
  return true;
}

std::string FinishReason(harness::nodepb::FinishReason r) {
  return r == harness::nodepb::FINISH_REASON_LENGTH ? "length" : "stop";
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

OpenAiApi::OpenAiApi(harness::Harness* harness, harness::StateClient* state, SessionApi* sessions)
    : harness_(harness), state_(state), sessions_(sessions) {}

Status OpenAiApi::Register(http::HttpServer* server) {
  return server->Route("POST", "/v1/chat/completions",
                       [this](const HttpRequest& r) { return ChatCompletions(r); });
}

HttpResponse OpenAiApi::ChatCompletions(const HttpRequest& request) {
  StatusOr<Json> body = request.JsonBody();
  if (!body.ok()) return SessionApi::ErrorResponse(body.status());
  if (!body->is_object())
    return SessionApi::ErrorResponse(InvalidArgumentError("body: a JSON object"));
  StatusOr<std::vector<ChatMessage>> parsed = ParseMessages(*body);
  if (!parsed.ok()) return SessionApi::ErrorResponse(parsed.status());
  const std::vector<ChatMessage>& messages = *parsed;
  const std::string model = body->value("model", "");
  const std::string user = body->contains("user") && (*body)["user"].is_string()
                               ? (*body)["user"].get<std::string>()
                               : "";
  const bool stream =
      body->contains("stream") && (*body)["stream"].is_boolean() && (*body)["stream"].get<bool>();
  const size_t earlier = messages.size() - 1;

  // Which session: the header's, else the conversation's by its first message; a transcript
  // that differs from the request's history moves the conversation to one of its own.
  StatusOr<Principal> caller = sessions_->Caller(request);
  if (!caller.ok()) return AccessError(caller.status());
  // Conversations of different principals never share an id, even with the same messages.
  const std::string scope =
      sessions_->OwnerMetadata(*caller).empty() ? user : caller->name + "/" + user;
  std::string id = request.Header("X-Agentry-Session");
  const bool named = !id.empty();
  if (!named) id = SessionIdFor(scope, messages, 1);
  StatusOr<statepb::Session> session = state_->GetSession(id);
  if (session.ok()) {
    if (Status s = Access::MayUse(*caller, SessionApi::Owner(*session), id); !s.ok()) {
      return AccessError(s);
    }
    StatusOr<std::vector<statepb::Event>> events = state_->ReadTranscript(id);
    if (!events.ok()) return SessionApi::ErrorResponse(events.status());
    // A failed turn's unanswered message is not part of the conversation the client resends.
    constexpr int64_t kNoInput = std::numeric_limits<int64_t>::max();
    if (!TranscriptIs(harness::PromptEvents(*events, kNoInput, kNoInput), messages, earlier)) {
      if (named) {
        return SessionApi::ErrorResponse(FailedPreconditionError(
            "session " + id + ": its transcript differs from the request's earlier messages"));
      }
      id = SessionIdFor(scope, messages, messages.size());
      session = state_->GetSession(id);
    }
  }
  if (!session.ok()) {
    if (session.status().code() != StatusCode::kNotFound) {
      return SessionApi::ErrorResponse(session.status());
    }
    if (Status s = sessions_->CheckOnBehalfOf(user, "user"); !s.ok()) {
      return SessionApi::ErrorResponse(s);
    }
    int64_t retry_after = 0;
    if (Status s = sessions_->MayOpen(&retry_after); !s.ok()) {
      return SessionApi::ErrorResponse(s, retry_after);
    }
    session = harness_->OpenSession(id, user, sessions_->OwnerMetadata(*caller));
    if (!session.ok()) return SessionApi::ErrorResponse(session.status());
    if (earlier > 0) {
      statepb::AppendEventsRequest seed;
      seed.set_session_id(id);
      seed.set_expected_next_seq(1);
      for (size_t i = 0; i < earlier; ++i) {
        statepb::Event* e = seed.add_events();
        e->set_kind(messages[i].role);
        e->set_content(messages[i].content);
      }
      StatusOr<statepb::AppendEventsResponse> seeded = state_->AppendEvents(seed);
      if (!seeded.ok()) return SessionApi::ErrorResponse(seeded.status());
    }
  }

  int64_t retry_after = 0;
  StatusOr<AdmittedTurn> begun = sessions_->BeginTurn(id, &retry_after);
  if (!begun.ok()) return SessionApi::ErrorResponse(begun.status(), retry_after);
  const AdmittedTurn turn = *std::move(begun);
  const std::string completion_id = "chatcmpl-" + id;
  const int64_t created = NowSeconds();
  const std::string& content = messages.back().content;
  if (!stream) {
    StatusOr<harness::TurnReply> reply =
        sessions_->RunTurn(turn, content, {[](const std::string&) { return true; }});
    if (!reply.ok()) return SessionApi::ErrorResponse(reply.status());
    HttpResponse r = HttpResponse::Json(
        200,
        {{"id", completion_id},
         {"object", "chat.completion"},
         {"created", created},
         {"model", model},
         {"choices", Json::array({{{"index", 0},
                                   {"message", {{"role", "assistant"}, {"content", reply->text}}},
                                   {"finish_reason", FinishReason(reply->finish_reason)}}})},
         {"usage",
          {{"prompt_tokens", reply->prompt_tokens + reply->cached_tokens},
           {"completion_tokens", reply->generated_tokens},
           {"total_tokens",
            reply->prompt_tokens + reply->cached_tokens + reply->generated_tokens}}}});
    r.headers.emplace_back("X-Agentry-Session", id);
    return r;
  }
  HttpResponse r = HttpResponse::EventStream(
      [this, content, turn, completion_id, created, model](const HttpResponse::Writer& write) {
        const auto chunk = [&](const Json& delta, const Json& finish_reason) {
          const Json j = {
              {"id", completion_id},
              {"object", "chat.completion.chunk"},
              {"created", created},
              {"model", model},
              {"choices",
               Json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish_reason}}})}};
          return write("data: " + j.dump() + "\n\n");
        };
        chunk({{"role", "assistant"}, {"content", ""}}, nullptr);
        StatusOr<harness::TurnReply> reply =
            sessions_->RunTurn(turn, content, {[&](const std::string& text) {
                                 return chunk({{"content", text}}, nullptr);
                               }});
        if (reply.ok()) {
          chunk(Json::object(), FinishReason(reply->finish_reason));
        } else {
          write("data: " +
                Json{{"error",
                      {{"code", std::string(StatusCodeName(reply.status().code()))},
                       {"message", reply.status().message()}}}}
                    .dump() +
                "\n\n");
        }
        write("data: [DONE]\n\n");
      });
  r.headers.emplace_back("X-Agentry-Session", id);
  return r;
}

}  // namespace agentry::api
