// The Kubernetes client against the in-process fake API server (real REST and watch
// protocol): reads, writes, server-side apply, watches, and errors carrying the reason.
#include "common/kube/client.h"

#include <thread>

#include <gtest/gtest.h>

#include "common/kube/testing/fake_api_server.h"

namespace agentry::kube {
namespace {

using testing::FakeApiServer;
using testing::Verb;

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    KubeConfig config;
    config.server = api_.base_url();
    StatusOr<std::unique_ptr<Client>> client = Client::Create(config);
    ASSERT_TRUE(client.ok()) << client.status().message();
    client_ = std::move(client).value();
  }
  static Json ConfigMap(const std::string& name, const std::string& value,
                        const Json& labels = Json::object()) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", "team-a"}, {"labels", labels}}},
            {"data", {{"k", value}}}};
  }

  FakeApiServer api_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, ReadsAndWritesCarryTheApiServersReasons) {
  const Status missing = client_->Get(kConfigMaps, "team-a", "x").status();
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_EQ(Reason(missing), "NotFound");
  StatusOr<Json> created = client_->Create(kConfigMaps, "team-a", ConfigMap("x", "1"));
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_FALSE((*created)["metadata"].value("uid", "").empty());
  const Status again = client_->Create(kConfigMaps, "team-a", ConfigMap("x", "1")).status();
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Reason(again), "AlreadyExists");

  Json stale = *created;
  Json fresh = *created;
  fresh["data"]["k"] = "2";
  ASSERT_TRUE(client_->Update(kConfigMaps, "team-a", fresh).ok());
  stale["data"]["k"] = "3";  // written against the old resourceVersion
  const Status conflict = client_->Update(kConfigMaps, "team-a", stale).status();
  EXPECT_EQ(conflict.code(), StatusCode::kAborted);
  EXPECT_EQ(Reason(conflict), "Conflict");
  EXPECT_EQ((*client_->Get(kConfigMaps, "team-a", "x"))["data"]["k"], "2");

  ASSERT_TRUE(client_->Delete(kConfigMaps, "team-a", "x").ok());
  EXPECT_EQ(client_->Get(kConfigMaps, "team-a", "x").status().code(), StatusCode::kNotFound);
  api_.FailNext(Verb::kGet, 1, 500);
  const Status down = client_->Get(kConfigMaps, "team-a", "x").status();
  EXPECT_EQ(down.code(), StatusCode::kUnavailable);
  EXPECT_NE(down.message().find("(HTTP 500)"), std::string::npos) << down.message();
  EXPECT_EQ(client_->requests(), 9);  // every call above, the failed ones too
}

TEST_F(ClientTest, ListsSelectByLabelAndListAllFollowsEveryPage) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(client_
                    ->Create(kConfigMaps, "team-a",
                             ConfigMap("c" + std::to_string(i), "v", {{"app", i % 2 ? "a" : "b"}}))
                    .ok());
  }
  StatusOr<Json> odd = client_->List(kConfigMaps, "team-a", {.label_selector = "app=a"});
  ASSERT_TRUE(odd.ok()) << odd.status().message();
  EXPECT_EQ((*odd)["items"].size(), 3u);
  StatusOr<Json> page = client_->List(kConfigMaps, "team-a", {.limit = 2});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ((*page)["items"].size(), 2u);
  EXPECT_FALSE((*page)["metadata"].value("continue", "").empty());
  StatusOr<Json> all = client_->ListAll(kConfigMaps, "team-a", {.limit = 2});
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ((*all)["items"].size(), 7u);
  EXPECT_FALSE((*all)["metadata"].value("resourceVersion", "").empty());
}

TEST_F(ClientTest, ServerSideApplyOwnsFieldsAndConflictsWithAnotherManager) {
  StatusOr<Json> applied = client_->Apply(kConfigMaps, "team-a", ConfigMap("cfg", "1"),
                                          {.field_manager = "agentry-operator"});
  ASSERT_TRUE(applied.ok()) << applied.status().message();
  EXPECT_EQ((*applied)["metadata"]["managedFields"][0]["manager"], "agentry-operator");
  // Applying the same thing again writes nothing.
  const int64_t rv = api_.resource_version();
  ASSERT_TRUE(client_
                  ->Apply(kConfigMaps, "team-a", ConfigMap("cfg", "1"),
                          {.field_manager = "agentry-operator"})
                  .ok());
  EXPECT_EQ(api_.resource_version(), rv);
  // Someone else changing an owned field conflicts, unless forced.
  const Status conflict =
      client_->Apply(kConfigMaps, "team-a", ConfigMap("cfg", "2"), {.field_manager = "kubectl"})
          .status();
  EXPECT_EQ(Reason(conflict), "Conflict");
  EXPECT_NE(conflict.message().find("agentry-operator"), std::string::npos) << conflict.message();
  ASSERT_TRUE(client_
                  ->Apply(kConfigMaps, "team-a", ConfigMap("cfg", "2"),
                          {.field_manager = "kubectl", .force = true})
                  .ok());
  EXPECT_EQ((*client_->Get(kConfigMaps, "team-a", "cfg"))["data"]["k"], "2");
  EXPECT_EQ(client_->Apply(kConfigMaps, "team-a", ConfigMap("cfg", "1"), {}).status().code(),
            StatusCode::kInvalidArgument);  // no field manager
}

TEST_F(ClientTest, TheStatusSubresourceIsAppliedApart) {
  const Json agent = {{"apiVersion", "agentry.dev/v1alpha1"},
                      {"kind", "ManagedAgent"},
                      {"metadata", {{"name", "triage"}, {"namespace", "team-a"}}},
                      {"spec", {{"replicas", 1}}}};
  ASSERT_TRUE(client_->Create(kManagedAgents, "team-a", agent).ok());
  Json status = {{"metadata", {{"name", "triage"}}}, {"status", {{"readyReplicas", 1}}}};
  StatusOr<Json> out =
      client_->ApplyStatus(kManagedAgents, "team-a", status, {.field_manager = "agentry-operator"});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const Json stored = *client_->Get(kManagedAgents, "team-a", "triage");
  EXPECT_EQ(stored["status"]["readyReplicas"], 1);
  EXPECT_EQ(stored["spec"]["replicas"], 1);
  EXPECT_EQ(stored["metadata"]["generation"], 1);  // status is not the spec
}

TEST_F(ClientTest, AWatchStreamsChangesInOrderAndEndsOnStop) {
  StatusOr<Json> list = client_->List(kConfigMaps, "team-a");
  ASSERT_TRUE(list.ok());
  const std::string from = (*list)["metadata"]["resourceVersion"];
  ASSERT_TRUE(client_->Create(kConfigMaps, "team-a", ConfigMap("a", "1")).ok());
  std::atomic<bool> stop{false};
  std::vector<std::string> seen;
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)client_->Create(kConfigMaps, "team-a", ConfigMap("b", "1"));
    (void)client_->Delete(kConfigMaps, "team-a", "a");
  });
  const Status watched = client_->Watch(
      kConfigMaps, "team-a", {.resource_version = from, .bookmarks = false},
      [&](const WatchEvent& e) {
        seen.push_back(e.type + " " + e.object["metadata"].value("name", ""));
        if (seen.size() == 3) stop = true;
        return true;
      },
      &stop);
  writer.join();
  EXPECT_EQ(watched.code(), StatusCode::kCancelled);
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED a", "ADDED b", "DELETED a"}));
}

TEST_F(ClientTest, AWatchFromACompactedVersionIsExpiredAndARestartEndsIt) {
  ASSERT_TRUE(client_->Create(kConfigMaps, "team-a", ConfigMap("a", "1")).ok());
  const std::string old = std::to_string(api_.resource_version());
  ASSERT_TRUE(client_->Create(kConfigMaps, "team-a", ConfigMap("b", "1")).ok());
  api_.Compact();
  const Status expired = client_->Watch(kConfigMaps, "team-a", {.resource_version = old},
                                        [](const WatchEvent&) { return true; });
  EXPECT_EQ(expired.code(), StatusCode::kFailedPrecondition) << expired.message();
  EXPECT_EQ(Reason(expired), "Expired");

  // An API server restart ends the stream; the watch returns OK and the caller watches again.
  std::thread restart([&] {
    while (api_.active_watches() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    api_.DropWatches();
  });
  const Status ended = client_->Watch(kConfigMaps, "team-a",
                                      {.resource_version = std::to_string(api_.resource_version())},
                                      [](const WatchEvent&) { return true; });
  restart.join();
  EXPECT_TRUE(ended.ok()) << ended.message();
}

TEST_F(ClientTest, AnUnreachableServerIsUnavailable) {
  api_.Stop();
  const Status down = client_->Get(kConfigMaps, "team-a", "x").status();
  EXPECT_EQ(down.code(), StatusCode::kUnavailable);
  ASSERT_TRUE(api_.Start().ok());
  EXPECT_EQ(client_->Get(kConfigMaps, "team-a", "x").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace agentry::kube
