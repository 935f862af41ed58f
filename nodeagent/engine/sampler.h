// nodeagent/engine/sampler.h — choose the next token from logits.
//
// The chain, in llama.cpp's order: penalties over recent tokens (repetition, frequency,
// presence) -> the caller's token mask (constrained decoding) -> top-k -> top-p -> min-p ->
// temperature -> a draw from a seeded generator. Temperature 0 is greedy. The same seed and
// the same logits give the same tokens.
//
//   StatusOr<Sampler> s = Sampler::Create({.temperature = 0.7f, .seed = 42});
//   StatusOr<int32_t> next = s->Sample(logits.data(), n_vocab);
//   s->Accept(*next);
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <random>
#include <vector>

#include "common/status.h"

namespace agentry::engine {

struct SamplerParams {
  float temperature = 0.8f;     // 0: greedy
  int32_t top_k = 40;           // 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off
  float repeat_penalty = 1.0f;  // 1: off
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t penalty_last_n = 64;  // how many recent tokens the penalties look at
  uint64_t seed = 0;
};

// InvalidArgument naming the parameter for values outside their range.
Status ValidateSamplerParams(const SamplerParams& params);

// Sets allowed[id] = 0 for every token that must not come next; called once per step
// with `allowed` all ones and sized to the vocabulary.
using TokenMask = std::function<void(std::vector<uint8_t>* allowed)>;

// The tokens a draw chooses among, best first (higher logit, then lower id): the k best
// allowed ones, or every allowed one when k is 0. `allowed` may be null (all allowed).
// InvalidArgument naming a NaN logit, allowed or not. TopCandidates keeps a heap of k in one
// pass over the vocabulary; TopCandidatesRef sorts them all, the definition the tests hold it
// to.
Status TopCandidates(const float* logits, const uint8_t* allowed, int64_t n_vocab, int32_t k,
                     std::vector<int32_t>* out);
Status TopCandidatesRef(const float* logits, const uint8_t* allowed, int64_t n_vocab, int32_t k,
                        std::vector<int32_t>* out);

class Sampler {
 public:
  static StatusOr<Sampler> Create(const SamplerParams& params);

  void SetMask(TokenMask mask) { mask_ = std::move(mask); }
  // FailedPrecondition when the mask allows no token; InvalidArgument when logits hold NaN.
  StatusOr<int32_t> Sample(const float* logits, int64_t n_vocab);
  // Records a token the sequence now contains (for the penalties).
  void Accept(int32_t token);
  void Reset();

 private:
  explicit Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  TokenMask mask_;
  // Per-step buffers, kept to avoid allocating in the decode loop.
  std::vector<float> logits_;
  std::vector<uint8_t> allowed_;
  std::vector<int32_t> candidates_;
  std::vector<double> weights_;
};

}  // namespace agentry::engine
