// runtime/constrain/token_mask.h — turn a Matcher's state into the sampler's per-step token
// mask, so that constrained decoding can only produce text the grammar accepts.
//
// A token may come next iff every byte of its piece can be advanced from the matcher's
// state, one after another. Checking 150k tokens one by one would redo the same prefixes
// again and again (real vocabularies hold " the", " they", " them", ...), so the masker
// keeps the pieces in a trie, laid out flat in depth-first order: one pass over it advances
// each shared prefix once, and a prefix the grammar refuses skips its whole subtree. While
// a token's bytes stay inside one terminal (text inside a JSON string, most of the time)
// only the stacks' top frames change, so the walk steps those and builds a whole matcher
// state only where a terminal ends.
//
// Tokens without bytes (control tokens) are never allowed, except end-of-generation tokens,
// which are allowed exactly when the matcher's input is a whole match: generation may stop
// only once the tool call is complete, and must stop then if nothing more can follow.
//
//   TokenMasker masker(tokenizer);        // once per vocabulary
//   Matcher m(*ToolCallGrammar(tools));   // once per constrained span
//   sampler.SetMask(masker.MaskFor(&m));
//   ... each step: id = sampler.Sample(...); masker.Accept(&m, id);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "nodeagent/engine/sampler.h"
#include "nodeagent/engine/tokenizer.h"
#include "runtime/constrain/matcher.h"

namespace agentry::runtime::constrain {

class TokenMasker {
 public:
  // Reads every token's piece and end-of-generation flag; keeps no reference to `tokenizer`.
  explicit TokenMasker(const engine::Tokenizer& tokenizer);

  // Clears allowed[id] for every token that cannot come next from `m`'s state; leaves the
  // other entries as they are (a caller may combine masks). Entries past the vocabulary (a
  // model's padded output rows) are cleared too.
  void Mask(const Matcher& m, std::vector<uint8_t>* allowed) const;
  // Advances `m` by `token`'s piece. FailedPrecondition, with `m` unchanged, when the mask
  // would not allow the token; InvalidArgument for an id outside the vocabulary. An
  // end-of-generation token leaves `m` as it is (allowed only when m is complete).
  Status Accept(Matcher* m, int32_t token) const;
  // A mask for engine::Sampler::SetMask that reads `*m` at each step. `m` and this masker
  // must outlive the sampler's use of it.
  engine::TokenMask MaskFor(const Matcher* m) const;

  int32_t n_vocab() const { return n_vocab_; }

 private:
  int32_t n_vocab_ = 0;
  std::vector<std::string> pieces_;  // by token id
  std::vector<int32_t> end_of_generation_;
  std::vector<int32_t> never_;  // no bytes and not end-of-generation
  // The trie without its root, in depth-first order. Node i stands for a prefix of length
  // depth_[i] whose last byte is byte_[i]; its subtree is [i, skip_[i]); the tokens whose
  // piece is exactly that prefix are tokens_[token_begin_[i], token_begin_[i + 1]), so a
  // subtree's tokens are tokens_[token_begin_[i], token_begin_[skip_[i]]).
  std::vector<uint8_t> byte_;
  std::vector<uint32_t> depth_;
  std::vector<uint32_t> skip_;
  std::vector<uint32_t> token_begin_;  // one more entry than nodes
  std::vector<int32_t> tokens_;
  size_t max_depth_ = 0;
};

}  // namespace agentry::runtime::constrain
