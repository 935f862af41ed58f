#include "common/metrics/text_format.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include <gtest/gtest.h>

#include "common/metrics/process_metrics.h"

namespace agentry::metrics {
namespace {

TEST(TextFormatTest, EscapesHelpAndLabelValuesAsTheFormatRequires) {
  EXPECT_EQ(EscapeHelp("line1\nback\\slash \"quotes stay\""),
            "line1\\nback\\\\slash \"quotes stay\"");
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(TextFormatTest, SampleValues) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(42), "42");
  EXPECT_EQ(FormatSampleValue(0.25), "0.25");
  EXPECT_EQ(FormatSampleValue(0.1), "0.1");
  EXPECT_EQ(FormatSampleValue(-3.5), "-3.5");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatSampleValue(std::nan("")), "NaN");
  EXPECT_EQ(std::stod(FormatSampleValue(1e21)), 1e21);
}

TEST(TextFormatTest, ExactExpositionOfEachKind) {
  Registry r;
  r.AddCounter("agentry_c_total", "A counter.", {"route"}).WithLabels({"/x\"y"}).Increment(2);
  r.AddGauge("agentry_g", "A gauge.").WithLabels({}).Set(-1.5);
  Histogram& h =
      r.AddHistogram("agentry_h_seconds", "A histogram.", {"op"}, {0.1, 1}).WithLabels({"load"});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(3);
  EXPECT_EQ(SerializeTextFormat(r.Collect()),
            "# HELP agentry_c_total A counter.\n"
            "# TYPE agentry_c_total counter\n"
            "agentry_c_total{route=\"/x\\\"y\"} 2\n"
            "# HELP agentry_g A gauge.\n"
            "# TYPE agentry_g gauge\n"
            "agentry_g -1.5\n"
            "# HELP agentry_h_seconds A histogram.\n"
            "# TYPE agentry_h_seconds histogram\n"
            "agentry_h_seconds_bucket{op=\"load\",le=\"0.1\"} 1\n"
            "agentry_h_seconds_bucket{op=\"load\",le=\"1\"} 2\n"
            "agentry_h_seconds_bucket{op=\"load\",le=\"+Inf\"} 3\n"
            "agentry_h_seconds_sum{op=\"load\"} 3.55\n"
            "agentry_h_seconds_count{op=\"load\"} 3\n");
}

// Runs the real `promtool check metrics` on `text`; returns its exit code and output.
std::pair<int, std::string> Promtool(const std::string& text) {
  char path[] = "/tmp/agentry-promtool-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  const std::string cmd = std::string(AGENTRY_PROMTOOL) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string output;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  unlink(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class PromtoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(AGENTRY_PROMTOOL).empty() ||
        std::string(AGENTRY_PROMTOOL).find("NOTFOUND") != std::string::npos) {
      GTEST_SKIP() << "promtool not installed; run scripts/bootstrap (package prometheus)";
    }
  }
};

TEST_F(PromtoolTest, PopulatedRegistryIsClean) {
  Registry r;
  RegisterProcessMetrics(&r, "0.1.0");
  auto& req =
      r.AddCounter("agentry_http_requests_total",
                   "HTTP requests.\nSecond line with a \\ backslash.", {"method", "route", "code"});
  req.WithLabels({"GET", "/v1/sessions/{id}", "200"}).Increment(17);
  req.WithLabels({"POST", "weird \"quoted\"\nnew\\line \xC3\xA9", "500"}).Increment();
  r.AddGauge("agentry_runtime_sessions_active", "Sessions open now.", {"agent", "namespace"})
      .WithLabels({"triage", "team-a"})
      .Set(3);
  auto& lat = r.AddHistogram("agentry_http_request_duration_seconds", "Latency.",
                             {"method", "route"}, DefaultLatencyBuckets());
  for (int i = 0; i < 100; ++i) lat.WithLabels({"GET", "/healthz"}).Observe(i * 0.003);
  r.AddGauge("agentry_test_special_values", "NaN and infinities.", {"kind"})
      .WithLabels({"inf"})
      .Set(std::numeric_limits<double>::infinity());
  r.AddGauge("agentry_test_special_values", "NaN and infinities.", {"kind"})
      .WithLabels({"nan"})
      .Set(std::nan(""));

  const std::string text = SerializeTextFormat(r.Collect());
  auto [code, output] = Promtool(text);
  EXPECT_EQ(code, 0) << output << "\n" << text;
  EXPECT_EQ(output, "") << text;
}

TEST_F(PromtoolTest, DetectsABadExposition) {
  // The check is only worth something if promtool can fail it: a counter without _total
  // and a broken label escape are both reported.
  auto [code, output] =
      Promtool("# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter{a=\"x\"y\"} 1\n");
  EXPECT_NE(code, 0);
  EXPECT_NE(output, "");
}

}  // namespace
}  // namespace agentry::metrics
