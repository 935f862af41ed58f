// train/batcher.cc — see batcher.h.
#include "train/batcher.h"

namespace agentry::train {
namespace {

void AppendPiece(const engine::Tokenizer& tokenizer, std::string_view text, bool special,
                 bool learn, TokenizedConversation* out) {
  const std::vector<int32_t> ids = tokenizer.Encode(text, /*add_bos=*/false, special);
  for (int32_t id : ids) {
    // loss[i] marks whether tokens[i + 1] is learned: the flag of a token goes on its
    // predecessor.
    if (!out->tokens.empty()) out->loss.back() = learn ? 1 : 0;
    out->tokens.push_back(id);
    out->loss.push_back(0);
  }
}

}  // namespace

TokenizedConversation TokenizeConversation(const engine::Tokenizer& tokenizer,
                                           const std::vector<engine::ChatMessage>& messages) {
  TokenizedConversation out;
  for (const engine::ChatMessage& m : messages) {
    const bool assistant = m.role == "assistant";
    AppendPiece(tokenizer, "<|im_start|>" + m.role + "\n", true, false, &out);
    AppendPiece(tokenizer, m.content, false, assistant, &out);
    AppendPiece(tokenizer, "<|im_end|>", true, assistant, &out);
    AppendPiece(tokenizer, "\n", false, false, &out);
  }
  return out;
}

Batcher::Batcher(const engine::Tokenizer& tokenizer, uint64_t seed, Split split,
                 uint64_t corpus_size, int64_t batch_tokens, int64_t max_tokens)
    : tokenizer_(tokenizer),
      seed_(seed),
      split_(split),
      corpus_size_(corpus_size == 0 ? 1 : corpus_size),
      batch_tokens_(batch_tokens),
      max_tokens_(max_tokens) {}

Batch Batcher::Next(uint64_t* cursor) {
  Batch batch;
  while (true) {
    const Conversation conversation = GenerateConversation(seed_, split_, *cursor % corpus_size_);
    const TokenizedConversation t = TokenizeConversation(tokenizer_, conversation.messages);
    if (static_cast<int64_t>(t.tokens.size()) > max_tokens_) {
      ++skipped_;
      ++*cursor;
      continue;
    }
    if (batch.size() + static_cast<int64_t>(t.tokens.size()) > batch_tokens_) {
      if (batch.size() == 0) {  // one conversation larger than a batch: it goes alone
        batch.Append(t.tokens, t.loss);
        ++*cursor;
      }
      break;
    }
    batch.Append(t.tokens, t.loss);
    ++*cursor;
  }
  return batch;
}

}  // namespace agentry::train
