#include "nodeagent/engine/kv_cache.h"

#include <cstring>

#include <gtest/gtest.h>

#include "common/crc32c.h"
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

// Q8_0 caches need a head size that is a multiple of 32: this model's is 64, so keys and
// values are also Hadamard-rotated (KvCache::k_rotation).
class KvCacheQ8_0Test : public KvCacheTest {
 protected:
  void SetUp() override {
    bytes_ = std::move(
        BuildTestModel({.dim = 256, .layers = 2, .heads = 4, .kv_heads = 2, .seed = 11}).value());
    model_ =
        std::move(Model::Load(std::move(GgufFile::FromBuffer(bytes_, "kv8.gguf").value())).value());
  }
  static uint32_t U32At(const std::string& b, size_t offset) {
    uint32_t v;
    std::memcpy(&v, b.data() + offset, 4);
    return v;
  }
  static void SetU32(std::string* b, size_t offset, uint32_t v) {
    std::memcpy(b->data() + offset, &v, 4);
  }
  // Recomputes the trailing CRC-32C after an edit, so only the edited field is wrong.
  static void Reseal(std::string* b) {
    const std::string_view sealed = *b;
    SetU32(b, b->size() - 4, Crc32c(sealed.substr(0, b->size() - 4)));
  }
};

TEST_F(KvCacheQ8_0Test, SizeTypeAndRotation) {
  Context f16(*model_, 32, &pool_);
  Context q8(*model_, 32, &pool_, KvCacheType::kQ8_0);
  EXPECT_EQ(f16.kv_cache().type(), KvCacheType::kF16);
  EXPECT_EQ(q8.kv_cache().type(), KvCacheType::kQ8_0);
  // 34 bytes per 32 values against 64.
  EXPECT_EQ(q8.kv_cache().bytes() * 64, f16.kv_cache().bytes() * 34);
  EXPECT_EQ(q8.kv_cache().k_rotation(), 64);
  EXPECT_EQ(q8.kv_cache().v_rotation(), 64);
  EXPECT_EQ(f16.kv_cache().k_rotation(), 0);

  // llama.cpp's choice of block sizes for other head sizes.
  ModelParams p = model_->params();
  p.head_dim = 128;
  EXPECT_EQ(KvCache(p, 4, KvCacheType::kQ8_0).k_rotation(), 128);
  EXPECT_EQ(KvCache(p, 4, KvCacheType::kQ8_0).v_rotation(), 64);
  p.head_dim = 192;
  EXPECT_EQ(KvCache(p, 4, KvCacheType::kQ8_0).k_rotation(), 64);
  p.head_dim = 32;
  EXPECT_EQ(KvCache(p, 4, KvCacheType::kQ8_0).k_rotation(), 0);
  EXPECT_TRUE(KvCache::CheckType(p, KvCacheType::kQ8_0).ok());
  p.head_dim = 16;
  EXPECT_EQ(KvCache::CheckType(p, KvCacheType::kQ8_0).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(KvCache::CheckType(p, KvCacheType::kF16).ok());
}

TEST_F(KvCacheQ8_0Test, ParsesTypeNames) {
  EXPECT_EQ(*ParseKvCacheType("f16"), KvCacheType::kF16);
  EXPECT_EQ(*ParseKvCacheType("q8_0"), KvCacheType::kQ8_0);
  EXPECT_STREQ(KvCacheTypeName(KvCacheType::kQ8_0), "q8_0");
  const Status bad = ParseKvCacheType("q4_0").status();
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("want f16 or q8_0, got \"q4_0\""), std::string::npos);
}

TEST_F(KvCacheQ8_0Test, ModelWithSmallHeadsRefusesAQ8_0Cache) {
  // The base fixture's model has heads of 16.
  std::string small = std::move(BuildTestModel({.layers = 2, .seed = 11}).value());
  auto model =
      std::move(Model::Load(std::move(GgufFile::FromBuffer(small, "small.gguf").value())).value());
  Context ctx(*model, 32, &pool_, KvCacheType::kQ8_0);
  std::vector<float> logits;
  const Status s = ctx.Eval(prompt_, false, &logits);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("multiple of 32"), std::string::npos) << s.message();
  EXPECT_EQ(ctx.n_past(), 0);
}

TEST_F(KvCacheQ8_0Test, SnapshotRestoreContinuesIdentically) {
  Context a(*model_, 32, &pool_, KvCacheType::kQ8_0);
  std::vector<float> logits;
  ASSERT_TRUE(a.Eval(prompt_, false, &logits).ok());
  const std::string snapshot = a.kv_cache().Serialize();
  EXPECT_EQ(U32At(snapshot, 4), 2u);   // version
  EXPECT_EQ(U32At(snapshot, 20), 8u);  // type: Q8_0
  EXPECT_EQ(U32At(snapshot, 24), 64u);
  EXPECT_EQ(U32At(snapshot, 28), 64u);
  Context b(*model_, 32, &pool_, KvCacheType::kQ8_0);
  ASSERT_TRUE(b.kv_cache().Restore(snapshot).ok());
  EXPECT_EQ(b.n_past(), 6);
  EXPECT_EQ(Next(&a, 305), Next(&b, 305));
}

TEST_F(KvCacheQ8_0Test, TruncateRewindsAndCopyPrefixShares) {
  Context a(*model_, 32, &pool_, KvCacheType::kQ8_0);
  std::vector<float> logits;
  ASSERT_TRUE(a.Eval(prompt_, false, &logits).ok());
  Context fresh(*model_, 32, &pool_, KvCacheType::kQ8_0);
  ASSERT_TRUE(fresh.Eval({1, 300, 301, 302}, false, &logits).ok());
  const std::vector<float> want = Next(&fresh, 305);

  a.kv_cache().Truncate(4);
  EXPECT_EQ(a.n_past(), 4);
  EXPECT_EQ(Next(&a, 305), want);

  Context shared(*model_, 32, &pool_, KvCacheType::kQ8_0);
  ASSERT_TRUE(shared.kv_cache().CopyPrefixFrom(fresh.kv_cache(), 4).ok());
  EXPECT_EQ(Next(&shared, 305), want);
}

TEST_F(KvCacheQ8_0Test, TypesDoNotMix) {
  Context f16(*model_, 32, &pool_);
  Context q8(*model_, 32, &pool_, KvCacheType::kQ8_0);
  std::vector<float> logits;
  ASSERT_TRUE(f16.Eval(prompt_, false, &logits).ok());
  ASSERT_TRUE(q8.Eval({1, 300}, false, &logits).ok());

  Status s = q8.kv_cache().CopyPrefixFrom(f16.kv_cache(), 4);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("from a f16 cache into a q8_0 cache"), std::string::npos)
      << s.message();
  s = q8.kv_cache().Restore(f16.kv_cache().Serialize());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("offset 20: the snapshot holds a f16 cache, this cache is q8_0"),
            std::string::npos)
      << s.message();
  s = f16.kv_cache().Restore(q8.kv_cache().Serialize());
  EXPECT_NE(s.message().find("holds a q8_0 cache, this cache is f16"), std::string::npos)
      << s.message();
  EXPECT_EQ(q8.n_past(), 2);  // both untouched
  EXPECT_EQ(f16.n_past(), 6);

  // Same type and shape but another rotation (a model with other head sizes and the same
  // KV width would give one): refused too.
  std::string rotated = q8.kv_cache().Serialize();
  SetU32(&rotated, 24, 128);
  Reseal(&rotated);
  s = q8.kv_cache().Restore(rotated);
  EXPECT_NE(s.message().find("offset 24: keys and values rotated in blocks of 128"),
            std::string::npos)
      << s.message();
  std::string unknown = q8.kv_cache().Serialize();
  SetU32(&unknown, 20, 2);
  Reseal(&unknown);
  EXPECT_NE(q8.kv_cache().Restore(unknown).message().find("KV type 2 is not"), std::string::npos);
  std::string future = q8.kv_cache().Serialize();
  SetU32(&future, 4, 3);
  Reseal(&future);
  EXPECT_NE(q8.kv_cache().Restore(future).message().find("version 3 is not supported"),
            std::string::npos);
}

// A snapshot written before Q8_0 caches existed: version 1, no rotation fields, F16.
TEST_F(KvCacheQ8_0Test, Version1SnapshotsStillRestore) {
  Context a(*model_, 32, &pool_);
  std::vector<float> logits;
  ASSERT_TRUE(a.Eval(prompt_, false, &logits).ok());
  const std::string v2 = a.kv_cache().Serialize();
  ASSERT_EQ(U32At(v2, 24), 0u);
  ASSERT_EQ(U32At(v2, 28), 0u);
  std::string v1 = v2.substr(0, 24) + v2.substr(32);  // drop the two rotation fields
  SetU32(&v1, 4, 1);
  Reseal(&v1);
  Context b(*model_, 32, &pool_);
  ASSERT_TRUE(b.kv_cache().Restore(v1).ok());
  EXPECT_EQ(b.n_past(), 6);
  EXPECT_EQ(Next(&a, 305), Next(&b, 305));

  // Version 1 had no Q8_0: such a header is damaged or forged, and refused.
  std::string v1_q8 = v1;
  SetU32(&v1_q8, 20, 8);
  Reseal(&v1_q8);
  Context q8(*model_, 32, &pool_, KvCacheType::kQ8_0);
  EXPECT_NE(q8.kv_cache().Restore(v1_q8).message().find("version 1 snapshot must hold an F16"),
            std::string::npos);
  // And a truncated version 1 snapshot is data loss, as before.
  EXPECT_EQ(b.kv_cache().Restore(v1.substr(0, v1.size() - 3)).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace agentry::engine
