#include "nodeagent/engine/chat_template.h"

#include <utility>

#include "common/strings.h"

namespace agentry::engine {
namespace {

constexpr const char* kSupported =
    "supported: chatml, llama3, llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip, zephyr";

Status UnsupportedFamily(const char* family) {
  return UnimplementedError(std::string("chat template: the ") + family +
                            " format is not supported (" + kSupported + ")");
}

// Appends template text and message text, keeping track of where the latter lies.
class PromptBuilder {
 public:
  PromptBuilder& Markup(std::string_view s) {
    prompt_.text.append(s);
    return *this;
  }
  PromptBuilder& Content(std::string_view s) {
    if (!s.empty()) prompt_.content.push_back({prompt_.text.size(), s.size()});
    prompt_.text.append(s);
    return *this;
  }
  ChatPrompt Take() { return std::move(prompt_); }

 private:
  ChatPrompt prompt_;
};

void ApplyLlama2(ChatFormat format, const std::vector<ChatMessage>& messages, PromptBuilder* out) {
  const bool system_block = format != ChatFormat::kLlama2;
  const bool bos_inside_history = format == ChatFormat::kLlama2SysBos;
  const bool strip = format == ChatFormat::kLlama2SysStrip;
  // The first [INST] follows the tokenizer's own BOS.
  out->Markup("[INST] ");
  bool inside_turn = true;
  for (const ChatMessage& m : messages) {
    const std::string content = strip ? std::string(TrimAsciiWhitespace(m.content)) : m.content;
    if (!inside_turn) {
      out->Markup(bos_inside_history ? "<s>[INST] " : "[INST] ");
      inside_turn = true;
    }
    if (m.role == "system") {
      if (system_block) {
        out->Markup("<<SYS>>\n").Content(content).Markup("\n<</SYS>>\n\n");
      } else {
        out->Content(content).Markup("\n");
      }
    } else if (m.role == "user") {
      out->Content(content).Markup(" [/INST]");
    } else {
      out->Content(content).Markup("</s>");
      inside_turn = false;
    }
  }
}

}  // namespace

StatusOr<ChatFormat> DetectChatFormat(std::string_view t) {
  static constexpr std::pair<std::string_view, ChatFormat> kNames[] = {
      {"chatml", ChatFormat::kChatMl},
      {"llama3", ChatFormat::kLlama3},
      {"llama2", ChatFormat::kLlama2},
      {"llama2-sys", ChatFormat::kLlama2Sys},
      {"llama2-sys-bos", ChatFormat::kLlama2SysBos},
      {"llama2-sys-strip", ChatFormat::kLlama2SysStrip},
      {"zephyr", ChatFormat::kZephyr},
  };
  for (const auto& [name, format] : kNames) {
    if (t == name) return format;
  }
  const auto has = [t](std::string_view marker) { return t.find(marker) != std::string::npos; };
  // The markers are tested in llama.cpp's order, so that a template it would read as another
  // family (Phi-4 also uses <|im_start|>) is refused here rather than misread.
  if (has("<|im_start|>")) {
    if (has("<|im_sep|>")) return UnsupportedFamily("Phi-4");
    if (has("<end_of_utterance>")) return UnsupportedFamily("SmolVLM");
    return ChatFormat::kChatMl;
  }
  if (t.rfind("mistral", 0) == 0 || has("[INST]")) {
    if (has("[SYSTEM_PROMPT]") || has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
      return UnsupportedFamily("Mistral");
    }
    if (has("content.strip()")) return ChatFormat::kLlama2SysStrip;
    if (has("bos_token + '[INST]")) return ChatFormat::kLlama2SysBos;
    if (has("<<SYS>>")) return ChatFormat::kLlama2Sys;
    return ChatFormat::kLlama2;
  }
  if (has("<|assistant|>") && has("<|end|>")) return UnsupportedFamily("Phi-3");
  if (has("[gMASK]<sop>")) return UnsupportedFamily("ChatGLM-4");
  if (has("<|assistant|>") && has("<|user|>")) return UnsupportedFamily("Falcon 3 / GLM-Edge");
  if (has("<|user|>") && has("<|endoftext|>")) return ChatFormat::kZephyr;
  if (has("<start_of_turn>")) return UnsupportedFamily("Gemma");
  if (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) {
    return UnsupportedFamily("Command-R");
  }
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return ChatFormat::kLlama3;
  return UnimplementedError(std::string("chat template: not a format the engine knows (") +
                            kSupported + "); pass one of those names to use it anyway");
}

const char* ChatFormatName(ChatFormat format) {
  switch (format) {
    case ChatFormat::kChatMl:
      return "chatml";
    case ChatFormat::kLlama3:
      return "llama3";
    case ChatFormat::kLlama2:
      return "llama2";
    case ChatFormat::kLlama2Sys:
      return "llama2-sys";
    case ChatFormat::kLlama2SysBos:
      return "llama2-sys-bos";
    case ChatFormat::kLlama2SysStrip:
      return "llama2-sys-strip";
    case ChatFormat::kZephyr:
      return "zephyr";
  }
  return "?";
}

ChatPrompt ApplyChatTemplate(ChatFormat format, const std::vector<ChatMessage>& messages,
                             bool add_assistant_prompt) {
  // Roles are the caller's words too: they count as content.
  PromptBuilder out;
  switch (format) {
    case ChatFormat::kChatMl:
      for (const ChatMessage& m : messages) {
        out.Markup("<|im_start|>").Content(m.role).Markup("\n").Content(m.content);
        out.Markup("<|im_end|>\n");
      }
      if (add_assistant_prompt) out.Markup("<|im_start|>assistant\n");
      break;
    case ChatFormat::kLlama3:
      for (const ChatMessage& m : messages) {
        out.Markup("<|start_header_id|>").Content(m.role).Markup("<|end_header_id|>\n\n");
        out.Content(TrimAsciiWhitespace(m.content)).Markup("<|eot_id|>");
      }
      if (add_assistant_prompt) out.Markup("<|start_header_id|>assistant<|end_header_id|>\n\n");
      break;
    case ChatFormat::kZephyr:
      for (const ChatMessage& m : messages) {
        out.Markup("<|").Content(m.role).Markup("|>\n").Content(m.content);
        out.Markup("<|endoftext|>\n");
      }
      if (add_assistant_prompt) out.Markup("<|assistant|>\n");
      break;
    case ChatFormat::kLlama2:
    case ChatFormat::kLlama2Sys:
    case ChatFormat::kLlama2SysBos:
    case ChatFormat::kLlama2SysStrip:
      // The assistant's turn opens right after " [/INST]": nothing to add.
      ApplyLlama2(format, messages, &out);
      break;
  }
  return out.Take();
}

}  // namespace agentry::engine
