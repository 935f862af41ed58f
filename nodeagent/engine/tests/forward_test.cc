// EvalBatch: several sequences in one forward pass get exactly what each gets alone.
#include "nodeagent/engine/forward.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "nodeagent/engine/test_model.h"

namespace agentry::engine {
namespace {

struct BatchCase {
  const char* arch;
  GgmlType type;
  KvCacheType cache;
};

void PrintTo(const BatchCase& c, std::ostream* os) {
  *os << c.arch << "_" << GgmlTypeDescribe(static_cast<uint32_t>(c.type)) << "_"
      << KvCacheTypeName(c.cache);
}

std::unique_ptr<Model> BuildModel(const std::string& arch, GgmlType type, uint64_t seed,
                                  std::string* bytes) {
  // Head size 64: the Q8_0 cache rotates keys and values. The synthetic vocabulary has 329
  // tokens, so the output matrix ends in a partial group of rows.
  *bytes = BuildTestModel({.arch = arch,
                           .dim = 256,
                           .layers = 2,
                           .heads = 4,
                           .kv_heads = 2,
                           .type = type,
                           .seed = seed})
               .value();
  return Model::Load(GgufFile::FromBuffer(*bytes, "batch.gguf").value()).value();
}

// What one sequence evaluates, step by step: a piece of tokens per step (none: it sits the
// step out), and whether the step wants the logits of all its tokens.
struct Plan {
  std::vector<std::vector<int32_t>> pieces;
  std::vector<bool> all_logits;
};

std::vector<int32_t> Tokens(int n, int seed) {
  std::vector<int32_t> t;
  t.reserve(n);
  for (int i = 0; i < n; ++i) t.push_back(3 + (seed * 97 + i * 31) % 320);
  return t;
}

// Prefills of different lengths (one past the attention's 48-token chunk), a second prefill
// chunk while others decode, two-token pieces (fewer than a register tile), sequences that
// skip steps, and decode steps.
std::vector<Plan> Plans() {
  std::vector<Plan> plans(5);
  const int steps = 7;
  for (Plan& p : plans) {
    p.pieces.resize(steps);
    p.all_logits.assign(steps, false);
  }
  plans[0].pieces = {Tokens(5, 1), {7}, {9}, {11}, {13}, {15}, {17}};
  plans[1].pieces = {{1}, {20}, {21}, {22}, {23}, {24}, {25}};
  plans[2].pieces = {Tokens(50, 2), Tokens(20, 3), {30}, {31}, {}, {32}, {33}};
  plans[2].all_logits[1] = true;
  plans[3].pieces = {{}, {}, Tokens(3, 4), {40}, Tokens(2, 5), {41}, {}};
  plans[4].pieces = {Tokens(2, 6), {}, {50}, Tokens(49, 7), {51}, {}, {52}};
  plans[4].all_logits[3] = true;
  return plans;
}

class BatchTest : public ::testing::TestWithParam<BatchCase> {};

TEST_P(BatchTest, EverySequenceGetsTheBitsItGetsAlone) {
  const BatchCase c = GetParam();
  std::string bytes;
  const std::unique_ptr<Model> model = BuildModel(c.arch, c.type, 11, &bytes);
  const std::vector<Plan> plans = Plans();
  const size_t steps = plans[0].pieces.size();

  // Alone, on one thread: each sequence's pieces through Context::Eval.
  ThreadPool one_thread(1);
  std::vector<std::vector<std::vector<float>>> alone(plans.size());
  std::vector<std::string> alone_kv;
  for (const Plan& plan : plans) {
    Context ctx(*model, 256, &one_thread, c.cache);
    std::vector<std::vector<float>>& out = alone[&plan - plans.data()];
    for (size_t step = 0; step < steps; ++step) {
      out.emplace_back();
      if (plan.pieces[step].empty()) continue;
      ASSERT_TRUE(ctx.Eval(plan.pieces[step], plan.all_logits[step], &out.back()).ok());
    }
    alone_kv.push_back(ctx.kv_cache().Serialize());
  }

  // Together, on three threads: each step one batch of every sequence with a piece.
  ThreadPool pool(3);
  ForwardBuffers buffers;
  std::vector<std::unique_ptr<Context>> contexts;
  for (size_t i = 0; i < plans.size(); ++i) {
    contexts.push_back(std::make_unique<Context>(*model, 256, &pool, c.cache));
  }
  std::vector<std::vector<float>> logits(plans.size());
  for (size_t step = 0; step < steps; ++step) {
    std::vector<BatchSequence> batch;
    for (size_t i = 0; i < plans.size(); ++i) {
      if (plans[i].pieces[step].empty()) continue;
      batch.push_back(
          {contexts[i].get(), plans[i].pieces[step], plans[i].all_logits[step], &logits[i]});
    }
    ASSERT_TRUE(EvalBatch(batch, &pool, &buffers).ok());
    for (size_t i = 0; i < plans.size(); ++i) {
      if (plans[i].pieces[step].empty()) continue;
      const std::vector<float>& want = alone[i][step];
      ASSERT_EQ(logits[i].size(), want.size()) << "sequence " << i << " step " << step;
      EXPECT_EQ(std::memcmp(logits[i].data(), want.data(), want.size() * sizeof(float)), 0)
          << "sequence " << i << " step " << step << ": logits differ from alone";
    }
  }
  for (size_t i = 0; i < plans.size(); ++i) {
    EXPECT_EQ(contexts[i]->kv_cache().Serialize(), alone_kv[i]) << "sequence " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, BatchTest,
                         ::testing::Values(BatchCase{"llama", GgmlType::kF32, KvCacheType::kF16},
                                           BatchCase{"llama", GgmlType::kF16, KvCacheType::kF16},
                                           BatchCase{"llama", GgmlType::kBF16, KvCacheType::kF16},
                                           BatchCase{"llama", GgmlType::kQ8_0, KvCacheType::kF16},
                                           BatchCase{"llama", GgmlType::kQ8_0, KvCacheType::kQ8_0},
                                           BatchCase{"llama", GgmlType::kQ4_0, KvCacheType::kF16},
                                           BatchCase{"llama", GgmlType::kQ4_1, KvCacheType::kF16},
                                           BatchCase{"llama", GgmlType::kQ5_0, KvCacheType::kQ8_0},
                                           BatchCase{"llama", GgmlType::kQ5_1, KvCacheType::kF16},
                                           BatchCase{"qwen2", GgmlType::kQ8_0, KvCacheType::kF16}),
                         [](const auto& info) {
                           std::string name =
                               std::string(info.param.arch) + "_" +
                               GgmlTypeDescribe(static_cast<uint32_t>(info.param.type)) + "_" +
                               KvCacheTypeName(info.param.cache);
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

// MatMul over segments, directly: each segment's rows equal MatMul of the segment alone.
TEST(MatMulTest, SegmentsGetTheBitsTheyGetAlone) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0,
                        GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1}) {
    std::string bytes;
    const std::unique_ptr<Model> model = BuildModel("llama", type, 3, &bytes);
    for (const Weight* w : {&model->output(), &model->layers()[1].ffn_up}) {
      const std::vector<int64_t> segments = {1, 4, 1, 1, 50, 2, 1, 3};
      int64_t rows = 0;
      for (int64_t n : segments) rows += n;
      std::vector<float> x(rows * w->in);
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 201) / 100 - 1;
      ThreadPool pool(3);
      MatMulScratch scratch;
      std::vector<float> together(rows * w->out);
      MatMul(*w, x.data(), segments, together.data(), &pool, &scratch);
      int64_t first = 0;
      for (int64_t n : segments) {
        std::vector<float> alone(n * w->out);
        MatMul(*w, &x[first * w->in], n, alone.data(), &pool, &scratch);
        EXPECT_EQ(std::memcmp(alone.data(), &together[first * w->out], alone.size() * 4), 0)
            << GgmlTypeDescribe(static_cast<uint32_t>(type)) << " rows " << w->out
            << ", the segment of " << n << " at " << first;
        first += n;
      }
    }
  }
}

// Q8_0 segments of up to 8 tokens take the decode tiles, whose outputs do not depend on the
// tokens beside them: each token's rows are bit for bit those it gets as a segment of one,
// however the segment is cut (a step where sessions begin their turns with a few tokens reads
// the weights in the tiles' cost, not the prefill gemm's 16-token-wide one for each of them).
TEST(MatMulTest, ShortQ8_0SegmentsGetEachTokensDecodeBits) {
  std::string bytes;
  const std::unique_ptr<Model> model = BuildModel("llama", GgmlType::kQ8_0, 5, &bytes);
  for (const Weight* w : {&model->output(), &model->layers()[0].ffn_down}) {
    constexpr int64_t kTokens = 8;
    std::vector<float> x(kTokens * w->in);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 203) / 100 - 1;
    ThreadPool pool(2);
    MatMulScratch scratch;
    std::vector<float> each(kTokens * w->out);
    MatMul(*w, x.data(), std::vector<int64_t>(kTokens, 1), each.data(), &pool, &scratch);
    for (const std::vector<int64_t>& cut :
         std::vector<std::vector<int64_t>>{{8}, {2, 2, 2, 2}, {3, 5}, {1, 7}, {2, 1, 5}}) {
      std::vector<float> y(kTokens * w->out);
      MatMul(*w, x.data(), cut, y.data(), &pool, &scratch);
      EXPECT_EQ(std::memcmp(y.data(), each.data(), y.size() * sizeof(float)), 0)
          << "rows " << w->out << ", segments of " << cut[0] << " first, " << cut.size()
          << " in all";
    }
  }
}

// MatMulShared: weights on one input (Q, K, V), each output bit for bit MatMul of its weight;
// weights of two dot types (Q8_0 and Q4_1 activations) too, through its fallback.
TEST(MatMulTest, SharedInputGivesEachWeightItsOwnBits) {
  std::string q8_bytes;
  std::string q41_bytes;
  const std::unique_ptr<Model> q8 = BuildModel("llama", GgmlType::kQ8_0, 3, &q8_bytes);
  const std::unique_ptr<Model> q41 = BuildModel("llama", GgmlType::kQ4_1, 3, &q41_bytes);
  const LayerWeights& a = q8->layers()[1];
  const LayerWeights& b = q41->layers()[1];
  const std::vector<std::vector<const Weight*>> groups = {
      {&a.wq, &a.wk, &a.wv}, {&a.ffn_gate, &a.ffn_up}, {&a.wq, &b.wk, &a.wv}};
  const std::vector<int64_t> segments = {1, 4, 1, 1, 50, 2, 1, 3};
  int64_t rows = 0;
  for (int64_t n : segments) rows += n;
  ThreadPool pool(3);
  MatMulScratch scratch;
  for (size_t g = 0; g < groups.size(); ++g) {
    const int64_t in = groups[g][0]->in;
    std::vector<float> x(rows * in);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 201) / 100 - 1;
    std::vector<std::vector<float>> shared(groups[g].size());
    std::vector<MatMulOutput> outputs;
    for (size_t i = 0; i < groups[g].size(); ++i) {
      shared[i].resize(rows * groups[g][i]->out);
      outputs.push_back({groups[g][i], shared[i].data()});
    }
    MatMulShared(outputs, x.data(), segments, &pool, &scratch);
    for (size_t i = 0; i < groups[g].size(); ++i) {
      std::vector<float> alone(shared[i].size());
      MatMul(*groups[g][i], x.data(), segments, alone.data(), &pool, &scratch);
      EXPECT_EQ(std::memcmp(alone.data(), shared[i].data(), alone.size() * sizeof(float)), 0)
          << "group " << g << ", weight " << i;
    }
  }
}

class BatchErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = BuildModel("llama", GgmlType::kQ8_0, 1, &bytes_);
    other_ = BuildModel("llama", GgmlType::kQ8_0, 2, &other_bytes_);
  }
  // The batch's error; every context it names keeps what it held.
  Status Fails(const std::vector<BatchSequence>& batch) {
    std::vector<int64_t> before;
    before.reserve(batch.size());
    for (const BatchSequence& s : batch) before.push_back(s.context->n_past());
    Status status = EvalBatch(batch, &pool_, &buffers_);
    for (size_t i = 0; i < batch.size(); ++i) {
      EXPECT_EQ(batch[i].context->n_past(), before[i]) << "sequence " << i << " changed";
    }
    return status;
  }
  std::string bytes_, other_bytes_;
  std::unique_ptr<Model> model_, other_;
  ThreadPool pool_{2};
  ForwardBuffers buffers_;
};

TEST_F(BatchErrorTest, AnyBadSequenceFailsTheBatchNamingItAndChangesNothing) {
  Context a(*model_, 16, &pool_), b(*model_, 16, &pool_), c(*other_, 16, &pool_);
  std::vector<float> la, lb;
  ASSERT_TRUE(a.Eval({1, 5, 6}, false, &la).ok());
  const std::vector<int32_t> ok = {7, 8};
  const std::vector<int32_t> bad = {9, 329};
  const std::vector<int32_t> none;
  const std::vector<int32_t> long_piece(14, 4);

  EXPECT_EQ(EvalBatch({}, &pool_, &buffers_).code(), StatusCode::kInvalidArgument);
  Status s = Fails({{&a, ok, false, &la}, {&b, bad, false, &lb}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "sequence 1: token 1: id 329 is outside the vocabulary of 329");
  s = Fails({{&a, ok, false, &la}, {&a, ok, false, &lb}});
  EXPECT_EQ(s.message(), "sequence 1: the same context as sequence 0");
  s = Fails({{&a, ok, false, &la}, {&c, ok, false, &lb}});
  EXPECT_EQ(s.message(), "sequence 1: a context of another model than sequence 0's");
  s = Fails({{&a, none, false, &la}, {&b, ok, false, &lb}});
  EXPECT_EQ(s.message(), "sequence 0: no tokens to evaluate");
  s = Fails({{&b, ok, false, &lb}, {&a, long_piece, false, &la}});
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(s.message(), "sequence 1: 14 tokens after 3 do not fit in the context of 16 tokens");
  s = Fails({{&a, ok, false, nullptr}, {&b, ok, false, &lb}});
  EXPECT_EQ(s.message(), "sequence 0: nowhere to put the logits");
  // Alone, a context's errors read as Context::Eval's always have.
  s = Fails({{&b, bad, false, &lb}});
  EXPECT_EQ(s.message(), "token 1: id 329 is outside the vocabulary of 329");

  // And the contexts still work.
  ASSERT_TRUE(EvalBatch(std::vector<BatchSequence>{{&a, ok, false, &la}, {&b, ok, false, &lb}},
                        &pool_, &buffers_)
                  .ok());
  EXPECT_EQ(a.n_past(), 5);
  EXPECT_EQ(b.n_past(), 2);
}

}  // namespace
}  // namespace agentry::engine
