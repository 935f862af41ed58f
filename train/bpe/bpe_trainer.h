// train/bpe/bpe_trainer.h — learn a byte-level BPE tokenizer (GPT-2 style) from text, and
// write it as GGUF tokenizer metadata that the engine (nodeagent/engine/tokenizer.h) and
// llama.cpp both read, and tokenize identically.
//
//   BpeOptions options;
//   options.vocab_size = 2048;
//   options.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
//   StatusOr<BpeVocab> vocab = TrainBpe(texts, options);
//   if (!vocab.ok()) return vocab.status();
//   engine::GgufWriter w;
//   WriteTokenizerMetadata(*vocab, chat_template, &w);
//
// Training: special tokens are cut out of each text (longest first, as the engine and
// llama.cpp do with parse_special), the rest is split into words by the pre-tokenizer, and
// the distinct words are counted. Each word starts as its bytes; the most frequent adjacent
// pair of symbols (over all words, weighted by their counts) becomes a new token, and its
// occurrences in every word merge, left to right. Pair counts are updated incrementally
// (only the words that hold the merged pair are visited), so 2048 tokens from megabytes of
// text take seconds. Training is deterministic: the same texts and options give the same
// vocabulary, whatever the order of hash tables.
//
// Token ids: the 256 byte tokens first (id = byte value), then the special tokens in the
// order given, then one token per merge in merge order (id = 256 + #specials + rank). The
// special tokens sit before the merges so that their ids depend only on the list of special
// tokens: a corpus, chat template or test that names <|im_end|> by id keeps working when the
// vocabulary size changes or training stops early.
//
// Why applying the merges by rank (what the engine and llama.cpp do) gives the trainer's own
// segmentation of every training word: merge r makes a token that did not exist before, so
// every pair it creates involves that token and has a rank above r, and after merge r no
// occurrence of its own pair is left (for a run "aaa" of a pair (a, a) the greedy left-to-
// right merge leaves "aa a", no (a, a)). So no pair of rank below r is ever present when
// merge r is applied, which is exactly the condition under which "lowest rank first,
// leftmost first" replays the trainer's steps. This needs every merged token to be a new
// string; a pair whose concatenation is already a token (another merge made the same bytes,
// or a special token has that text) is therefore never merged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/gguf_writer.h"
#include "nodeagent/engine/pretokenizer.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::train {

// The largest vocabulary TrainBpe makes: the project's models are small, and a larger table
// would cost more embedding parameters than a tiny model can learn.
inline constexpr int32_t kMaxBpeVocabSize = 4096;

struct BpeOptions {
  // Total tokens, including the 256 byte tokens and the special tokens; 256 + #specials to
  // kMaxBpeVocabSize. Training may stop below it (see min_pair_count).
  int32_t vocab_size = 2048;
  // Control tokens, e.g. {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}: non-empty, distinct,
  // and not the text of a byte token (a single printable character such as "!").
  std::vector<std::string> special_tokens;
  // Splits text into words; merges never cross word boundaries. Qwen2's puts every digit in a
  // word of its own, so numbers are copied digit by digit, which a tiny model learns easily.
  engine::PreTokenizer pre = engine::PreTokenizer::kQwen2;
  // Training stops when the most frequent pair occurs fewer times than this (at least 1):
  // merges seen once only memorise the corpus.
  int32_t min_pair_count = 2;
};

// A trained vocabulary in GGUF form.
struct BpeVocab {
  // Token texts as GGUF stores them: each byte as its printable code point (GPT-2's
  // bytes_to_unicode, so a space is "Ġ"); special tokens as written. Index = token id.
  std::vector<std::string> tokens;
  // kNormal for byte and merged tokens, kControl for special tokens.
  std::vector<engine::TokenType> types;
  // "left right" in GGUF form, in rank order (rank 0 first).
  std::vector<std::string> merges;
  // The pre-tokenizer's GGUF name (tokenizer.ggml.pre), e.g. "qwen2".
  std::string pre;
};

// Learns a vocabulary from `texts` (UTF-8; bytes that are not valid UTF-8 are seen as U+FFFD,
// as the tokenizers see them). The text of special tokens is cut out first and never merged
// into. InvalidArgument for a bad vocab_size, min_pair_count or special token list, and for a
// corpus with no text left once special tokens are removed. When the corpus runs out of pairs
// occurring min_pair_count times, training stops early and the vocabulary is smaller than
// vocab_size (tokens.size() says how large).
StatusOr<BpeVocab> TrainBpe(const std::vector<std::string>& texts, const BpeOptions& options);

// Each distinct word of the corpus (its bytes) -> the token ids the trainer ended with.
using BpeSegmentation = std::unordered_map<std::string, std::vector<int32_t>>;

// As above, and fills `*segmentation` (when not null) with the trainer's final segmentation
// of every training word, for tests (it must equal what the engine makes of that word) and
// for reporting how well the vocabulary compresses the corpus.
StatusOr<BpeVocab> TrainBpe(const std::vector<std::string>& texts, const BpeOptions& options,
                            BpeSegmentation* segmentation);

// One word of a text as the tokenizers see it: a special token, or bytes for BPE.
struct BpeWord {
  std::string bytes;     // the word's bytes (after U+FFFD replacement), or the special text
  int32_t special = -1;  // index into the special token list, or -1 for a BPE word
};

// The words of `text`: special tokens cut out longest first (among equal lengths in list
// order), each leftmost occurrence in turn, as the engine and llama.cpp do when parsing
// special tokens; every other stretch split by `pre`. Training counts these words; tests use
// the function to rebuild the trainer's segmentation of a text.
std::vector<BpeWord> SplitIntoWords(std::string_view text,
                                    const std::vector<std::string>& special_tokens,
                                    engine::PreTokenizer pre);

// The GGUF form of a byte: its token text, one printable code point in UTF-8.
const std::string& ByteTokenText(uint8_t byte);

// Writes the tokenizer.* metadata of `vocab` (model "gpt2", pre, tokens, token_type, merges),
// the special token ids by name (bos and padding: <|endoftext|>; eos: <|im_end|>, else
// <|endoftext|>; absent names are not written), add_bos_token = false (chat templates add
// what they need), and tokenizer.chat_template when `chat_template` is not empty.
void WriteTokenizerMetadata(const BpeVocab& vocab, std::string_view chat_template,
                            engine::GgufWriter* out);

}  // namespace agentry::train
