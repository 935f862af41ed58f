// cli/train.cc — see train.h.
#include "cli/train.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "train/agent_eval.h"

#include "nodeagent/engine/gguf_writer.h"

namespace agentry::cli {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

std::string Duration(double seconds) {
  const int64_t s = std::llround(seconds);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60),
                static_cast<long long>(s % 60));
  return buf;
}

int DefaultThreads(int32_t requested) {
  if (requested > 0) return requested;
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace

int RunTrain(train::TrainOptions options) {
  options.threads = DefaultThreads(options.threads);
  g_stop.store(false);
  options.stop = &g_stop;
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const bool tty = isatty(STDERR_FILENO) != 0;
  std::fprintf(stderr, "agentry train: %s, %d threads, %lld steps of %lld tokens\n",
               options.out_dir.c_str(), options.threads, static_cast<long long>(options.steps),
               static_cast<long long>(options.batch_tokens));
  bool announced = false;
  StatusOr<train::TrainResult> result = train::Train(options, [&](const train::TrainProgress& p) {
    if (!announced && p.resumed) {
      std::fprintf(stderr, "resuming from the checkpoint at step %lld\n",
                   static_cast<long long>(p.step - 1));
    }
    announced = true;
    // A line per step on a terminal (overwritten in place), every 10 steps and at evaluations
    // otherwise, so logs stay short.
    if (!tty && p.step % 10 != 0 && p.eval_loss < 0 && p.step != p.steps) return;
    char eval[32] = "";
    if (p.eval_loss >= 0) std::snprintf(eval, sizeof(eval), "  held-out %.3f", p.eval_loss);
    std::fprintf(stderr, "%sstep %lld/%lld  loss %.3f%s  lr %.2e  %.0f tok/s  ETA %s%s",
                 tty ? "\r\033[K" : "", static_cast<long long>(p.step),
                 static_cast<long long>(p.steps), p.loss, eval, p.lr, p.tokens_per_second,
                 Duration(p.eta_seconds).c_str(), tty && p.eval_loss < 0 ? "" : "\n");
  });
  if (tty) std::fputc('\n', stderr);
  if (!result.ok()) {
    std::fprintf(stderr, "agentry train: %s\n", result.status().ToString().c_str());
    return 1;
  }
  if (result->stopped) {
    std::fprintf(stderr,
                 "agentry train: stopped at step %lld; checkpoint saved, run the same command "
                 "to resume\n",
                 static_cast<long long>(result->steps));
    return 130;
  }
  std::printf(
      "trained %lld parameters (vocabulary %lld) for %lld steps in %s: loss %.3f, "
      "held-out %.3f, %.0f tokens/s\n%s\n%s\n",
      static_cast<long long>(result->parameters), static_cast<long long>(result->vocab),
      static_cast<long long>(result->steps), Duration(result->seconds).c_str(), result->loss,
      result->eval_loss, result->tokens_per_second, result->f32_path.c_str(),
      result->q8_0_path.c_str());
  return 0;
}

int RunEvalAgent(const EvalAgentOptions& options) {
  train::AgentEvalOptions o;
  o.model = options.model;
  o.conversations = options.conversations;
  o.threads = DefaultThreads(options.threads);
  o.seed = options.seed;
  if (options.verbose) {
    o.on_case = [](const train::AgentEvalCase& c) {
      std::fprintf(stderr, "%s\n  model: %s\n  %s %s: expected %s\n\n", c.before.c_str(),
                   c.generated.c_str(), c.passed ? "ok" : "FAIL", c.kind.c_str(),
                   c.expected.c_str());
    };
  }
  StatusOr<train::AgentEvalReport> report = train::EvaluateAgent(o);
  if (!report.ok()) {
    std::fprintf(stderr, "agentry eval-agent: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::fputs(train::FormatReport(*report).c_str(), stdout);
  if (!options.json.empty()) {
    if (Status s = engine::WriteFileAtomically(options.json, train::ReportJson(*report).dump(2));
        !s.ok()) {
      std::fprintf(stderr, "agentry eval-agent: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace agentry::cli
