// train/export.h — a trained model as a GGUF file that the engine and llama.cpp both load:
// the `llama` architecture with tied embeddings, the trained tokenizer's metadata, and a
// ChatML chat template.
//
//   std::string bytes = ExportGguf(config, params, vocab, GgmlType::kQ8_0, "agentry-triage");
#pragma once

#include <string>
#include <vector>

#include "train/bpe/bpe_trainer.h"
#include "train/model_config.h"

#include "common/status.h"
#include "nodeagent/engine/gguf.h"

namespace agentry::train {

// The ChatML template, as Jinja: what the engine (and llama.cpp) recognise as "chatml".
extern const char kChatMlTemplate[];

// F32: every tensor as trained. Q8_0: the matrices quantized with the kernels' reference
// quantizer (byte-identical to llama.cpp's), norm gains kept F32 as llama.cpp keeps them.
// InvalidArgument for other types or a parameter vector of the wrong size.
StatusOr<std::string> ExportGguf(const ModelConfig& config, const std::vector<float>& params,
                                 const BpeVocab& vocab, engine::GgmlType type,
                                 const std::string& name);

}  // namespace agentry::train
