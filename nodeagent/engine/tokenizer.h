// nodeagent/engine/tokenizer.h — text <-> token ids, from the vocabulary in a GGUF file.
//
// Two models, chosen by `tokenizer.ggml.model`:
//  - `llama`: SentencePiece-style BPE (Llama 2, TinyLlama, stories). Whitespace becomes
//    U+2581, a leading space is added, adjacent pieces merge by highest score, and
//    characters outside the vocabulary fall back to <0xXX> byte tokens.
//  - `gpt2`: byte-level BPE (Llama 3, Qwen2, SmolLM). The text is split into words by the
//    family's pre-tokenizer (`tokenizer.ggml.pre`, see pretokenizer.h), each byte is mapped
//    to a printable code point, and pieces merge by the rank of `tokenizer.ggml.merges`.
//
// Special tokens (control, user-defined and unknown) are cut out of the text before either
// model runs, longest first, as llama.cpp does: user-defined ones always, control ones only
// when the caller asks to parse special tokens (chat templates do; user text must not).
// Ids equal llama.cpp's on its own test vectors and on the project's multilingual text
// (tests/tokenizer_test.cc, tests/bpe_tokenizer_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/pretokenizer.h"

namespace agentry::engine {

enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Bytes [offset, offset + length) of a text.
struct TextSpan {
  size_t offset;
  size_t length;
};

class Tokenizer {
 public:
  enum class Model { kSentencePiece, kByteLevelBpe };

  static StatusOr<Tokenizer> FromGguf(const GgufFile& file);

  // Token ids for `text`. `add_bos` puts the beginning-of-sequence token first;
  // `parse_special` turns the text of control tokens (e.g. "<|im_start|>") into those tokens
  // instead of tokenizing it as text. Never fails: bytes that are not valid UTF-8 are
  // tokenized as llama.cpp does (byte tokens for SentencePiece, U+FFFD for byte-level BPE).
  std::vector<int32_t> Encode(std::string_view text, bool add_bos,
                              bool parse_special = false) const;
  // As above, but no control token is recognised where it overlaps a `literal` span (as if
  // parse_special were false there): the messages inside a chat template stay text
  // whatever they contain.
  std::vector<int32_t> Encode(std::string_view text, bool add_bos, bool parse_special,
                              const std::vector<TextSpan>& literal) const;
  // Encode for untrusted input: InvalidArgument (with the byte offset) for invalid UTF-8.
  StatusOr<std::vector<int32_t>> EncodeUtf8(std::string_view text, bool add_bos,
                                            bool parse_special = false) const;

  // The bytes one token stands for in output: U+2581 as a space and <0xXX> as its byte
  // (SentencePiece), mapped code points back to bytes (byte-level BPE); control tokens as
  // nothing. A piece may be part of a UTF-8 sequence that the next token completes.
  std::string Piece(int32_t id) const;
  // Pieces of `ids` joined; the space SentencePiece added before the first word is dropped.
  std::string Decode(const std::vector<int32_t>& ids) const;

  // True for tokens that end a generation: EOS, end-of-turn tokens named by the file or
  // known by name (<|eot_id|>, <|im_end|>, <|endoftext|>, ...).
  bool IsEndOfGeneration(int32_t id) const;
  // The id of a token by its exact text, or -1.
  int32_t Find(std::string_view piece) const;

  Model model() const { return model_; }
  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  bool add_bos_default() const { return add_bos_ && bos_ >= 0; }
  TokenType type(int32_t id) const { return types_[id]; }
  const std::string& text(int32_t id) const { return tokens_[id]; }

 private:
  // A stretch of the input: raw text [offset, offset + length), or one special token.
  struct Fragment {
    int32_t token;  // -1 for text
    size_t offset;
    size_t length;
  };
  std::vector<Fragment> SplitSpecial(std::string_view text, bool parse_special,
                                     const std::vector<TextSpan>& literal) const;
  void EncodeSentencePiece(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeByteLevel(std::string_view text, std::vector<int32_t>* out) const;
  void MergeByteLevelWord(const std::string& word, std::vector<int32_t>* out) const;
  int MergeRank(std::string_view left, std::string_view right) const;
  void AppendByteTokens(std::string_view bytes, std::vector<int32_t>* out) const;

  Model model_ = Model::kSentencePiece;
  PreTokenizer pre_ = PreTokenizer::kLlama3;
  bool ignore_merges_ = false;  // llama3: a word that is a token is taken whole
  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  std::unordered_map<std::string, int32_t> index_;
  std::unordered_map<std::string, int> merge_ranks_;  // "left right" -> rank
  std::vector<int32_t> special_;                      // longest text first
  std::vector<bool> end_of_generation_;
  int32_t byte_tokens_[256];          // byte -> its <0xXX> token, or -1
  std::vector<int16_t> byte_values_;  // token -> the byte it stands for, or -1
  int32_t bos_ = 1;
  int32_t eos_ = 2;
  int32_t unk_ = 0;
  bool add_bos_ = true;
  bool add_space_prefix_ = true;
};

}  // namespace agentry::engine
