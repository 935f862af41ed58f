// nodeagent/engine/pretokenizer.h — splits text into words before byte-level BPE merges.
//
// Byte-level BPE vocabularies (`tokenizer.ggml.model = gpt2`) never merge across the word
// boundaries a model family's pre-tokenizer regex draws, so the split must be exactly the
// family's. The regexes are implemented by hand, as scanners over code points (a regex
// engine with Unicode classes is not available here, and these run on every prompt):
//
//   llama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
//           | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2   the same with \p{N} (one digit per word) in place of \p{N}{1,3}
//   gpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   smollm  every \p{N} on its own first, then gpt2 on the rest (also StarCoder's)
//
// Ids must equal llama.cpp's, so where llama.cpp's scanners differ from the regex (the
// contractions are case-insensitive in llama3 and qwen2 only), this follows llama.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace agentry::engine {

enum class PreTokenizer { kLlama3, kQwen2, kGpt2, kSmolLM };

// The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value; Unimplemented (naming the
// supported values) for others.
StatusOr<PreTokenizer> PreTokenizerFromName(std::string_view name);
const char* PreTokenizerName(PreTokenizer pre);

// Word lengths, in code points, that cover `cps` in order.
std::vector<size_t> SplitWords(PreTokenizer pre, const std::vector<uint32_t>& cps);

}  // namespace agentry::engine
