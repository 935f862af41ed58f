// nodeagent/engine/chat_template.h — turns a conversation into the prompt text a chat model
// was trained on.
//
// A GGUF file carries its chat template as Jinja source (`tokenizer.chat_template`). The
// engine does not run Jinja: like llama.cpp's llama_chat_apply_template, it recognises the
// template's family by its markers and formats with that family's fixed rules. Supported:
// chatml (Qwen2, SmolLM), llama3, llama2 (with and without <<SYS>>, BOS inside history,
// stripped messages) and zephyr. A template of another family, or none recognisable, is an
// error that says which families are supported; it is never guessed.
//
// The result is text with the family's special tokens written out (e.g. "<|im_start|>"),
// and where the messages' own text lies in it: tokenize with parse_special = true and those
// spans as literal (Tokenizer::Encode), so that a message containing "<|im_end|>" cannot end
// its turn early, and with the model's usual BOS.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::engine {

enum class ChatFormat {
  kChatMl,
  kLlama3,
  kLlama2,          // [INST] ... [/INST]; a system message joins the first turn as text
  kLlama2Sys,       // the system message inside <<SYS>> ... <</SYS>>
  kLlama2SysBos,    // and <s> before every [INST] after the first
  kLlama2SysStrip,  // and every message stripped of surrounding whitespace
  kZephyr,
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant" (other roles are passed through)
  std::string content;
};

// The family of a Jinja template's source, or of a format's name ("chatml", "llama3",
// "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "zephyr").
// Unimplemented, naming the family when it is one llama.cpp knows, for everything else.
StatusOr<ChatFormat> DetectChatFormat(std::string_view template_or_name);
const char* ChatFormatName(ChatFormat format);

struct ChatPrompt {
  std::string text;
  std::vector<TextSpan> content;  // the messages' text within `text`
};

// The prompt for `messages`; with `add_assistant_prompt` it ends with the opening of the
// assistant's turn, so the model's next tokens are its reply.
ChatPrompt ApplyChatTemplate(ChatFormat format, const std::vector<ChatMessage>& messages,
                             bool add_assistant_prompt);

}  // namespace agentry::engine
