// common/testing/run_command.h — for tests: a command run through the shell to its end, with
// its exit code and what it printed, stdout and stderr together.
//
//   const CommandOutput out = RunCommand("promtool check rules " + file);
//   EXPECT_EQ(out.code, 0) << out.text;
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace agentry::testing {

struct CommandOutput {
  int code = -1;  // the exit code; -1 when it could not start or was killed by a signal
  std::string text;
};

inline CommandOutput RunCommand(const std::string& command) {
  CommandOutput out;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.text.append(buffer, n);
  const int status = pclose(pipe);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace agentry::testing
