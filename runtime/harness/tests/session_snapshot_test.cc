#include "runtime/harness/session_snapshot.h"

#include <gtest/gtest.h>

namespace agentry::harness {
namespace {

TEST(SessionSnapshotTest, RoundTripsAndTheKeyDependsOnModelAndInstructions) {
  SessionSnapshot s;
  s.through_seq = 12;
  s.prompt_key = PromptKey("triage", "You triage tickets.");
  s.daemon_bytes = std::string("kv\0bytes", 8);
  StatusOr<SessionSnapshot> back = DecodeSessionSnapshot(EncodeSessionSnapshot(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->through_seq, 12);
  EXPECT_EQ(back->prompt_key, s.prompt_key);
  EXPECT_EQ(back->daemon_bytes, s.daemon_bytes);
  EXPECT_NE(PromptKey("triage", "You triage tickets!"), s.prompt_key);
  EXPECT_NE(PromptKey("other", "You triage tickets."), s.prompt_key);
  EXPECT_NE(PromptKey("tri", "ageYou triage tickets."), s.prompt_key);
}

TEST(SessionSnapshotTest, AnythingElseIsRefusedWithTheReason) {
  SessionSnapshot s;
  s.through_seq = 3;
  s.prompt_key = "k";
  s.daemon_bytes = "kv";
  const std::string good = EncodeSessionSnapshot(s);
  const auto reason = [](std::string_view blob) {
    return DecodeSessionSnapshot(blob).status().message();
  };
  EXPECT_NE(reason("KVSN....").find("magic"), std::string::npos);
  for (size_t cut = 4; cut < 21; ++cut) {
    EXPECT_NE(reason(std::string_view(good).substr(0, cut)).find("truncated at"), std::string::npos)
        << cut;
  }
  std::string version = good;
  version[4] = 2;
  EXPECT_NE(reason(version).find("version 2, this runtime reads 1"), std::string::npos);
  EXPECT_NE(reason(std::string_view(good).substr(0, good.size() - 2)).find("no KV bytes"),
            std::string::npos);
  s.through_seq = 0;
  EXPECT_NE(reason(EncodeSessionSnapshot(s)).find("through_seq"), std::string::npos);
}

}  // namespace
}  // namespace agentry::harness
