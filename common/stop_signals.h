// common/stop_signals.h — how Agentry's long-running commands take SIGTERM and SIGINT.
//
//   StopSignals stop;          // first thing in the command, before any thread starts
//   ... start servers ...
//   const int signal = stop.Wait();
//
// The signals are blocked in the constructing thread, and every thread started after it
// inherits the mask, so the signal is taken synchronously by Wait() and never by a handler or
// by a worker thread whose default action would end the process without a drain.
#pragma once

#include <signal.h>

#include <initializer_list>

namespace agentry {

class StopSignals {
 public:
  // SIGTERM, SIGINT and `also` (e.g. SIGCHLD for a command that watches its children).
  StopSignals(std::initializer_list<int> also = {});
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Blocks until one of the signals arrives; returns it.
  int Wait();

 private:
  sigset_t signals_{};
};

}  // namespace agentry
