// cli/chat.h — `agentry chat`: a person talking to an agent through the runtime's session API
// (docs/api.md), the reply streamed token by token.
//
//   agentry chat triage                  # the agent `agentry up` runs (.agentry/triage/endpoint)
//   agentry chat --url http://host:8080  # any runtime
//
// One line is one message. Ctrl-C while a reply streams stops that reply (the session goes
// on); Ctrl-C at the prompt, Ctrl-D or /quit ends the chat. /new starts a new session,
// /session shows which one this is. With stdin not a terminal (a script, the demo), each
// message read is echoed after the prompt so the output reads as the conversation.
#pragma once

#include <string>

namespace agentry::cli {

struct ChatOptions {
  std::string agent;       // the name `agentry up` ran; finds DIR/endpoint
  std::string dir;         // default .agentry/<agent>
  std::string url;         // the runtime's API; overrides the endpoint file
  std::string session;     // resume (or create) this session; default: a new one
  std::string user;        // on_behalf_of; default $USER
  bool stats = false;      // after each reply: tokens prefilled, reused from KV, generated
  double timeout_s = 300;  // the longest silence of the runtime mid-reply
};

// 0 at the end of the conversation, 1 when the runtime cannot be reached or refuses the
// session, 2 for bad options.
int RunChat(const ChatOptions& options);

}  // namespace agentry::cli
