// cli/chat.cc — see chat.h.
#include "cli/chat.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

#include <cpprest/http_client.h>
#include <nlohmann/json.hpp>

#include "cli/runtime_endpoint.h"
#include "common/http/sse.h"
#include "common/status.h"
#include "common/strings.h"

namespace agentry::cli {
namespace {

using Json = nlohmann::json;

class ChatClient {
 public:
  ChatClient(const std::string& url, double timeout_s)
      : client_(url, Config(timeout_s)), control_(url, Config(10)) {}

  // Creates (or resumes) the session; its JSON.
  StatusOr<Json> OpenSession(const std::string& id, const std::string& user) {
    Json body = {{"on_behalf_of", user}};
    if (!id.empty()) body["id"] = id;
    return CallRuntime(&client_, web::http::methods::POST, "/v1/sessions", body.dump());
  }

  // One turn, its text streamed to `on_text` and its tool steps to `on_step` (the
  // "tool_call" and "tool_result" events); the reply's JSON (the `done` event).
  StatusOr<Json> Turn(const std::string& session, const std::string& content,
                      const std::function<void(const std::string&)>& on_text,
                      const std::function<void(const std::string&, const Json&)>& on_step) {
    try {
      web::http::http_request request(web::http::methods::POST);
      request.set_request_uri("/v1/sessions/" + web::uri::encode_data_string(session) +
                              "/messages");
      request.set_body(Json{{"content", content}, {"stream", true}}.dump(), "application/json");
      request.headers().add("Accept", "text/event-stream");
      AddCredentials(&request);
      web::http::http_response response = client_.request(request).get();
      if (response.status_code() != 200) {
        return UnavailableError(
            RuntimeErrorLine(response.status_code(), response.extract_utf8string(true).get()));
      }
      concurrency::streams::istream body = response.body();
      http::SseParser parser;
      while (true) {
        concurrency::streams::container_buffer<std::string> line;
        body.read_line(line).get();
        const bool eof = body.is_eof();
        for (const http::SseEvent& e : parser.Feed(line.collection() + "\n")) {
          Json data = Json::parse(e.data, nullptr, /*allow_exceptions=*/false);
          if (e.name == "token" && data.is_object()) on_text(data.value("text", ""));
          if ((e.name == "tool_call" || e.name == "tool_result") && data.is_object()) {
            on_step(e.name, data);
          }
          if (e.name == "done") return data;
          if (e.name == "error" && data.is_object()) {
            return UnavailableError(data.value("code", "") + ": " + data.value("message", ""));
          }
        }
        if (eof) return UnavailableError("the runtime ended the reply without finishing it");
      }
    } catch (const std::exception& e) {
      return UnavailableError(std::string("the runtime could not be reached: ") + e.what());
    }
  }

  // Stops the session's running turn (Ctrl-C mid-reply); the session stays open.
  void CancelTurn(const std::string& session) {
    (void)CallRuntime(&control_, web::http::methods::POST,
                      "/v1/sessions/" + web::uri::encode_data_string(session) + "/cancel", "");
  }

 private:
  static web::http::client::http_client_config Config(double timeout_s) {
    web::http::client::http_client_config config;
    config.set_timeout(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
    return config;
  }

  web::http::client::http_client client_;
  web::http::client::http_client control_;  // cancels while client_ streams
};

void PrintText(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// A tool step on its own line: "[get_ticket {"id":4821}]", then "[get_ticket: ok, 96 bytes]"
// or "[get_ticket: error: ...]". The reply's text goes on after it.
void PrintToolStep(const std::string& event, const Json& step) {
  const std::string name = step.value("name", "");
  if (event == "tool_call") {
    const std::string arguments = step.contains("arguments") ? step["arguments"].dump() : "{}";
    std::printf("[%s %s]\n", name.c_str(), arguments.c_str());
  } else if (step.value("ok", false)) {
    std::printf("[%s: ok, %zu bytes]\n", name.c_str(), step.value("content", "").size());
  } else {
    std::printf("[%s: error: %s]\n", name.c_str(), step.value("error", "").c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int RunChat(const ChatOptions& options) {
  // Ctrl-C is taken by a thread of its own (below); blocked before the HTTP client starts
  // its threads, which would otherwise take it and end the process mid-reply.
  sigset_t interrupt;
  sigemptyset(&interrupt);
  sigaddset(&interrupt, SIGINT);
  pthread_sigmask(SIG_BLOCK, &interrupt, nullptr);
  if (options.timeout_s <= 0) {
    std::fprintf(stderr, "agentry chat: --timeout: must be positive\n");
    return 2;
  }
  StatusOr<std::string> url = FindRuntime({options.agent, options.dir, options.url});
  if (!url.ok()) {
    std::fprintf(stderr, "agentry chat: %s\n", url.status().message().c_str());
    return url.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::string user = options.user;
  if (user.empty()) user = std::getenv("USER") != nullptr ? std::getenv("USER") : "";
  ChatClient client(*url, options.timeout_s);
  StatusOr<Json> session = client.OpenSession(options.session, user);
  if (!session.ok()) {
    std::fprintf(stderr, "agentry chat: %s: %s\n", url->c_str(),
                 session.status().message().c_str());
    return 1;
  }

  // Ctrl-C is taken by a thread of its own: mid-reply it cancels the turn, at the prompt it
  // ends the chat (the main thread is blocked reading stdin).
  std::mutex mu;
  std::string session_id = session->value("id", "");
  bool turn_running = false;
  std::thread([&] {
    while (true) {
      int signal = 0;
      sigwait(&interrupt, &signal);
      std::unique_lock<std::mutex> lock(mu);
      if (!turn_running) {
        std::fputs("\n", stdout);
        std::fflush(stdout);
        std::_Exit(130);
      }
      client.CancelTurn(session_id);  // the main thread waits for the stream's end, not for mu
    }
  }).detach();

  const std::string agent = session->value("agent", "agent");
  const std::string name = agent.substr(agent.find('/') + 1);
  const bool tty = isatty(STDIN_FILENO) != 0;
  const auto announce = [&](const Json& s) {
    const int64_t events = s.value("events", int64_t{0});
    const std::string history = events == 0 ? "new" : std::to_string(events) + " earlier messages";
    std::printf("agentry chat: %s at %s, session %s (%s)\n", agent.c_str(), url->c_str(),
                s.value("id", "").c_str(), history.c_str());
  };
  announce(*session);
  if (tty) std::printf("Ctrl-C stops a reply; Ctrl-D or /quit ends; /new starts a new session.\n");
  std::string line;
  while (true) {
    std::printf("you> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (!tty) std::printf("%s\n", line.c_str());
    const std::string message(TrimAsciiWhitespace(line));
    if (message.empty()) continue;
    if (message == "/quit" || message == "/exit") break;
    if (message == "/session") {
      std::printf("session %s\n", session_id.c_str());
      continue;
    }
    if (message == "/new") {
      StatusOr<Json> fresh = client.OpenSession("", user);
      if (!fresh.ok()) {
        std::fprintf(stderr, "agentry chat: %s\n", fresh.status().message().c_str());
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      session_id = fresh->value("id", "");
      announce(*fresh);
      continue;
    }
    if (message == "/help" || message.front() == '/') {
      std::printf("/new: a new session   /session: this session's id   /quit: end\n");
      continue;
    }
    std::printf("%s> ", name.c_str());
    std::fflush(stdout);
    {
      std::lock_guard<std::mutex> lock(mu);
      turn_running = true;
    }
    StatusOr<Json> reply = client.Turn(session_id, message, PrintText, PrintToolStep);
    {
      std::lock_guard<std::mutex> lock(mu);
      turn_running = false;
    }
    std::printf("\n");
    if (!reply.ok()) {
      std::fprintf(stderr, "agentry chat: %s\n", reply.status().message().c_str());
      continue;
    }
    const std::string finish = reply->value("finish_reason", "");
    if (finish == "cancelled") std::printf("[stopped]\n");
    if (finish == "waiting_approval" && reply->contains("pending_approval")) {
      const Json& pending = (*reply)["pending_approval"];
      std::printf("[%s waits for approval: agentry approve %s %s, or --deny]\n",
                  pending.value("name", "").c_str(), session_id.c_str(),
                  pending.value("call_id", "").c_str());
    }
    if (finish == "budget_exhausted") std::printf("[the session's budget is used up]\n");
    if (options.stats && reply->contains("usage")) {
      const Json& u = (*reply)["usage"];
      std::printf("  [%" PRId64 " prompt tokens prefilled, %" PRId64
                  " reused from the node daemon's KV, %" PRId64 " generated; %s%s]\n",
                  u.value("prompt_tokens", int64_t{0}), u.value("cached_tokens", int64_t{0}),
                  u.value("completion_tokens", int64_t{0}), finish.c_str(),
                  reply->value("rebuilt", false)    ? "; rebuilt from the transcript"
                  : reply->value("restored", false) ? "; restored from a snapshot"
                                                    : "");
    }
  }
  std::printf("\n");  // end the last prompt's line
  return 0;
}

}  // namespace agentry::cli
