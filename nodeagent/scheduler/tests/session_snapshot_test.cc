// The session snapshot format: a round trip keeps every field; damaged bytes are refused with
// an error that says what is wrong.
#include "nodeagent/scheduler/session_snapshot.h"

#include <gtest/gtest.h>

namespace agentry::scheduler {
namespace {

SessionState Sample() {
  SessionState s;
  s.model = "agent";
  s.transcript = {{"system", "be brief"}, {"user", "hi"}, {"assistant", "hello \xF0\x9F\x91\x8B"}};
  s.tokens = {1, 400, 401, 2, 0, 7};
  s.exact_prefix = 4;
  s.pending = {5};
  s.kv_text = "<s>hi</s>hello";
  s.text_end = {-1, -1, -1, 9, 12, 14};
  s.kv = std::string("AGKV\0\1", 6);
  return s;
}

TEST(SessionSnapshotTest, RoundTripKeepsEveryField) {
  const SessionState in = Sample();
  StatusOr<SessionState> out = DecodeSessionState(EncodeSessionState(in));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->model, in.model);
  EXPECT_EQ(out->raw_tokens, in.raw_tokens);
  ASSERT_EQ(out->transcript.size(), in.transcript.size());
  for (size_t i = 0; i < in.transcript.size(); ++i) {
    EXPECT_EQ(out->transcript[i].role, in.transcript[i].role);
    EXPECT_EQ(out->transcript[i].content, in.transcript[i].content);
  }
  EXPECT_EQ(out->tokens, in.tokens);
  EXPECT_EQ(out->exact_prefix, in.exact_prefix);
  EXPECT_EQ(out->pending, in.pending);
  EXPECT_EQ(out->kv_text, in.kv_text);
  EXPECT_EQ(out->text_end, in.text_end);
  EXPECT_EQ(out->kv, in.kv);
}

TEST(SessionSnapshotTest, DamagedBytesAreRefused) {
  const std::string good = EncodeSessionState(Sample());
  for (size_t cut : {size_t{0}, size_t{3}, size_t{11}, good.size() / 2, good.size() - 1}) {
    StatusOr<SessionState> s = DecodeSessionState(good.substr(0, cut));
    EXPECT_FALSE(s.ok()) << "cut at " << cut;
  }
  for (size_t at = 4; at < good.size(); at += 7) {
    std::string bad = good;
    bad[at] ^= 0x01;
    EXPECT_EQ(DecodeSessionState(bad).status().code(), StatusCode::kDataLoss) << "byte " << at;
  }
  EXPECT_EQ(DecodeSessionState("XXXX" + good.substr(4)).status().code(),
            StatusCode::kInvalidArgument);
  // Well-formed bytes that say something impossible name the field.
  SessionState odd = Sample();
  odd.exact_prefix = 9;
  const Status s = DecodeSessionState(EncodeSessionState(odd)).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("exact_prefix 9 exceeds n_tokens 6"), std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace agentry::scheduler
