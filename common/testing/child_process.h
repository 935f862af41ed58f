// common/testing/child_process.h — for tests: one child process running a binary of this
// build, its output appended to a log file, killed (SIGKILL) and reaped when dropped.
//
//   ChildProcess sidecar(AGENTRY_BINARY, {"state", "--dir", dir}, dir + ".log");
//   sidecar.Signal(SIGTERM);  // its exit code, or -signal
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace agentry::testing {

class ChildProcess {
 public:
  // `before_exec` runs in the child after fork (resource limits, signal dispositions).
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::string& log, const std::function<void()>& before_exec = nullptr) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      if (before_exec) before_exec();
      std::vector<std::string> copy = args;
      std::string name = binary.substr(binary.rfind('/') + 1);
      std::vector<char*> argv = {name.data()};
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
  }
  ~ChildProcess() { Signal(SIGKILL); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Sends `sig` without waiting for the process.
  void Send(int sig) const {
    if (pid_ > 0) kill(pid_, sig);
  }
  // Whether it has ended; if so it is reaped and `*code` is its exit code, or -signal.
  bool Ended(int* code) {
    if (pid_ <= 0) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    pid_ = -1;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return true;
  }

  // Sends `sig` and reaps the process: its exit code, or -signal.
  int Signal(int sig) {
    if (pid_ <= 0) return 0;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace agentry::testing
