#include "runtime/api/config_watcher.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/metrics/text_format.h"

namespace agentry::api {
namespace {

constexpr const char* kAgent = R"(apiVersion: agentry.dev/v1alpha1
kind: ManagedAgent
metadata: {name: helper}
spec:
  model: {name: tiny, source: {file: m.gguf}}
  suspend: SUSPEND
)";

std::string Agent(const std::string& suspend) {
  std::string text = kAgent;
  text.replace(text.find("SUSPEND"), 7, suspend);
  return text;
}

class ConfigWatcherTest : public ::testing::Test {
 protected:
  void Write(const std::string& text) {
    // As the kubelet does: the new file replaces the old one in one rename.
    std::ofstream(path_ + ".new") << text;
    std::filesystem::rename(path_ + ".new", path_);
  }
  std::string path_ = "/tmp/agcw-" + std::to_string(getpid()) + ".yaml";
  metrics::Registry registry_;
};

TEST_F(ConfigWatcherTest, AChangedConfigIsAppliedOnceAndABadOneIsRefusedAndCounted) {
  Write(Agent("false"));
  std::vector<bool> applied;
  ConfigWatcher watcher(
      path_, Agent("false"), std::chrono::hours(1),
      [&](const config::ManagedAgent& a) { applied.push_back(a.spec.suspend); }, &registry_);
  watcher.CheckOnce();
  EXPECT_TRUE(applied.empty());  // unchanged
  Write(Agent("true"));
  watcher.CheckOnce();
  watcher.CheckOnce();
  ASSERT_EQ(applied.size(), 1U);  // applied once
  EXPECT_TRUE(applied[0]);
  Write(Agent("maybe"));  // not a boolean: refused, the last good config stays
  watcher.CheckOnce();
  watcher.CheckOnce();
  EXPECT_EQ(applied.size(), 1U);
  const std::string metrics = metrics::SerializeTextFormat(registry_.Collect());
  EXPECT_NE(metrics.find("agentry_runtime_config_errors_total 1"), std::string::npos) << metrics;
  std::filesystem::remove(path_);
  watcher.CheckOnce();  // missing for a moment: nothing happens
  Write(Agent("false"));
  watcher.CheckOnce();
  ASSERT_EQ(applied.size(), 2U);
  EXPECT_FALSE(applied[1]);
  std::filesystem::remove(path_);
}

TEST_F(ConfigWatcherTest, ItsThreadLooksAtTheFileEveryInterval) {
  Write(Agent("false"));
  std::atomic<bool> suspended{false};
  ConfigWatcher watcher(path_, Agent("false"), std::chrono::milliseconds(10),
                        [&](const config::ManagedAgent& a) { suspended = a.spec.suspend; });
  watcher.Start();
  Write(Agent("true"));
  for (int i = 0; i < 500 && !suspended; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  watcher.Stop();
  EXPECT_TRUE(suspended);
  std::filesystem::remove(path_);
}

}  // namespace
}  // namespace agentry::api
