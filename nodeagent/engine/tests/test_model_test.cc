#include "nodeagent/engine/test_model.h"

#include <cmath>

#include <gtest/gtest.h>

#include "nodeagent/engine/context.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::engine {
namespace {

struct Loaded {
  std::string bytes;
  std::unique_ptr<Model> model;
};

Loaded Build(const TestModelSpec& spec) {
  Loaded out;
  StatusOr<std::string> bytes = BuildTestModel(spec);
  EXPECT_TRUE(bytes.ok()) << bytes.status().message();
  out.bytes = std::move(bytes).value();
  StatusOr<std::unique_ptr<GgufFile>> f = GgufFile::FromBuffer(out.bytes, "test.gguf");
  EXPECT_TRUE(f.ok()) << f.status().message();
  StatusOr<std::unique_ptr<Model>> m = Model::Load(std::move(f).value());
  EXPECT_TRUE(m.ok()) << m.status().message();
  out.model = std::move(m).value();
  return out;
}

std::vector<float> Logits(const Model& model, const std::vector<int32_t>& tokens) {
  ThreadPool pool(2);
  Context ctx(model, 64, &pool);
  std::vector<float> logits;
  EXPECT_TRUE(ctx.Eval(tokens, true, &logits).ok());
  return logits;
}

TEST(TestModelTest, SameSeedSameBytesOtherSeedOtherBytes) {
  EXPECT_EQ(*BuildTestModel({.seed = 3}), *BuildTestModel({.seed = 3}));
  EXPECT_NE(*BuildTestModel({.seed = 3}), *BuildTestModel({.seed = 4}));
}

TEST(TestModelTest, EveryArchitectureAndTypeLoadsAndRuns) {
  for (const char* arch : {"llama", "qwen2"}) {
    for (GgmlType type :
         {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ4_0}) {
      for (bool tied : {false, true}) {
        Loaded m = Build({.arch = arch, .type = type, .tied = tied});
        const ModelParams& p = m.model->params();
        EXPECT_EQ(p.arch, arch);
        EXPECT_EQ(p.rope_style,
                  std::string(arch) == "qwen2" ? RopeStyle::kNeox : RopeStyle::kNormal);
        EXPECT_EQ(m.model->layers()[0].bq.data != nullptr, std::string(arch) == "qwen2");
        EXPECT_EQ(m.model->output().data == m.model->token_embd().data, tied);
        const std::vector<float> logits = Logits(*m.model, {1, 300, 301, 302});
        for (float l : logits) ASSERT_TRUE(std::isfinite(l)) << arch;
      }
    }
  }
}

TEST(TestModelTest, F32AndQ8_0VariantsHoldTheSameWeights) {
  Loaded f32 = Build({.type = GgmlType::kF32, .seed = 9});
  Loaded q8 = Build({.type = GgmlType::kQ8_0, .seed = 9});
  const Weight& a = f32.model->layers()[0].wq;
  const Weight& b = q8.model->layers()[0].wq;
  std::vector<float> ra(a.in), rb(b.in);
  for (int64_t row = 0; row < a.out; ++row) {
    DequantizeRow(a, row, ra.data());
    DequantizeRow(b, row, rb.data());
    ASSERT_EQ(ra, rb) << row;
  }
  // The logits differ only by the Q8_0 rounding of the activations.
  const std::vector<float> la = Logits(*f32.model, {1, 300, 301});
  const std::vector<float> lb = Logits(*q8.model, {1, 300, 301});
  double max_diff = 0;
  for (size_t i = 0; i < la.size(); ++i)
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(la[i] - lb[i])));
  EXPECT_LT(max_diff, 0.5);
  EXPECT_GT(max_diff, 0.0);
}

TEST(TestModelTest, Bf16VariantHoldsTheWeightsRoundedToBf16) {
  Loaded f32 = Build({.type = GgmlType::kF32, .seed = 9});
  Loaded bf16 = Build({.type = GgmlType::kBF16, .seed = 9});
  const Weight& a = f32.model->layers()[1].ffn_down;
  const Weight& b = bf16.model->layers()[1].ffn_down;
  ASSERT_EQ(b.type, GgmlType::kBF16);
  ASSERT_EQ(b.row_bytes, static_cast<uint64_t>(b.in) * 2);
  std::vector<float> ra(a.in), rb(b.in);
  int64_t changed = 0;
  for (int64_t row = 0; row < a.out; ++row) {
    DequantizeRow(a, row, ra.data());
    DequantizeRow(b, row, rb.data());
    for (int64_t i = 0; i < a.in; ++i) {
      // Within half a BF16 step (2^-8 relative) of the F32 weight, and some do move.
      ASSERT_LE(std::fabs(ra[i] - rb[i]), std::fabs(ra[i]) * std::ldexp(1.0f, -8)) << row;
      changed += ra[i] != rb[i];
    }
  }
  EXPECT_GT(changed, 0);
  // BF16 rounding of weights and activations moves the logits, but not far.
  const std::vector<float> la = Logits(*f32.model, {1, 300, 301});
  const std::vector<float> lb = Logits(*bf16.model, {1, 300, 301});
  double max_diff = 0;
  for (size_t i = 0; i < la.size(); ++i)
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(la[i] - lb[i])));
  EXPECT_LT(max_diff, 0.5);
  EXPECT_GT(max_diff, 0.0);
}

TEST(TestModelTest, SyntheticVocabularyTokenizes) {
  Loaded m = Build({});
  StatusOr<Tokenizer> t = Tokenizer::FromGguf(m.model->file());
  ASSERT_TRUE(t.ok()) << t.status().message();
  const std::vector<int32_t> ids = t->Encode("once upon a time", true);
  EXPECT_EQ(t->Decode(ids), "once upon a time");
  EXPECT_EQ(ids.size(), 5u);  // <s> ▁once ▁upon ▁a ▁time
}

TEST(TestModelTest, BadSpecsAreRefused) {
  EXPECT_FALSE(BuildTestModel({.arch = "gpt2"}).ok());
  EXPECT_FALSE(BuildTestModel({.dim = 60}).ok());
  EXPECT_FALSE(BuildTestModel({.heads = 3}).ok());
  EXPECT_FALSE(BuildTestModel({.type = GgmlType::kQ4_K}).ok());
}

}  // namespace
}  // namespace agentry::engine
