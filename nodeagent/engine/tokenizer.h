// nodeagent/engine/tokenizer.h — text <-> token ids, from the vocabulary in a GGUF file.
//
// Implemented: SentencePiece-style BPE (`tokenizer.ggml.model = llama`: Llama 2, TinyLlama,
// stories): whitespace becomes U+2581, a leading space is added, adjacent pieces merge by
// highest score, and characters outside the vocabulary fall back to <0xXX> byte tokens.
// Ids equal llama.cpp's on its own test vectors (tests/tokenizer_test.cc). Byte-level BPE
// (`gpt2`: Llama 3, Qwen2, SmolLM) is not implemented yet and is refused by name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/gguf.h"

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

class Tokenizer {
 public:
  static StatusOr<Tokenizer> FromGguf(const GgufFile& file);

  // Token ids for `text`; with `add_bos` the beginning-of-sequence token comes first.
  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const;
  // The text of one token as it appears in output: U+2581 as a space, byte tokens as their
  // byte, control tokens as nothing.
  std::string Piece(int32_t id) const;
  // Pieces of `ids` joined; the space SentencePiece added before the first word is dropped.
  std::string Decode(const std::vector<int32_t>& ids) const;

  int32_t n_vocab() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }
  bool add_bos_default() const { return add_bos_; }
  TokenType type(int32_t id) const { return types_[id]; }
  const std::string& text(int32_t id) const { return tokens_[id]; }

 private:
  int32_t Find(std::string_view piece) const;
  void AppendByteTokens(std::string_view bytes, std::vector<int32_t>* out) const;

  std::vector<std::string> tokens_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  std::unordered_map<std::string, int32_t> index_;
  int32_t byte_tokens_[256];          // byte -> its <0xXX> token, or -1
  std::vector<int16_t> byte_values_;  // token -> the byte it stands for, or -1
  int32_t bos_ = 1;
  int32_t eos_ = 2;
  int32_t unk_ = 0;
  bool add_bos_ = true;
  bool add_space_prefix_ = true;
};

}  // namespace agentry::engine
