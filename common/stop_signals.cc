// common/stop_signals.cc — see stop_signals.h.
#include "common/stop_signals.h"

#include <pthread.h>

namespace agentry {

StopSignals::StopSignals(std::initializer_list<int> also) {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  for (const int s : also) sigaddset(&signals_, s);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
}

int StopSignals::Wait() {
  int signal = 0;
  sigwait(&signals_, &signal);
  return signal;
}

}  // namespace agentry
