// nodeagent/scheduler/model_registry.cc — see model_registry.h.
#include "nodeagent/scheduler/model_registry.h"

#include "nodeagent/engine/gguf.h"

namespace agentry::scheduler {

Status ModelRegistry::Add(const std::string& name, const std::string& path,
                          const std::string& chat_template) {
  if (name.empty()) return InvalidArgumentError("model name: empty");
  if (path.empty()) return InvalidArgumentError("model " + name + ": empty path");
  Entry entry{path, std::nullopt};
  if (!chat_template.empty()) {
    StatusOr<engine::ChatFormat> format = engine::DetectChatFormat(chat_template);
    if (!format.ok()) return format.status().WithPrefix("model " + name + ": chat template");
    entry.chat_format = *format;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!entries_.emplace(name, std::move(entry)).second) {
    return InvalidArgumentError("model " + name + ": named twice");
  }
  return OkStatus();
}

std::vector<std::string> ModelRegistry::names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

const constrain::TokenMasker& ServedModel::Masker() const {
  std::call_once(masker_once_,
                 [this] { masker_ = std::make_unique<constrain::TokenMasker>(tokenizer); });
  return *masker_;
}

StatusOr<std::shared_ptr<const ServedModel>> ModelRegistry::Get(const std::string& name) {
  // Loading holds the lock: two first uses of one model must not map it twice, and loads
  // are rare (once per model per daemon).
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = loaded_.find(name); it != loaded_.end()) return it->second;
  auto entry = entries_.find(name);
  if (entry == entries_.end()) {
    std::string served;
    for (const auto& [n, e] : entries_) served += (served.empty() ? "" : ", ") + n;
    return NotFoundError("model \"" + name + "\" is not served here (served: " +
                         (served.empty() ? "none" : served) + ")");
  }
  AGENTRY_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> file,
                           engine::GgufFile::Open(entry->second.path));
  auto served = std::make_shared<ServedModel>();
  served->name = name;
  served->path = entry->second.path;
  AGENTRY_ASSIGN_OR_RETURN(served->tokenizer, engine::Tokenizer::FromGguf(*file));
  served->chat_format = entry->second.chat_format;
  if (StatusOr<std::string_view> source = file->GetString("tokenizer.chat_template");
      !served->chat_format.has_value() && source.ok()) {
    StatusOr<engine::ChatFormat> format = engine::DetectChatFormat(*source);
    if (format.ok()) served->chat_format = *format;
  }
  AGENTRY_ASSIGN_OR_RETURN(served->model, engine::Model::Load(std::move(file)));
  loaded_[name] = served;
  return std::shared_ptr<const ServedModel>(served);
}

}  // namespace agentry::scheduler
