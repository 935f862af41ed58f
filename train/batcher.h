// train/batcher.h — conversations into token ids, loss masks and packed batches.
//
// A conversation is tokenized the way the runtime prompts the model: message by message in
// ChatML, "<|im_start|>role\n" + content + "<|im_end|>" + "\n", with control tokens parsed
// only in the template's own markers. The model learns only what it will have to generate:
// each assistant message's content and the <|im_end|> that ends it. Tokenizing message by
// message gives the same ids as tokenizing the whole rendered prompt, because every piece
// boundary is a control token or a newline, where the pre-tokenizer splits anyway (a test
// checks this on the corpus).
//
//   Batcher batcher(tokenizer, seed, Split::kTrain, /*corpus_size=*/100000,
//                   /*batch_tokens=*/4096, /*max_tokens=*/1024);
//   uint64_t cursor = 0;
//   Batch b = batcher.Next(&cursor);  // whole conversations from index `cursor` on
#pragma once

#include <cstdint>
#include <vector>

#include "train/corpus/triage_corpus.h"
#include "train/transformer.h"

#include "nodeagent/engine/tokenizer.h"

namespace agentry::train {

struct TokenizedConversation {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> loss;  // loss[i]: tokens[i + 1] is learned (predicted from tokens[..i])
};

TokenizedConversation TokenizeConversation(const engine::Tokenizer& tokenizer,
                                           const std::vector<engine::ChatMessage>& messages);

class Batcher {
 public:
  // The stream is conversations cursor % corpus_size of (seed, split): a corpus of
  // `corpus_size` distinct conversations, repeated in order.
  Batcher(const engine::Tokenizer& tokenizer, uint64_t seed, Split split, uint64_t corpus_size,
          int64_t batch_tokens, int64_t max_tokens);

  // Packs whole conversations, from index *cursor on, until the next would not fit in
  // batch_tokens; advances *cursor past them. Conversations longer than max_tokens are
  // skipped (and counted in skipped()).
  Batch Next(uint64_t* cursor);
  uint64_t skipped() const { return skipped_; }

 private:
  const engine::Tokenizer& tokenizer_;
  const uint64_t seed_;
  const Split split_;
  const uint64_t corpus_size_;
  const int64_t batch_tokens_;
  const int64_t max_tokens_;
  uint64_t skipped_ = 0;
};

}  // namespace agentry::train
