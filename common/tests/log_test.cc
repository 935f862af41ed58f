#include "common/log/log.h"

#include <cstdlib>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace agentry::log {
namespace {

class CaptureSink : public Sink {
 public:
  void Write(std::string_view line) override {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(line);
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sink_ = std::make_shared<CaptureSink>();
    previous_sink_ = SetSink(sink_);
    previous_level_ = GetLevel();
    SetLevel(Level::kInfo);
  }
  void TearDown() override {
    SetSink(previous_sink_);
    SetLevel(previous_level_);
  }

  std::shared_ptr<CaptureSink> sink_;
  std::shared_ptr<Sink> previous_sink_;
  Level previous_level_ = Level::kInfo;
};

TEST_F(LogTest, LineIsJsonWithStandardFieldsInOrder) {
  Logger log("runtime");
  log.WithAgent("triage", "team-a")
      .WithSession("s-1")
      .Info("turn finished", {{"tokens", 812}, {"ok", true}});
  ASSERT_EQ(sink_->lines().size(), 1u);
  const std::string line = sink_->lines()[0];
  const auto json = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (auto it = json.begin(); it != json.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"ts", "level", "component", "msg", "agent", "namespace",
                                            "session", "tokens", "ok"}));
  EXPECT_EQ(json["level"], "info");
  EXPECT_EQ(json["component"], "runtime");
  EXPECT_EQ(json["msg"], "turn finished");
  EXPECT_EQ(json["agent"], "triage");
  EXPECT_EQ(json["namespace"], "team-a");
  EXPECT_EQ(json["session"], "s-1");
  EXPECT_EQ(json["tokens"], 812);
  EXPECT_EQ(json["ok"], true);
  // 2026-11-25T02:03:04.123Z
  const std::string ts = json["ts"];
  ASSERT_EQ(ts.size(), 24u) << ts;
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts.back(), 'Z');
}

TEST_F(LogTest, LevelFiltersLines) {
  Logger log("nodeagent");
  log.Debug("hidden");
  SetLevel(Level::kDebug);
  log.Debug("shown");
  SetLevel(Level::kOff);
  log.Error("hidden too");
  ASSERT_EQ(sink_->lines().size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(sink_->lines()[0])["msg"], "shown");
}

TEST_F(LogTest, ContextIsInheritedAndReplacedNotDuplicated) {
  Logger base("runtime");
  Logger s1 = base.WithSession("s-1");
  Logger s2 = s1.WithSession("s-2");
  s2.Info("x");
  base.Info("y");
  const auto lines = sink_->lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["session"], "s-2");
  EXPECT_EQ(lines[0].find("s-1"), std::string::npos);
  EXPECT_FALSE(nlohmann::json::parse(lines[1]).contains("session"));
}

TEST_F(LogTest, HostileTextStaysValidJson) {
  Logger log("runtime");
  log.Warn("tool said \"hi\"\n\x01",
           {{"result", std::string("\xFF\xFE bad utf8")}, {"nan", std::nan("")}});
  const auto json = nlohmann::json::parse(sink_->lines().at(0));
  EXPECT_EQ(json["msg"], "tool said \"hi\"\n\x01");
  EXPECT_EQ(json["nan"], "NaN");
}

TEST_F(LogTest, ConcurrentLinesNeverInterleave) {
  Logger log("bench");
  constexpr int kThreads = 8;
  constexpr int kLines = 500;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < kLines; ++i) log.Info("line", {{"thread", t}, {"i", i}});
    });
  }
  for (auto& th : threads) th.join();
  const auto lines = sink_->lines();
  ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kLines));
  for (const auto& line : lines) ASSERT_TRUE(nlohmann::json::accept(line)) << line;
}

TEST(LogLevelTest, Parse) {
  EXPECT_EQ(*ParseLevel("DEBUG"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("warning"), Level::kWarn);
  EXPECT_EQ(*ParseLevel("off"), Level::kOff);
  StatusOr<Level> bad = ParseLevel("loud");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"loud\""), std::string::npos);
}

TEST(LogLevelTest, FromEnvironment) {
  const Level before = GetLevel();
  setenv("AGENTRY_LOG_LEVEL", "error", 1);
  EXPECT_TRUE(InitFromEnvironment().ok());
  EXPECT_EQ(GetLevel(), Level::kError);
  setenv("AGENTRY_LOG_LEVEL", "chatty", 1);
  Status s = InitFromEnvironment();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("AGENTRY_LOG_LEVEL"), std::string::npos);
  EXPECT_EQ(GetLevel(), Level::kError);
  unsetenv("AGENTRY_LOG_LEVEL");
  SetLevel(before);
}

}  // namespace
}  // namespace agentry::log
