// bench/sampler_bench.cc — what choosing a token costs a decode step, on the vocabulary sizes
// of the models we serve (32,000: Llama 2 and TinyLlama; 49,152: SmolLM; 128,256: Llama 3).
//
// Each row times the sampler's top-k (engine::TopCandidates, one pass with a heap of k)
// against a std::partial_sort of the whole vocabulary, as the sampler chose before, on the
// same logits in the same run; then a whole Sample with the default parameters (temperature
// 0.8, top-k 40, top-p 0.95, min-p 0.05) and a greedy one.
//
//   build/default/bench/sampler_bench
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "nodeagent/engine/sampler.h"

namespace {

using agentry::engine::Sampler;
using Clock = std::chrono::steady_clock;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "sampler_bench: %s failed\n", what);
    std::exit(1);
  }
}

// The reference: every token a candidate, the best k of them partially sorted to the front
// (std::partial_sort, a heap over the whole vocabulary), as the sampler chose them before.
void PartialSortTopK(const float* logits, int64_t vocab, int32_t k, std::vector<int32_t>* out) {
  out->resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) (*out)[i] = static_cast<int32_t>(i);
  std::partial_sort(out->begin(), out->begin() + k, out->end(), [logits](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  out->resize(static_cast<size_t>(k));
}

// Microseconds per call of each of `fns`, the best of 7 rounds of `calls`; the rounds take
// the functions in turn, so a drift of this machine's speed reaches all of them alike.
template <size_t N>
std::array<double, N> MicrosPerCall(int calls, const std::array<std::function<void()>, N>& fns) {
  std::array<double, N> best;
  best.fill(1e30);
  for (int round = 0; round < 7; ++round) {
    for (size_t f = 0; f < N; ++f) {
      const auto start = Clock::now();
      for (int i = 0; i < calls; ++i) fns[f]();
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
      best[f] = std::min(best[f], us / calls);
    }
  }
  return best;
}

}  // namespace

int main() {
  std::printf("%8s | %27s | %7s | %11s | %11s\n", "vocab", "top-40: one pass / partial sort",
              "faster", "Sample (us)", "greedy (us)");
  std::mt19937 rng(1);
  // Logits spread like a model's: most far below the few that matter.
  std::normal_distribution<float> logit(0.0f, 3.0f);
  for (const int64_t vocab : {32000, 49152, 128256}) {
    std::vector<float> logits(static_cast<size_t>(vocab));
    for (float& l : logits) l = logit(rng);
    std::vector<int32_t> fast;
    std::vector<int32_t> ref;
    agentry::StatusOr<Sampler> sampler = Sampler::Create({});
    agentry::StatusOr<Sampler> greedy = Sampler::Create({.temperature = 0.0f});
    Check(sampler.ok() && greedy.ok(), "sampler");
    const auto sample = [&](Sampler* s) {
      agentry::StatusOr<int32_t> t = s->Sample(logits.data(), vocab);
      Check(t.ok(), "sample");
      s->Accept(*t);
    };
    const std::array<double, 4> us = MicrosPerCall<4>(
        static_cast<int>(2'000'000 / vocab),
        {[&] {
           Check(agentry::engine::TopCandidates(logits.data(), nullptr, vocab, 40, &fast).ok(),
                 "top-k");
         },
         [&] { PartialSortTopK(logits.data(), vocab, 40, &ref); }, [&] { sample(&*sampler); },
         [&] { sample(&*greedy); }});
    Check(fast == ref, "the same candidates");
    std::printf("%8lld | %13.1f us / %10.1f us | %6.1fx | %11.1f | %11.1f\n",
                static_cast<long long>(vocab), us[0], us[1], us[1] / us[0], us[2], us[3]);
  }
  return 0;
}
