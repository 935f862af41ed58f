#include "nodeagent/engine/kv_cache.h"

#include <gtest/gtest.h>

#include "nodeagent/engine/context.h"
#include "nodeagent/engine/test_model.h"

namespace agentry::engine {
namespace {

class KvCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = std::move(BuildTestModel({.layers = 2, .seed = 11}).value());
    model_ =
        std::move(Model::Load(std::move(GgufFile::FromBuffer(bytes_, "kv.gguf").value())).value());
  }
  std::vector<float> Next(Context* ctx, int32_t token) {
    std::vector<float> logits;
    EXPECT_TRUE(ctx->Eval({token}, false, &logits).ok());
    return logits;
  }
  std::string bytes_;
  std::unique_ptr<Model> model_;
  ThreadPool pool_{2};
  const std::vector<int32_t> prompt_ = {1, 300, 301, 302, 303, 304};
};

TEST_F(KvCacheTest, SnapshotRestoreContinuesIdentically) {
  Context a(*model_, 32, &pool_);
  std::vector<float> logits;
  ASSERT_TRUE(a.Eval(prompt_, false, &logits).ok());
  const std::string snapshot = a.kv_cache().Serialize();

  Context b(*model_, 32, &pool_);
  ASSERT_TRUE(b.kv_cache().Restore(snapshot).ok());
  EXPECT_EQ(b.n_past(), 6);
  // The next step from the restored cache is bit-identical to the original's.
  EXPECT_EQ(Next(&a, 305), Next(&b, 305));
}

TEST_F(KvCacheTest, TruncateRewindsAndCopyPrefixShares) {
  Context a(*model_, 32, &pool_);
  std::vector<float> logits;
  ASSERT_TRUE(a.Eval(prompt_, false, &logits).ok());
  // Fresh run over the first four tokens, then token 305.
  Context fresh(*model_, 32, &pool_);
  ASSERT_TRUE(fresh.Eval({1, 300, 301, 302}, false, &logits).ok());
  const std::vector<float> want = Next(&fresh, 305);

  a.kv_cache().Truncate(4);
  EXPECT_EQ(a.n_past(), 4);
  EXPECT_EQ(Next(&a, 305), want);

  Context shared(*model_, 32, &pool_);
  ASSERT_TRUE(shared.kv_cache().CopyPrefixFrom(fresh.kv_cache(), 4).ok());
  EXPECT_EQ(Next(&shared, 305), want);
  EXPECT_FALSE(shared.kv_cache().CopyPrefixFrom(fresh.kv_cache(), 99).ok());
}

TEST_F(KvCacheTest, DamagedSnapshotsAreRefusedAndLeaveTheCacheAlone) {
  Context a(*model_, 32, &pool_);
  std::vector<float> logits;
  ASSERT_TRUE(a.Eval(prompt_, false, &logits).ok());
  const std::string good = a.kv_cache().Serialize();
  Context b(*model_, 32, &pool_);
  ASSERT_TRUE(b.Eval({1, 300}, false, &logits).ok());

  std::string flipped = good;
  flipped[40] ^= 0x10;
  EXPECT_EQ(b.kv_cache().Restore(flipped).code(), StatusCode::kDataLoss);
  EXPECT_EQ(b.kv_cache().Restore(good.substr(0, good.size() - 1)).code(), StatusCode::kDataLoss);
  EXPECT_EQ(b.kv_cache().Restore("AG").code(), StatusCode::kDataLoss);
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_NE(b.kv_cache().Restore(magic).message().find("offset 0: not a KV snapshot"),
            std::string::npos);
  EXPECT_EQ(b.n_past(), 2);  // untouched by every failed restore

  Context small(*model_, 4, &pool_);
  EXPECT_NE(small.kv_cache().Restore(good).message().find("do not fit in a context of 4"),
            std::string::npos);
  std::string other_bytes = std::move(BuildTestModel({.layers = 3}).value());
  auto other = std::move(
      Model::Load(std::move(GgufFile::FromBuffer(other_bytes, "o.gguf").value())).value());
  Context c(*other, 32, &pool_);
  EXPECT_NE(c.kv_cache().Restore(good).message().find("made for 2 layers"), std::string::npos);
}

}  // namespace
}  // namespace agentry::engine
