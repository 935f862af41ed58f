#include "nodeagent/engine/sampler.h"

#include <cmath>
#include <map>
#include <random>

#include <gtest/gtest.h>

namespace agentry::engine {
namespace {

// NOLINTNEXTLINE(cert-err58-cpp): test data; a throwing allocation here fails the test run
const std::vector<float> kLogits = {1.0f, 3.0f, 2.0f, 0.5f, 2.9f};

Sampler Make(SamplerParams p) {
  StatusOr<Sampler> s = Sampler::Create(p);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return std::move(s).value();
}

TEST(SamplerTest, GreedyPicksTheArgmax) {
  Sampler s = Make({.temperature = 0.0f});
  EXPECT_EQ(*s.Sample(kLogits.data(), 5), 1);
}

TEST(SamplerTest, SameSeedSameTokens) {
  SamplerParams p{.temperature = 1.5f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 7};
  Sampler a = Make(p), b = Make(p);
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 200; ++i) {
    ta.push_back(*a.Sample(kLogits.data(), 5));
    tb.push_back(*b.Sample(kLogits.data(), 5));
  }
  EXPECT_EQ(ta, tb);
  a.Reset();
  EXPECT_EQ(*a.Sample(kLogits.data(), 5), ta[0]);
}

TEST(SamplerTest, DrawsFollowTheSoftmax) {
  Sampler s = Make({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 1});
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[*s.Sample(kLogits.data(), 5)];
  double total = 0;
  for (float l : kLogits) total += std::exp(l);
  for (int t = 0; t < 5; ++t) {
    EXPECT_NEAR(counts[t] / static_cast<double>(n), std::exp(kLogits[t]) / total, 0.015) << t;
  }
}

TEST(SamplerTest, TopKTopPAndMinPCutTheTail) {
  // top_k = 2 leaves tokens 1 and 4 only.
  Sampler k2 = Make({.temperature = 1.0f, .top_k = 2, .top_p = 1.0f, .min_p = 0.0f});
  for (int i = 0; i < 500; ++i) {
    const int32_t t = *k2.Sample(kLogits.data(), 5);
    EXPECT_TRUE(t == 1 || t == 4) << t;
  }
  // min_p = 0.5: tokens within log(2) of the best (3.0): 1 (3.0) and 4 (2.9).
  Sampler mp = Make({.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.5f});
  for (int i = 0; i < 500; ++i) {
    const int32_t t = *mp.Sample(kLogits.data(), 5);
    EXPECT_TRUE(t == 1 || t == 4) << t;
  }
  // top_p tiny: only the best survives.
  Sampler tp = Make({.temperature = 1.0f, .top_k = 0, .top_p = 0.01f, .min_p = 0.0f});
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*tp.Sample(kLogits.data(), 5), 1);
}

TEST(SamplerTest, PenaltiesDiscourageRepeats) {
  Sampler s = Make({.temperature = 0.0f, .repeat_penalty = 2.0f});
  s.Accept(1);  // token 1: 3.0 / 2 = 1.5, so token 4 (2.9) wins
  EXPECT_EQ(*s.Sample(kLogits.data(), 5), 4);
  Sampler f = Make({.temperature = 0.0f, .frequency_penalty = 0.2f});
  f.Accept(1);
  EXPECT_EQ(*f.Sample(kLogits.data(), 5), 4);  // 3.0 - 0.2 < 2.9
  Sampler pr = Make({.temperature = 0.0f, .presence_penalty = 0.05f});
  pr.Accept(1);
  pr.Accept(1);
  EXPECT_EQ(*pr.Sample(kLogits.data(), 5), 1);  // 3.0 - 0.05 > 2.9: presence counts once
  Sampler window = Make({.temperature = 0.0f, .repeat_penalty = 2.0f, .penalty_last_n = 1});
  window.Accept(1);
  window.Accept(3);  // token 1 has left the window
  EXPECT_EQ(*window.Sample(kLogits.data(), 5), 1);
}

TEST(SamplerTest, MaskConstrainsEveryStrategy) {
  for (float temperature : {0.0f, 1.0f}) {
    Sampler s = Make({.temperature = temperature, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f});
    s.SetMask([](std::vector<uint8_t>* allowed) {
      for (size_t i = 0; i < allowed->size(); ++i) (*allowed)[i] = i == 0 || i == 3;
    });
    for (int i = 0; i < 200; ++i) {
      const int32_t t = *s.Sample(kLogits.data(), 5);
      EXPECT_TRUE(t == 0 || t == 3) << t;
    }
  }
  Sampler none = Make({});
  none.SetMask([](std::vector<uint8_t>* allowed) { allowed->assign(allowed->size(), 0); });
  EXPECT_EQ(none.Sample(kLogits.data(), 5).status().code(), StatusCode::kFailedPrecondition);
}

TEST(SamplerTest, BadParametersAndLogitsAreErrors) {
  EXPECT_NE(Sampler::Create({.temperature = -1.0f}).status().message().find("sampler.temperature"),
            std::string::npos);
  EXPECT_FALSE(Sampler::Create({.top_k = -1}).ok());
  EXPECT_FALSE(Sampler::Create({.top_p = 0.0f}).ok());
  EXPECT_FALSE(Sampler::Create({.top_p = 1.5f}).ok());
  EXPECT_FALSE(Sampler::Create({.min_p = -0.1f}).ok());
  EXPECT_FALSE(Sampler::Create({.repeat_penalty = 0.0f}).ok());
  EXPECT_FALSE(Sampler::Create({.temperature = NAN}).ok());
  Sampler s = Make({});
  const std::vector<float> nan_logits = {1.0f, NAN};
  EXPECT_EQ(s.Sample(nan_logits.data(), 2).status().code(), StatusCode::kInvalidArgument);
}

// The one-pass heap against the full sort, on vocabularies whose logits tie often (a few
// distinct values) or rarely, with and without a mask, for k below, at and above the number
// of allowed tokens.
TEST(SamplerTest, TopCandidatesMatchesTheFullSort) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng() % 3000);
    const int distinct = trial % 3 == 0 ? 4 : 1 << 20;
    std::vector<float> logits(static_cast<size_t>(n));
    for (float& l : logits) l = static_cast<float>(static_cast<int>(rng() % distinct)) / 7.0f;
    std::vector<uint8_t> allowed(static_cast<size_t>(n));
    for (uint8_t& a : allowed) a = rng() % 4 != 0;
    for (const bool masked : {false, true}) {
      for (const int32_t k : {1, 2, 40, static_cast<int32_t>(n), 0}) {
        std::vector<int32_t> fast;
        std::vector<int32_t> ref;
        const uint8_t* mask = masked ? allowed.data() : nullptr;
        ASSERT_TRUE(TopCandidates(logits.data(), mask, n, k, &fast).ok());
        ASSERT_TRUE(TopCandidatesRef(logits.data(), mask, n, k, &ref).ok());
        ASSERT_EQ(fast, ref) << "n " << n << ", k " << k << ", masked " << masked;
      }
    }
  }
}

// A mask that allows no token, over a vocabulary larger than k (the one-pass path): no
// candidates, and the sampler says so, greedy or not.
TEST(SamplerTest, AMaskThatAllowsNothingLeavesNoCandidates) {
  const std::vector<float> logits(1000, 1.0f);
  const std::vector<uint8_t> none(logits.size(), 0);
  std::vector<int32_t> out;
  ASSERT_TRUE(TopCandidates(logits.data(), none.data(), 1000, 40, &out).ok());
  EXPECT_TRUE(out.empty());
  for (const float temperature : {0.0f, 0.8f}) {
    Sampler s = Make({.temperature = temperature});
    s.SetMask([](std::vector<uint8_t>* allowed) { allowed->assign(allowed->size(), 0); });
    EXPECT_EQ(s.Sample(logits.data(), 1000).status().code(), StatusCode::kFailedPrecondition);
  }
}

TEST(SamplerTest, ANanLogitAnywhereIsAnError) {
  const int64_t n = 100;
  for (const int64_t at : {int64_t{0}, int64_t{3}, int64_t{50}, n - 1}) {
    std::vector<float> logits(static_cast<size_t>(n), 1.0f);
    logits[static_cast<size_t>(at)] = NAN;
    std::vector<uint8_t> allowed(static_cast<size_t>(n), 1);
    allowed[static_cast<size_t>(at)] = 0;  // masked out, still an error
    std::vector<int32_t> out;
    for (const int32_t k : {4, 0}) {
      const Status s = TopCandidates(logits.data(), allowed.data(), n, k, &out);
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << at;
      EXPECT_NE(s.message().find("logit " + std::to_string(at)), std::string::npos) << s.message();
    }
  }
}

}  // namespace
}  // namespace agentry::engine
