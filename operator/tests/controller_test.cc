// The controller end to end against the in-process fake API server (real REST and watch
// protocol, server-side apply): create, update, suspend, delete, drift, an API server
// restart mid-watch, conflicts, missing dependencies, a spec that does not decode, zero
// writes at steady state, and leader hand-over between two electors.
#include "operator/controller.h"

#include <thread>

#include <gtest/gtest.h>

#include "common/kube/testing/fake_api_server.h"
#include "common/metrics/text_format.h"
#include "common/utc_day.h"
#include "operator/leader_election.h"

namespace agentry::operator_ {
namespace {

using kube::testing::FakeApiServer;
using kube::testing::Verb;
using Json = nlohmann::json;

Json Agent(const std::string& name, const Json& spec_extra = Json::object()) {
  Json spec = {{"model", {{"name", "m"}, {"source", {{"pvc", "models"}, {"path", "m.gguf"}}}}},
               {"instructions", "Help."},
               {"replicas", 1}};
  for (const auto& [k, v] : spec_extra.items()) spec[k] = v;
  return {{"apiVersion", "agentry.dev/v1alpha1"},
          {"kind", "ManagedAgent"},
          {"metadata", {{"name", name}, {"namespace", "team-a"}}},
          {"spec", spec}};
}

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    ASSERT_TRUE(api_.Put({{"apiVersion", "v1"},
                          {"kind", "PersistentVolumeClaim"},
                          {"metadata", {{"name", "models"}, {"namespace", "team-a"}}},
                          {"spec", Json::object()}})
                    .ok());
    kube::KubeConfig config;
    config.server = api_.base_url();
    client_ = std::move(kube::Client::Create(config).value());
    events_ = std::make_unique<EventRecorder>(client_.get(), "test-operator");
    controller_ = std::make_unique<Controller>(
        client_.get(), events_.get(),
        ControllerOptions{
            .workers = 2, .watch_timeout = std::chrono::seconds(30), .registry = &registry_});
  }
  void TearDown() override { controller_->Stop(); }

  // Waits (up to 10 s) until `done` holds.
  static bool Eventually(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }
  std::optional<Json> Object(const std::string& plural, const std::string& name) {
    return api_.Get(plural, "team-a", name);
  }
  std::string Condition(const std::string& agent, const std::string& type,
                        std::string* reason = nullptr) {
    const std::optional<Json> a = Object("managedagents", agent);
    if (!a.has_value() || !a->contains("status")) return "";
    for (const Json& c : (*a)["status"].value("conditions", Json::array())) {
      if (c.value("type", "") == type) {
        if (reason != nullptr) *reason = c.value("reason", "");
        return c.value("status", "");
      }
    }
    return "";
  }
  // Waits until the controller has nothing left to do.
  void Settle() {
    int64_t seen = -1;
    for (int stable = 0; stable < 20;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const int64_t now = controller_->reconciles();
      stable = (now == seen && controller_->queue_depth() == 0) ? stable + 1 : 0;
      seen = now;
    }
  }
  bool HasEvent(const std::string& reason) {
    for (const Json& e : api_.List("events", "team-a")) {
      if (e.value("reason", "") == reason) return true;
    }
    return false;
  }

  FakeApiServer api_;
  metrics::Registry registry_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<EventRecorder> events_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(ControllerTest, AnAgentBecomesItsObjectsAndItsStatusSaysSo) {
  ASSERT_TRUE(api_.Put(Agent("triage", {{"replicas", 2}})).ok());
  ASSERT_TRUE(controller_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return Object("statefulsets", "triage").has_value(); }));
  for (const char* plural :
       {"serviceaccounts", "services", "networkpolicies", "poddisruptionbudgets"}) {
    EXPECT_TRUE(Eventually([&] { return Object(plural, "triage").has_value(); })) << plural;
  }
  EXPECT_TRUE(Eventually([&] { return Object("configmaps", "triage-config").has_value(); }));
  const Json sts = *Object("statefulsets", "triage");
  EXPECT_EQ(sts["metadata"]["ownerReferences"][0]["kind"], "ManagedAgent");
  EXPECT_EQ(sts["metadata"]["managedFields"][0]["manager"], kFieldManager);
  EXPECT_EQ(sts["spec"]["replicas"], 2);
  ASSERT_TRUE(Eventually([&] { return Condition("triage", "ModelAvailable") == "True"; }));
  std::string reason;
  EXPECT_EQ(Condition("triage", "Ready", &reason), "False");
  EXPECT_EQ(reason, "ReplicasNotReady");  // no kubelet runs pods here

  // The StatefulSet reports its pods ready: the agent is Ready.
  Json ready = sts;
  ready["status"] = {{"replicas", 2}, {"readyReplicas", 2}};
  ASSERT_TRUE(api_.Put(ready).ok());
  EXPECT_TRUE(Eventually([&] { return Condition("triage", "Ready") == "True"; }));
  const Json agent = *Object("managedagents", "triage");
  EXPECT_EQ(agent["status"]["readyReplicas"], 2);
  EXPECT_EQ(agent["status"]["observedGeneration"], agent["metadata"]["generation"]);
  EXPECT_EQ(agent["status"]["endpoint"], "http://triage.team-a.svc");
  EXPECT_TRUE(HasEvent("Applied"));
}

// Each runtime pod reports on itself in status.runtimes under its own field manager; the
// operator sums the wanted pods' reports into status.usage and BudgetExhausted, and its own
// status writes leave the pods' elements theirs.
TEST_F(ControllerTest, RuntimeReportsBecomeUsageAndBudgetExhausted) {
  ASSERT_TRUE(
      api_.Put(Agent("triage", {{"replicas", 2}, {"budget", {{"tokensPerDay", 1000}}}})).ok());
  ASSERT_TRUE(controller_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return Condition("triage", "BudgetExhausted") == "False"; }));
  const auto report = [&](const std::string& pod, const Json& fields) {
    Json entry = {{"pod", pod}, {"day", UtcToday()}};
    for (const auto& [k, v] : fields.items()) entry[k] = v;
    const Json patch = {{"apiVersion", "agentry.dev/v1alpha1"},
                        {"kind", "ManagedAgent"},
                        {"metadata", {{"name", "triage"}, {"namespace", "team-a"}}},
                        {"status", {{"runtimes", Json::array({entry})}}}};
    return client_
        ->ApplyStatus(kube::kManagedAgents, "team-a", patch,
                      {.field_manager = "agentry-runtime-" + pod, .force = true})
        .status();
  };
  ASSERT_TRUE(report("triage-0", {{"sessions", 3},
                                  {"tokensToday", 500},
                                  {"toolCallsToday", 2},
                                  {"budgetExhausted", true},
                                  {"message", "budget_exhausted: 500 of 500 tokens"}})
                  .ok());
  ASSERT_TRUE(report("triage-1", {{"sessions", 1}, {"tokensToday", 120}}).ok());
  // A pod the StatefulSet no longer wants, and yesterday's counters, do not count.
  ASSERT_TRUE(report("triage-7", {{"sessions", 9}, {"tokensToday", 9}}).ok());
  std::string reason;
  ASSERT_TRUE(
      Eventually([&] { return Condition("triage", "BudgetExhausted", &reason) == "True"; }));
  EXPECT_EQ(reason, "TokensPerDayExhausted");
  ASSERT_TRUE(Eventually([&] {
    return Object("managedagents", "triage")->at("status").value("usage", Json::object()) ==
           Json{{"sessions", 4}, {"tokensToday", 620}, {"toolCallsToday", 2}};
  }));
  Settle();
  const Json agent = *Object("managedagents", "triage");
  EXPECT_EQ(agent["status"]["runtimes"].size(), 3u);  // the operator removed no report
  for (const Json& entry : agent["metadata"]["managedFields"]) {
    if (entry["manager"] != kFieldManager) continue;
    EXPECT_FALSE(entry["fieldsV1"]["f:status"].contains("f:runtimes")) << entry.dump();
  }
  for (const Json& c : agent["status"]["conditions"]) {
    if (c["type"] == "BudgetExhausted") {
      EXPECT_EQ(c["message"], "triage-0: budget_exhausted: 500 of 500 tokens");
    }
  }

  // The day rolls over on triage-0: the agent is within its budget again.
  ASSERT_TRUE(report("triage-0", {{"sessions", 3}, {"tokensToday", 0}}).ok());
  EXPECT_TRUE(Eventually([&] { return Condition("triage", "BudgetExhausted") == "False"; }));

  // A node daemon that does not serve the model: only the pod on that node can see it.
  EXPECT_EQ(Condition("triage", "ModelAvailable"), "True");
  ASSERT_TRUE(
      report("triage-1", {{"modelError", "the node daemon does not serve model m (it serves: x)"}})
          .ok());
  ASSERT_TRUE(
      Eventually([&] { return Condition("triage", "ModelAvailable", &reason) == "False"; }));
  EXPECT_EQ(reason, "ModelNotServed");
  EXPECT_EQ(Condition("triage", "Ready", &reason), "False");
  EXPECT_EQ(reason, "ModelUnavailable");
  EXPECT_TRUE(HasEvent("ModelNotServed"));
}

TEST_F(ControllerTest, AtSteadyStateNothingIsWritten) {
  ASSERT_TRUE(api_.Put(Agent("a")).ok());
  ASSERT_TRUE(api_.Put(Agent("b")).ok());
  ASSERT_TRUE(controller_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return !Condition("b", "Ready").empty(); }));
  Settle();
  api_.ResetCounts();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(api_.writes(), 0u);
  EXPECT_EQ(api_.count(Verb::kList), 0u);  // no relists either
}

TEST_F(ControllerTest, ASpecChangeRollsTheStatefulSetAndSuspendScalesToZero) {
  ASSERT_TRUE(api_.Put(Agent("triage")).ok());
  ASSERT_TRUE(controller_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return Object("statefulsets", "triage").has_value(); }));
  const auto hash = [&] {
    return (*Object("statefulsets", "triage"))["spec"]["template"]["metadata"]["annotations"].value(
        "agentry.dev/config-hash", "");
  };
  const std::string before = hash();
  Json changed = *Object("managedagents", "triage");
  changed["spec"]["instructions"] = "Help more.";
  ASSERT_TRUE(api_.Put(changed).ok());
  EXPECT_TRUE(Eventually([&] { return hash() != before; }));
  EXPECT_TRUE(Eventually([&] {
    return (*Object("configmaps", "triage-config"))["data"]["agent.yaml"].get<std::string>().find(
               "Help more.") != std::string::npos;
  }));

  Json suspended = *Object("managedagents", "triage");
  suspended["spec"]["suspend"] = true;
  ASSERT_TRUE(api_.Put(suspended).ok());
  EXPECT_TRUE(
      Eventually([&] { return (*Object("statefulsets", "triage"))["spec"]["replicas"] == 0; }));
  EXPECT_TRUE(Eventually([&] { return Condition("triage", "Suspended") == "True"; }));
  // The runtimes read suspend from their mounted config and stop every turn.
  EXPECT_NE((*Object("configmaps", "triage-config"))["data"]["agent.yaml"].get<std::string>().find(
                "\"suspend\": true"),
            std::string::npos);
}

TEST_F(ControllerTest, AnEditedStatefulSetIsPutBackAndADeletedOneRecreated) {
  ASSERT_TRUE(api_.Put(Agent("triage")).ok());
  ASSERT_TRUE(controller_->Start().ok());
  ASSERT_TRUE(Eventually([&] { return Object("statefulsets", "triage").has_value(); }));
  Json edited = *Object("statefulsets", "triage");
  edited["spec"]["replicas"] = 7;
  ASSERT_TRUE(api_.Put(edited).ok());
  EXPECT_TRUE(
      Eventually([&] { return (*Object("statefulsets", "triage"))["spec"]["replicas"] == 1; }));
  ASSERT_TRUE(client_->Delete(kube::kServices, "team-a", "triage").ok());
  EXPECT_TRUE(Eventually([&] { return Object("services", "triage").has_value(); }));
}

TEST_F(ControllerTest, AnApiServerRestartMidWatchLosesNoChange) {
  ASSERT_TRUE(controller_->Start().ok());
  api_.Stop();
  api_.Compact();  // the restarted server has none of the old history
  ASSERT_TRUE(api_.Start().ok());
  ASSERT_TRUE(api_.Put(Agent("late")).ok());
  EXPECT_TRUE(Eventually([&] { return Object("statefulsets", "late").has_value(); }));
}

TEST_F(ControllerTest, AConflictIsRetried) {
  api_.FailNext(Verb::kPatch, 2, 409);
  ASSERT_TRUE(api_.Put(Agent("triage")).ok());
  ASSERT_TRUE(controller_->Start().ok());
  EXPECT_TRUE(Eventually([&] { return Condition("triage", "ModelAvailable") == "True"; }));
  EXPECT_TRUE(Object("statefulsets", "triage").has_value());
  EXPECT_TRUE(HasEvent("ApplyFailed"));
  const std::string metrics = metrics::SerializeTextFormat(registry_.Collect());
  EXPECT_NE(metrics.find("agentry_operator_reconciles_total{result=\"error\"}"), std::string::npos)
      << metrics;
}

TEST_F(ControllerTest, MissingDependenciesAreConditionsAndEvents) {
  Json agent = Agent(
      "triage",
      {{"model", {{"name", "m"}, {"source", {{"pvc", "nope"}, {"path", "m"}}}}},
       {"tools",
        Json::array(
            {{{"name", "t"},
              {"http",
               {{"url", "http://t.svc/"},
                {"headers",
                 Json::array({{{"name", "X"},
                               {"valueFrom",
                                {{"secretKeyRef", {{"name", "token"}, {"key", "k"}}}}}}})}}}}})}});
  ASSERT_TRUE(api_.Put(agent).ok());
  ASSERT_TRUE(controller_->Start().ok());
  std::string reason;
  ASSERT_TRUE(
      Eventually([&] { return Condition("triage", "ModelAvailable", &reason) == "False"; }));
  EXPECT_EQ(reason, "ModelClaimNotFound");
  EXPECT_EQ(Condition("triage", "Degraded", &reason), "True");
  EXPECT_EQ(reason, "SecretNotFound");
  EXPECT_TRUE(HasEvent("ModelClaimNotFound"));
  EXPECT_TRUE(HasEvent("SecretNotFound"));
  EXPECT_TRUE(Object("statefulsets", "triage").has_value());  // it starts once they appear
  // The claim appears: the agent's model is available, with no change to the agent.
  ASSERT_TRUE(api_.Put({{"apiVersion", "v1"},
                        {"kind", "PersistentVolumeClaim"},
                        {"metadata", {{"name", "nope"}, {"namespace", "team-a"}}}})
                  .ok());
  EXPECT_TRUE(Eventually([&] { return Condition("triage", "ModelAvailable") == "True"; }));
}

TEST_F(ControllerTest, ASpecThatDoesNotDecodeTouchesNothing) {
  ASSERT_TRUE(api_.Put(Agent("bad", {{"replicas", -3}})).ok());
  ASSERT_TRUE(controller_->Start().ok());
  std::string reason;
  ASSERT_TRUE(Eventually([&] { return Condition("bad", "Ready", &reason) == "False"; }));
  EXPECT_EQ(reason, "InvalidSpec");
  EXPECT_FALSE(Object("statefulsets", "bad").has_value());
  EXPECT_TRUE(HasEvent("InvalidSpec"));
}

TEST(LeaderElectionTest, TheLeaseGoesToTheNextCandidateWhenTheLeaderStops) {
  FakeApiServer api;
  ASSERT_TRUE(api.Start().ok());
  kube::KubeConfig config;
  config.server = api.base_url();
  std::unique_ptr<kube::Client> client = std::move(kube::Client::Create(config).value());
  const auto options = [](const std::string& id) {
    return LeaderElectionOptions{.ns = "agentry-system",
                                 .identity = id,
                                 .lease_duration = std::chrono::seconds(15),
                                 .renew_deadline = std::chrono::seconds(10),
                                 .retry_period = std::chrono::milliseconds(50)};
  };
  LeaderElector first(client.get(), options("first"));
  LeaderElector second(client.get(), options("second"));
  std::atomic<bool> stop_first{false}, stop_second{false};
  std::atomic<int> leaders{0};
  std::thread a([&] {
    first.Run(
        &stop_first, [&] { ++leaders; }, [&] { --leaders; });
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!first.leading() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(first.leading());
  std::thread b([&] {
    second.Run(
        &stop_second, [&] { ++leaders; }, [&] { --leaders; });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(second.leading());  // the lease is held and renewed
  EXPECT_EQ(leaders.load(), 1);
  stop_first = true;  // releases the lease: the second need not wait out its 15 s
  a.join();
  const auto handover = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!second.leading() && std::chrono::steady_clock::now() < handover) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(second.leading());
  EXPECT_EQ(leaders.load(), 1);
  const std::optional<Json> lease = api.Get("leases", "agentry-system", "agentry-operator");
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "second");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
  stop_second = true;
  b.join();
}

}  // namespace
}  // namespace agentry::operator_
