// cli/approve.h — `agentry approve`: decide a tool call an agent paused for approval,
// through its runtime's API (POST /v1/sessions/{id}/approvals/{call}).
//
//   agentry approve SESSION [CALL] [NAME | --url URL] --user bob [--deny] [--reason TEXT]
//
// Without CALL it decides the call the session waits on (read from GET /v1/sessions/{id}),
// printing which one. The turn then goes on; its reply is printed as the runtime returns it.
#pragma once

#include <string>

namespace agentry::cli {

struct ApproveOptions {
  std::string session;
  std::string call;  // empty: the one pending
  std::string agent;
  std::string dir;
  std::string url;
  std::string user;  // who decides
  bool deny = false;
  std::string reason;
};

// 0: decided (the turn's reply printed); 1: the runtime refused or could not be asked;
// 2: bad options.
int RunApprove(const ApproveOptions& options);

}  // namespace agentry::cli
