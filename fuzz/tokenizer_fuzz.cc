// Fuzzes the tokenizers on untrusted text (prompts, tool results): any bytes, with and
// without special-token parsing, through byte-level BPE under every pre-tokenizer and
// through SentencePiece. Every id must be in the vocabulary, and text that is valid UTF-8
// must decode back to itself — never a crash, hang or out-of-range id.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/unicode/unicode.h"
#include "nodeagent/engine/gguf_writer.h"
#include "nodeagent/engine/tokenizer.h"

namespace {

using agentry::engine::GgufFile;
using agentry::engine::GgufWriter;
using agentry::engine::Tokenizer;

// A vocabulary with every byte, a few merges (so merging runs) and special tokens.
std::string ByteLevelVocab(const char* pre) {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    // GPT-2's printable code point for each byte.
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    std::string t;
    agentry::unicode::AppendUtf8(printable ? static_cast<uint32_t>(b) : next++, &t);
    tokens.push_back(t);
    types.push_back(1);
  }
  const std::string space = "\xC4\xA0";
  for (const std::string& t :
       std::vector<std::string>{space + "t", "he", space + "the", "in", "er"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  for (const char* t : {"<|im_start|>", "<|im_end|>", "<|im_"}) {
    tokens.emplace_back(t);
    types.push_back(3);
  }
  tokens.emplace_back("<tool>");
  types.push_back(4);
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", pre);
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", {space + " t", "h e", space + "t he", "i n", "e r"});
  return w.Serialize();
}

std::string SentencePieceVocab() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens.emplace_back(name);
    types.push_back(6);
  }
  for (const char* t : {"\xE2\x96\x81", "\xE2\x96\x81t", "h", "e", "he", "\xE2\x96\x81the"}) {
    tokens.emplace_back(t);
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetFloat32Array("tokenizer.ggml.scores", scores);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  return w.Serialize();
}

struct Loaded {
  std::string bytes;
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

std::vector<Loaded>& Tokenizers() {
  static std::vector<Loaded>* all = [] {
    auto* v = new std::vector<Loaded>();
    std::vector<std::string> vocabs = {SentencePieceVocab()};
    for (const char* pre : {"llama-bpe", "qwen2", "smollm", "gpt-2"}) {
      vocabs.push_back(ByteLevelVocab(pre));
    }
    for (std::string& bytes : vocabs) {
      Loaded l;
      l.bytes = std::move(bytes);
      auto file = GgufFile::FromBuffer(l.bytes, "fuzz-vocab.gguf");
      if (!file.ok()) std::abort();
      l.file = std::move(file).value();
      auto t = Tokenizer::FromGguf(*l.file);
      if (!t.ok()) std::abort();
      l.tokenizer = std::make_unique<Tokenizer>(std::move(t).value());
      v->push_back(std::move(l));
    }
    return v;
  }();
  return *all;
}

std::string ExpectedRoundTrip(const Tokenizer& t, std::string_view text) {
  std::string expected(text);
  if (t.model() != Tokenizer::Model::kSentencePiece) return expected;
  const std::string_view kSpaceMark = "\xE2\x96\x81";
  for (size_t at = expected.find(kSpaceMark); at != std::string::npos;
       at = expected.find(kSpaceMark, at + 1)) {
    expected.replace(at, kSpaceMark.size(), " ");
  }
  return expected;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the tokenizer and whether special tokens are parsed; the text is
  // the rest, at most 4 KiB (length adds time, not new paths).
  const std::vector<Loaded>& all = Tokenizers();
  const Tokenizer& t = *all[data[0] % all.size()].tokenizer;
  const bool parse_special = (data[0] / all.size()) % 2 == 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 1),
                              std::min<size_t>(size - 1, 4096));
  const std::vector<int32_t> ids = t.Encode(text, false, parse_special);
  for (int32_t id : ids) {
    if (id < 0 || id >= t.n_vocab()) std::abort();
  }
  // Round trip: without special tokens every byte of valid UTF-8 comes back. SentencePiece
  // writes spaces as U+2581 and Decode turns every U+2581 back into a space (llama.cpp does
  // the same), so a literal U+2581 in the text comes back as a space; the front space it adds
  // is dropped by Decode.
  if (!parse_special && agentry::unicode::CheckUtf8(text).ok() &&
      t.Decode(ids) != ExpectedRoundTrip(t, text)) {
    std::abort();
  }
  return 0;
}
