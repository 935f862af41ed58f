// nodeagent/scheduler/model_registry.h — the models this daemon serves, by name.
//
//   ModelRegistry models;
//   models.Add("agent", "/models/agent-q8_0.gguf");   // checks the name; loads nothing yet
//   StatusOr<std::shared_ptr<const ServedModel>> m = models.Get("agent");  // loads once
//
// A model's weights are loaded (mapped) once, on first use, and shared by every session that
// uses it: all devices are served by the CPU backend today (nodeagent/devices), so one copy
// serves them all; a device with its own backend will hold its own copy.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodeagent/constrain/token_mask.h"
#include "nodeagent/engine/chat_template.h"
#include "nodeagent/engine/model.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::scheduler {

struct ServedModel {
  std::string name;
  std::string path;
  std::unique_ptr<engine::Model> model;
  engine::Tokenizer tokenizer;
  // The model's chat template (GGUF tokenizer.chat_template); unset when it has none, and
  // then sessions take raw tokens only.
  std::optional<engine::ChatFormat> chat_format;
  // The vocabulary's token trie, for requests that constrain the text to a JSON schema: built
  // by the first such request (about 0.1 s for a 152k-token vocabulary), not at load, which
  // most models never need it for.
  const constrain::TokenMasker& Masker() const;

 private:
  mutable std::once_flag masker_once_;
  mutable std::unique_ptr<const constrain::TokenMasker> masker_;
};

class ModelRegistry {
 public:
  // InvalidArgument for an empty or repeated name, an empty path, or a chat template that is
  // neither a known format name ("chatml", "llama3", ...) nor a template source of one. The
  // file is read on first use; `chat_template`, when given, replaces the file's own.
  Status Add(const std::string& name, const std::string& path,
             const std::string& chat_template = "");
  // The loaded model; NotFound naming the served models for an unknown name; the load's
  // error (naming the file) when it cannot be loaded, retried on the next call.
  StatusOr<std::shared_ptr<const ServedModel>> Get(const std::string& name);
  std::vector<std::string> names() const;

 private:
  mutable std::mutex mu_;
  struct Entry {
    std::string path;
    std::optional<engine::ChatFormat> chat_format;  // the override
  };
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::shared_ptr<const ServedModel>> loaded_;
};

}  // namespace agentry::scheduler
