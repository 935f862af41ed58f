// Gradients of the training forward pass against finite differences, and the properties the
// trainer relies on: packing conversations changes nothing, neither thread count nor kernel
// table changes a bit.
#include "train/transformer.h"

#include <cmath>
#include <vector>

#include "train/rng.h"
#include <gtest/gtest.h>

namespace agentry::train {
namespace {

ModelConfig TinyConfig() {
  ModelConfig c;
  c.vocab = 40;
  c.dim = 32;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.ff = 64;
  c.ctx = 64;
  return c;
}

// Parameters far from the small initial ones, so every nonlinearity is exercised.
std::vector<float> RandomParams(const ModelConfig& c, uint64_t seed) {
  std::vector<float> p = InitialParameters(c, seed);
  Rng rng(seed + 1);
  const ParameterLayout layout = ParameterLayout::For(c);
  for (const TensorSlot& t : layout.tensors()) {
    for (int64_t i = 0; i < t.size; ++i) {
      float& v = p[t.offset + i];
      v = t.is_norm ? 0.5f + rng.Uniform() : 0.3f * rng.Normal();
    }
  }
  return p;
}

std::vector<int32_t> RandomTokens(Rng* rng, int n, int vocab) {
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (int32_t& t : out) t = static_cast<int32_t>(rng->Below(vocab));
  return out;
}

Batch TwoConversations(const ModelConfig& c, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  for (int len : {9, 6}) {
    std::vector<uint8_t> loss(static_cast<size_t>(len));
    for (uint8_t& l : loss) l = rng.Uniform() < 0.7f ? 1 : 0;
    b.Append(RandomTokens(&rng, len, static_cast<int>(c.vocab)), loss);
  }
  return b;
}

TEST(TransformerTest, GradientsMatchFiniteDifferencesInEveryTensor) {
  const ModelConfig c = TinyConfig();
  ASSERT_TRUE(c.Validate().ok());
  engine::ThreadPool pool(2);
  Transformer model(c, &pool);
  std::vector<float> params = RandomParams(c, 7);
  const Batch batch = TwoConversations(c, 11);
  ASSERT_GT(batch.n_targets(), 5);
  std::vector<float> grads(params.size());
  model.Step(batch, params.data(), grads.data());

  Rng pick(3);
  int checked = 0;
  for (const TensorSlot& t : model.layout().tensors()) {
    for (int s = 0; s < 6; ++s) {
      const int64_t i = t.offset + static_cast<int64_t>(pick.Below(t.size));
      // token_embd rows of tokens absent from the batch have zero gradient; that is checked
      // too, as a difference of (almost) zero.
      const float saved = params[i];
      const float eps = 1e-2f;
      params[i] = saved + eps;
      const double up = model.Step(batch, params.data(), nullptr);
      params[i] = saved - eps;
      const double down = model.Step(batch, params.data(), nullptr);
      params[i] = saved;
      const double fd = (up - down) / (2.0 * eps);
      EXPECT_NEAR(grads[i], fd, 2e-4 + 2e-2 * std::fabs(fd))
          << t.name << " element " << i - t.offset;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6 * static_cast<int>(model.layout().tensors().size()));
}

TEST(TransformerTest, DirectionalDerivativeMatchesFiniteDifference) {
  const ModelConfig c = TinyConfig();
  engine::ThreadPool pool(2);
  Transformer model(c, &pool);
  std::vector<float> params = RandomParams(c, 21);
  const Batch batch = TwoConversations(c, 22);
  std::vector<float> grads(params.size());
  model.Step(batch, params.data(), grads.data());
  Rng rng(5);
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<float> u(params.size());
    double norm = 0.0;
    for (float& v : u) {
      v = rng.Normal();
      norm += static_cast<double>(v) * v;
    }
    double g_dot_u = 0.0;
    for (size_t i = 0; i < u.size(); ++i) {
      u[i] = static_cast<float>(u[i] / std::sqrt(norm));
      g_dot_u += static_cast<double>(grads[i]) * u[i];
    }
    const float eps = 1e-2f;
    std::vector<float> p(params);
    for (size_t i = 0; i < p.size(); ++i) p[i] = params[i] + eps * u[i];
    const double up = model.Step(batch, p.data(), nullptr);
    for (size_t i = 0; i < p.size(); ++i) p[i] = params[i] - eps * u[i];
    const double down = model.Step(batch, p.data(), nullptr);
    const double fd = (up - down) / (2.0 * eps);
    EXPECT_NEAR(g_dot_u, fd, 1e-4 + 1e-2 * std::fabs(fd)) << "trial " << trial;
  }
}

// Packing two conversations into one batch computes what each computes alone: the loss is
// their target-weighted mean and so is the gradient.
TEST(TransformerTest, PackedConversationsDoNotSeeEachOther) {
  const ModelConfig c = TinyConfig();
  engine::ThreadPool pool(2);
  Transformer model(c, &pool);
  const std::vector<float> params = RandomParams(c, 31);
  Rng rng(32);
  const std::vector<int32_t> a = RandomTokens(&rng, 11, 40);
  const std::vector<int32_t> b = RandomTokens(&rng, 7, 40);
  const std::vector<uint8_t> all(20, 1);
  Batch packed, only_a, only_b;
  packed.Append(a, all);
  packed.Append(b, all);
  only_a.Append(a, all);
  only_b.Append(b, all);
  std::vector<float> g_packed(params.size()), g_a(params.size()), g_b(params.size());
  const double l_packed = model.Step(packed, params.data(), g_packed.data());
  const double l_a = model.Step(only_a, params.data(), g_a.data());
  const double l_b = model.Step(only_b, params.data(), g_b.data());
  const double na = static_cast<double>(only_a.n_targets());
  const double nb = static_cast<double>(only_b.n_targets());
  EXPECT_NEAR(l_packed, (l_a * na + l_b * nb) / (na + nb), 1e-5);
  for (size_t i = 0; i < params.size(); ++i) {
    const double expect = (g_a[i] * na + g_b[i] * nb) / (na + nb);
    ASSERT_NEAR(g_packed[i], expect, 1e-5 + 1e-4 * std::fabs(expect)) << "parameter " << i;
  }
}

TEST(TransformerTest, SameBitsForAnyThreadCount) {
  const ModelConfig c = TinyConfig();
  const std::vector<float> params = RandomParams(c, 41);
  const Batch batch = TwoConversations(c, 42);
  std::vector<std::vector<float>> grads;
  std::vector<double> losses;
  for (int threads : {1, 2, 3}) {
    engine::ThreadPool pool(threads);
    Transformer model(c, &pool);
    grads.emplace_back(params.size());
    losses.push_back(model.Step(batch, params.data(), grads.back().data()));
  }
  for (size_t k = 1; k < grads.size(); ++k) {
    EXPECT_EQ(losses[k], losses[0]);
    EXPECT_EQ(grads[k], grads[0]) << "thread count " << k + 1;
  }
}

// Every kernel table gives the same bits, so a model trains identically on any x86 CPU (the
// scalar table stands in for the reference on a machine without AVX-512). Widths that are not
// multiples of a vector (vocab 100, ff 96, conversations of 37 and 21 tokens) take every
// kernel through its tails.
TEST(TransformerTest, SameBitsOnEveryKernelTable) {
  ModelConfig c = TinyConfig();
  c.vocab = 100;
  c.dim = 64;
  c.ff = 96;
  const std::vector<float> params = RandomParams(c, 43);
  Rng rng(44);
  Batch batch;
  for (int len : {37, 21}) {
    std::vector<uint8_t> loss(static_cast<size_t>(len), 1);
    batch.Append(RandomTokens(&rng, len, static_cast<int>(c.vocab)), loss);
  }
  engine::ThreadPool pool(2);
  Transformer reference(c, &pool, kernels::ScalarKernels());
  std::vector<float> want(params.size());
  const double want_loss = reference.Step(batch, params.data(), want.data());
  int compared = 0;
  for (const kernels::KernelTable* table : {kernels::Avx2Kernels(), kernels::AvxVnniKernels(),
                                            kernels::Avx512Kernels(), &kernels::Kernels()}) {
    if (table == nullptr) continue;
    Transformer model(c, &pool, *table);
    std::vector<float> got(params.size());
    EXPECT_EQ(model.Step(batch, params.data(), got.data()), want_loss) << table->isa;
    EXPECT_EQ(got, want) << table->isa;
    ++compared;
  }
  if (compared == 1) GTEST_SKIP() << "this CPU runs only the scalar kernels: nothing to compare";
}

TEST(ModelConfigTest, ValidateNamesTheBadField) {
  ModelConfig c = TinyConfig();
  c.kv_heads = 3;
  EXPECT_NE(c.Validate().message().find("kv_heads"), std::string::npos);
  c = TinyConfig();
  c.dim = 48;
  EXPECT_NE(c.Validate().message().find("dim"), std::string::npos);
  c = TinyConfig();
  c.vocab = 0;
  EXPECT_NE(c.Validate().message().find("vocab"), std::string::npos);
}

}  // namespace
}  // namespace agentry::train
