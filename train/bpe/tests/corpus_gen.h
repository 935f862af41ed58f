// train/bpe/tests/corpus_gen.h — a deterministic synthetic corpus for the BPE tests: chat
// turns in the ChatML format (<|im_start|> ... <|im_end|>), English sentences from word
// lists, ticket numbers, dates and JSON tool calls, so that merges, digits and special tokens
// all occur. Its own generator (no std:: distributions), so every platform gets the same
// bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace agentry::train::test_support {

class CorpusGenerator {
 public:
  explicit CorpusGenerator(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}

  // xorshift64*: enough spread for picking words.
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
  template <size_t N>
  const char* Pick(const char* const (&list)[N]) {
    return list[Below(N)];
  }

  // A made-up name of two to four syllables ("Kavolin"): thousands of distinct words, so
  // that a 2048-token vocabulary has enough pairs to learn.
  std::string Name() {
    static const char* const kSyllables[] = {"ka",  "vo",  "lin", "mer", "to", "sa",   "ri",
                                             "del", "qua", "nor", "pe",  "zu", "bran", "ith"};
    std::string s;
    const size_t n = 2 + Below(3);
    for (size_t i = 0; i < n; ++i) s += Pick(kSyllables);
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
    return s;
  }

  std::string Sentence() {
    static const char* const kSubjects[] = {"The customer", "Our team",   "The agent",
                                            "A user",       "The server", "The operator",
                                            "My manager",   "The model",  "Everyone"};
    static const char* const kVerbs[] = {"opened",      "closed",   "updated", "reviewed",
                                         "asked about", "reported", "fixed",   "escalated"};
    static const char* const kObjects[] = {
        "the ticket", "a billing issue",    "the deployment",    "the login page",
        "an invoice", "the weather report", "the storage quota", "a new feature"};
    static const char* const kTails[] = {
        "yesterday", "this morning", "after lunch", "before the release",
        "again",     "on time",      "last week",   "without any problems"};
    std::string s = std::string(Pick(kSubjects)) + " " + Pick(kVerbs) + " " + Pick(kObjects) + " " +
                    Pick(kTails);
    if (Below(3) == 0) s += ", ticket " + std::to_string(1000 + Below(9000));
    if (Below(2) == 0) s += " for " + Name() + " " + Name();
    return s + (Below(4) == 0 ? "?" : ".");
  }

  std::string ToolCall() {
    static const char* const kTools[] = {"get_ticket", "close_ticket", "get_weather",
                                         "list_orders"};
    return "{\"name\":\"" + std::string(Pick(kTools)) +
           "\",\"arguments\":{\"id\":" + std::to_string(Below(100000)) + "}}";
  }

  // One conversation of a few turns.
  std::string Conversation() {
    std::string s = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
    const size_t turns = 1 + Below(3);
    for (size_t t = 0; t < turns; ++t) {
      s += "<|im_start|>user\n" + Sentence() + " " + Sentence() + "<|im_end|>\n";
      s += "<|im_start|>assistant\n";
      if (Below(2) == 0) {
        s += ToolCall();
      } else {
        s += Sentence() + "\n\n  " + Sentence() + " Date: 2024-" + std::to_string(10 + Below(3)) +
             "-" + std::to_string(10 + Below(19));
      }
      s += "<|im_end|>\n";
    }
    return s + "<|endoftext|>";
  }

 private:
  uint64_t state_;
};

// Conversations until `bytes` bytes are reached.
inline std::vector<std::string> GenerateCorpus(size_t bytes, uint64_t seed) {
  CorpusGenerator gen(seed);
  std::vector<std::string> texts;
  size_t total = 0;
  while (total < bytes) {
    texts.push_back(gen.Conversation());
    total += texts.back().size();
  }
  return texts;
}

inline const std::vector<std::string>& ChatSpecialTokens() {
  static const std::vector<std::string> kTokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  return kTokens;
}

}  // namespace agentry::train::test_support
