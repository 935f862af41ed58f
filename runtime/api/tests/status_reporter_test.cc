// The runtime pod's report in its ManagedAgent's status, written to the fake API server (real
// REST, server-side apply with per-element ownership of status.runtimes): each pod owns its
// element, an unchanged report writes nothing, and a refused write is an error that the next
// report recovers from.
#include "runtime/api/status_reporter.h"

#include <gtest/gtest.h>

#include "common/kube/testing/fake_api_server.h"
#include "common/metrics/text_format.h"

namespace agentry::api {
namespace {

using kube::testing::FakeApiServer;
using kube::testing::Verb;
using Json = nlohmann::json;

class StatusReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    ASSERT_TRUE(api_.Put({{"apiVersion", "agentry.dev/v1alpha1"},
                          {"kind", "ManagedAgent"},
                          {"metadata", {{"name", "triage"}, {"namespace", "team-a"}}},
                          {"spec", {{"replicas", 2}}},
                          {"status", {{"observedGeneration", 1}}}})
                    .ok());
    kube::KubeConfig config;
    config.server = api_.base_url();
    client_ = std::move(kube::Client::Create(config).value());
  }

  std::unique_ptr<StatusReporter> Reporter(const std::string& pod, ReplicaReport* report) {
    return std::make_unique<StatusReporter>(
        [report]() -> StatusOr<ReplicaReport> { return *report; },
        StatusReporterOptions{.client = client_.get(),
                              .ns = "team-a",
                              .agent = "triage",
                              .pod = pod,
                              .metrics = &registry_});
  }

  Json Runtimes() {
    return api_.Get("managedagents", "team-a", "triage")->at("status")["runtimes"];
  }

  FakeApiServer api_;
  metrics::Registry registry_;
  std::unique_ptr<kube::Client> client_;
};

TEST_F(StatusReporterTest, EachPodWritesItsOwnElementOnlyWhenItChanges) {
  ReplicaReport first{.day = "2026-12-07", .sessions = 2, .tokens_today = 100, .model_error = ""};
  ReplicaReport second{.day = "2026-12-07",
                       .sessions = 1,
                       .tokens_today = 500,
                       .tool_calls_today = 3,
                       .budget_exhausted = true,
                       .message = "budget_exhausted: 500 of 500",
                       .model_error = "no model m"};
  auto pod0 = Reporter("triage-0", &first);
  auto pod1 = Reporter("triage-1", &second);
  ASSERT_TRUE(pod0->ReportOnce().ok());
  ASSERT_TRUE(pod1->ReportOnce().ok());
  EXPECT_EQ(Runtimes(), Json::parse(R"([
    {"pod": "triage-0", "day": "2026-12-07", "sessions": 2, "tokensToday": 100,
     "toolCallsToday": 0, "budgetExhausted": false},
    {"pod": "triage-1", "day": "2026-12-07", "sessions": 1, "tokensToday": 500,
     "toolCallsToday": 3, "budgetExhausted": true, "message": "budget_exhausted: 500 of 500",
     "modelError": "no model m"}
  ])"));
  const Json agent = *api_.Get("managedagents", "team-a", "triage");
  EXPECT_EQ(agent["status"]["observedGeneration"], 1);  // the operator's fields stay
  int managers = 0;
  for (const Json& entry : agent["metadata"]["managedFields"]) {
    const std::string manager = entry["manager"];
    if (manager.rfind("agentry-runtime-", 0) != 0) continue;
    ++managers;
    EXPECT_EQ(entry["fieldsV1"]["f:status"]["f:runtimes"].size(), 1u) << entry.dump();
    EXPECT_TRUE(entry["fieldsV1"]["f:status"]["f:runtimes"].contains("k:{\"pod\":\"" +
                                                                     manager.substr(16) + "\"}"))
        << entry.dump();
  }
  EXPECT_EQ(managers, 2);

  // Nothing changed: nothing written.
  const uint64_t writes = api_.writes();
  ASSERT_TRUE(pod0->ReportOnce().ok());
  EXPECT_EQ(api_.writes(), writes);
  // A change is written, and only to this pod's element.
  first.sessions = 0;
  first.day = "2026-12-08";
  ASSERT_TRUE(pod0->ReportOnce().ok());
  EXPECT_EQ(api_.writes(), writes + 1);
  EXPECT_EQ(Runtimes()[0]["sessions"], 0);
  EXPECT_EQ(Runtimes()[0]["day"], "2026-12-08");
  EXPECT_EQ(Runtimes()[1]["tokensToday"], 500);
  const std::string text = metrics::SerializeTextFormat(registry_.Collect());
  EXPECT_NE(text.find("agentry_runtime_status_reports_total{result=\"unchanged\"} 1"),
            std::string::npos)
      << text;
}

TEST_F(StatusReporterTest, ARefusedWriteIsAnErrorAndTheNextReportRecovers) {
  ReplicaReport report{.day = "2026-12-07", .sessions = 1};
  auto pod0 = Reporter("triage-0", &report);
  api_.FailNext(Verb::kPatch, 1, 403, "managedagents.agentry.dev \"triage\" is forbidden");
  const Status refused = pod0->ReportOnce();
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.message().find("forbidden"), std::string::npos) << refused.message();
  EXPECT_FALSE(api_.Get("managedagents", "team-a", "triage")->at("status").contains("runtimes"));
  // Not written, so not taken as written: the same report goes out next time.
  ASSERT_TRUE(pod0->ReportOnce().ok());
  EXPECT_EQ(Runtimes()[0]["sessions"], 1);

  // An agent that is gone is an error too, not a crash.
  auto stranger = std::make_unique<StatusReporter>(
      [&report]() -> StatusOr<ReplicaReport> { return report; },
      StatusReporterOptions{.client = client_.get(), .ns = "team-a", .agent = "gone", .pod = "x"});
  EXPECT_EQ(stranger->ReportOnce().code(), StatusCode::kNotFound);
  // A report that cannot be read is not written.
  StatusReporter unreadable(
      []() -> StatusOr<ReplicaReport> { return UnavailableError("no sidecar"); },
      StatusReporterOptions{
          .client = client_.get(), .ns = "team-a", .agent = "triage", .pod = "triage-1"});
  const uint64_t writes = api_.writes();
  EXPECT_EQ(unreadable.ReportOnce().code(), StatusCode::kUnavailable);
  EXPECT_EQ(api_.writes(), writes);
}

}  // namespace
}  // namespace agentry::api
