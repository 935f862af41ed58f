// cli/train.h — `agentry train` (learn the agent model) and `agentry eval-agent` (measure it
// on the held-out conversations).
#pragma once

#include <string>

#include "train/trainer.h"

namespace agentry::cli {

// Trains with a progress line on stderr; Ctrl-C (SIGINT) or SIGTERM saves a checkpoint and
// exits, and the same command resumes. Exit code.
int RunTrain(train::TrainOptions options);

struct EvalAgentOptions {
  std::string model;
  int32_t conversations = 200;
  int32_t threads = 0;
  uint64_t seed = 1;  // the corpus seed the model was trained with
  std::string json;   // also write the figures as JSON here
  bool verbose = false;
};

// Prints each figure of the held-out evaluation (train/agent_eval.h). Exit code.
int RunEvalAgent(const EvalAgentOptions& options);

}  // namespace agentry::cli
