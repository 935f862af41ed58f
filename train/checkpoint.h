// train/checkpoint.h — everything a training run needs to continue after an interruption.
//
// One file: a JSON header (the run's options, the step reached, the corpus cursor, the loss
// history), the tokenizer as a vocabulary-only GGUF, then the parameters and both AdamW
// moments as raw floats, and a CRC-32C of all of it. It is written to a temporary name,
// fsynced and renamed, so a crash leaves the previous checkpoint intact; a torn or altered
// file fails its checksum on load and is never half-used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace agentry::train {

struct LossPoint {
  int64_t step = 0;
  double loss = 0.0;        // training loss of that step's batch
  double eval_loss = -1.0;  // held-out loss, or < 0 where not measured
  double lr = 0.0;
  double seconds = 0.0;  // wall time since the run began (across resumes)
};

struct Checkpoint {
  nlohmann::json options;  // the run's options, compared on resume
  int64_t step = 0;        // steps completed
  uint64_t cursor = 0;     // next conversation index of the training stream
  double seconds = 0.0;    // training wall time so far
  std::vector<LossPoint> history;
  std::string vocab_gguf;  // the tokenizer, as a vocabulary-only GGUF
  std::vector<float> params, m, v;
};

Status SaveCheckpoint(const std::string& path, const Checkpoint& checkpoint);
// NotFound when there is no file; DataLoss (naming the path and what is wrong) for a file that
// is truncated, fails its checksum, or is not a checkpoint of this format version.
StatusOr<Checkpoint> LoadCheckpoint(const std::string& path);

}  // namespace agentry::train
