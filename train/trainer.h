// train/trainer.h — one training run of the project's agent model, from tokenizer to GGUF.
//
// Train() learns a byte-level BPE tokenizer on the corpus's training conversations, then the
// model, on the engine's thread pool, saving a checkpoint every `checkpoint_every` steps (and
// when asked to stop). Started again with the same options and output directory, it resumes
// from the checkpoint and ends with the same bits as an uninterrupted run: batches are a
// function of the corpus cursor, which the checkpoint keeps. It finishes by writing
// model-f32.gguf, model-q8_0.gguf, loss.csv and loss.svg into the output directory.
//
//   TrainOptions o;  o.out_dir = "build/agent-model";
//   StatusOr<TrainResult> r = Train(o, [](const TrainProgress& p) { ... print ... });
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "train/checkpoint.h"
#include "train/model_config.h"
#include "train/optimizer.h"
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace agentry::train {

struct TrainOptions {
  ModelConfig model;          // model.vocab comes from the tokenizer
  OptimizerConfig optimizer;  // total_steps is set to `steps`
  uint64_t seed = 1;
  int32_t vocab_size = 1024;                // the tokenizer's target size (<= 4096)
  int64_t tokenizer_conversations = 20000;  // conversations the tokenizer learns from
  uint64_t corpus_size = 1000000;           // distinct training conversations
  int64_t batch_tokens = 4096;              // tokens per step (whole conversations)
  int64_t steps = 1500;
  int threads = 2;
  std::string out_dir;
  int64_t checkpoint_every = 100;
  int64_t eval_every = 100;
  int64_t eval_tokens = 8192;               // held-out tokens per evaluation
  const std::atomic<bool>* stop = nullptr;  // set (e.g. on SIGINT) to checkpoint and return

  // The options that define the run (a resume must match them); threads, checkpoint and eval
  // intervals and the stop flag may change between resumes.
  nlohmann::json ToJson() const;
  // InvalidArgument naming the option for values that cannot train.
  Status Validate() const;
};

struct TrainProgress {
  int64_t step = 0;  // steps completed
  int64_t steps = 0;
  double loss = 0.0;
  double eval_loss = -1.0;  // < 0 when this step did not evaluate
  double lr = 0.0;
  double tokens_per_second = 0.0;  // training tokens (all positions) per second, this run
  double eta_seconds = 0.0;
  bool resumed = false;  // this run began from a checkpoint
};

struct TrainResult {
  std::string f32_path, q8_0_path;
  int64_t steps = 0;
  double loss = 0.0, eval_loss = 0.0;
  double seconds = 0.0;            // training wall time, across resumes
  double tokens_per_second = 0.0;  // training throughput of this run
  int64_t parameters = 0;
  int64_t vocab = 0;
  bool stopped = false;  // stopped early by `stop`; the checkpoint holds the progress
};

StatusOr<TrainResult> Train(const TrainOptions& options,
                            const std::function<void(const TrainProgress&)>& progress);

}  // namespace agentry::train
