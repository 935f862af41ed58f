// The fake Kubernetes API server spoken to over real HTTP with cpprestsdk, as the Kubernetes
// client and the operator will: objects, optimistic concurrency, generation, the status
// subresource, watch (replay, live, 410, bookmarks, drops), server-side apply, counters.
#include "common/kube/testing/fake_api_server.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace agentry::kube {
namespace {

using json = nlohmann::json;
using testing::FakeApiServer;
using testing::FakeApiServerOptions;
using testing::Verb;
using Clock = std::chrono::steady_clock;

constexpr const char* kConfigMaps = "/api/v1/namespaces/default/configmaps";
constexpr const char* kStatefulSets = "/apis/apps/v1/namespaces/default/statefulsets";
constexpr const char* kAgents = "/apis/agentry.dev/v1alpha1/namespaces/default/managedagents";

// "path?k=v&..." with the values percent-encoded.
std::string WithQuery(const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& query) {
  std::string out = path;
  for (size_t i = 0; i < query.size(); ++i) {
    out +=
        (i == 0 ? "?" : "&") + query[i].first + "=" + web::uri::encode_data_string(query[i].second);
  }
  return out;
}

json ConfigMap(const std::string& name, json labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"data", {{"k", "v"}}}};
}

json StatefulSet(const std::string& name, json spec) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "StatefulSet"},
          {"metadata", {{"name", name}}},
          {"spec", std::move(spec)}};
}

std::string Rv(const json& object) {
  return object["metadata"]["resourceVersion"].get<std::string>();
}

// A response: its status code and its body as JSON.
struct Reply {
  int code = 0;
  json body{};
};

// One watch stream, read event by event.
class WatchStream {
 public:
  WatchStream(const std::string& base_url, const std::string& path_and_query) : client_(base_url) {
    web::http::http_request request("GET");
    request.set_request_uri(path_and_query);
    response_ = client_.request(request).get();
    body_ = response_.body();
  }

  int status() const { return response_.status_code(); }

  // The next event, or nullopt once the server has ended the stream.
  std::optional<json> Next() {
    while (true) {
      concurrency::streams::container_buffer<std::string> line;
      body_.read_line(line).get();
      if (!line.collection().empty()) return json::parse(line.collection());
      if (body_.is_eof()) return std::nullopt;
    }
  }

 private:
  web::http::client::http_client client_;
  web::http::http_response response_;
  concurrency::streams::istream body_;
};

class FakeApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Restart({}); }

  void Restart(FakeApiServerOptions options) {
    api_.reset();
    api_ = std::make_unique<FakeApiServer>(std::move(options));
    ASSERT_TRUE(api_->Start().ok());
  }

  Reply Send(const std::string& method, const std::string& path, const json& body = nullptr,
             const std::string& content_type = "application/json") {
    web::http::client::http_client client(api_->base_url());
    web::http::http_request request(method);
    request.set_request_uri(path);
    if (!body.is_null()) request.set_body(body.dump(), content_type);
    web::http::http_response response = client.request(request).get();
    const std::string text = response.extract_utf8string(true).get();
    return {response.status_code(), json::parse(text, nullptr, false)};
  }

  Reply Apply(const std::string& path, const json& body, const std::string& manager,
              bool force = false) {
    std::vector<std::pair<std::string, std::string>> query;
    if (!manager.empty()) query.emplace_back("fieldManager", manager);
    if (force) query.emplace_back("force", "true");
    return Send("PATCH", WithQuery(path, query), body, "application/apply-patch+yaml");
  }

  std::unique_ptr<WatchStream> Watch(const std::string& path,
                                     std::vector<std::pair<std::string, std::string>> query) {
    query.emplace_back("watch", "true");
    const bool has_timeout = std::any_of(
        query.begin(), query.end(), [](const auto& kv) { return kv.first == "timeoutSeconds"; });
    if (!has_timeout) query.emplace_back("timeoutSeconds", "20");  // a bug must not hang the test
    return std::make_unique<WatchStream>(api_->base_url(), WithQuery(path, query));
  }

  std::unique_ptr<FakeApiServer> api_;
};

// A Kubernetes Status object with this code and reason.
void ExpectStatus(const Reply& reply, int code, const std::string& reason) {
  EXPECT_EQ(reply.code, code) << reply.body.dump();
  EXPECT_EQ(reply.body.value("kind", ""), "Status") << reply.body.dump();
  EXPECT_EQ(reply.body.value("apiVersion", ""), "v1");
  EXPECT_EQ(reply.body.value("status", ""), "Failure");
  EXPECT_EQ(reply.body.value("reason", ""), reason) << reply.body.dump();
  EXPECT_EQ(reply.body.value("code", 0), code);
  EXPECT_FALSE(reply.body.value("message", "").empty());
}

std::vector<std::string> Names(const json& list) {
  std::vector<std::string> names;
  for (const json& item : list["items"]) names.push_back(item["metadata"]["name"]);
  return names;
}

TEST_F(FakeApiServerTest, CreateGetAndListWithLabelSelector) {
  Reply a = Send("POST", kConfigMaps, ConfigMap("a", {{"app", "x"}, {"tier", "web"}}));
  ASSERT_EQ(a.code, 201) << a.body.dump();
  const json& meta = a.body["metadata"];
  EXPECT_EQ(meta["namespace"], "default");
  EXPECT_EQ(meta["uid"].get<std::string>().size(), 36u);
  EXPECT_EQ(meta["generation"], 1);
  EXPECT_EQ(meta["creationTimestamp"].get<std::string>().back(), 'Z');
  EXPECT_EQ(Rv(a.body), std::to_string(api_->resource_version()));
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("b", {{"app", "y"}})).code, 201);
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("c")).code, 201);
  EXPECT_GT(std::stoll(Rv(*api_->Get("configmaps", "default", "c"))), std::stoll(Rv(a.body)));

  Reply got = Send("GET", std::string(kConfigMaps) + "/a");
  EXPECT_EQ(got.code, 200);
  EXPECT_EQ(got.body, a.body);
  ExpectStatus(Send("GET", std::string(kConfigMaps) + "/missing"), 404, "NotFound");
  ExpectStatus(Send("POST", kConfigMaps, ConfigMap("a")), 409, "AlreadyExists");

  Reply all = Send("GET", kConfigMaps);
  EXPECT_EQ(all.code, 200);
  EXPECT_EQ(all.body["kind"], "ConfigMapList");
  EXPECT_EQ(all.body["apiVersion"], "v1");
  EXPECT_EQ(all.body["metadata"]["resourceVersion"], std::to_string(api_->resource_version()));
  EXPECT_EQ(Names(all.body), (std::vector<std::string>{"a", "b", "c"}));
  auto select = [&](const std::string& selector) {
    return Names(Send("GET", WithQuery(kConfigMaps, {{"labelSelector", selector}})).body);
  };
  EXPECT_EQ(select("app=x"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(select("app"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(select("app,tier=web"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(select("app!=x"), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(select("app in (x, y),!tier"), (std::vector<std::string>{"b"}));
  EXPECT_EQ(select("app=z"), std::vector<std::string>{});
  ExpectStatus(Send("GET", WithQuery(kConfigMaps, {{"labelSelector", "app in x"}})), 400,
               "BadRequest");

  // Pages: limit and continue.
  Reply page = Send("GET", WithQuery(kConfigMaps, {{"limit", "2"}}));
  EXPECT_EQ(Names(page.body), (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(page.body["metadata"].contains("continue"));
  Reply rest = Send(
      "GET",
      WithQuery(kConfigMaps, {{"limit", "2"}, {"continue", page.body["metadata"]["continue"]}}));
  EXPECT_EQ(Names(rest.body), (std::vector<std::string>{"c"}));
  EXPECT_FALSE(rest.body["metadata"].contains("continue"));

  // Group resources, other namespaces, all namespaces.
  ASSERT_EQ(Send("POST", kStatefulSets, StatefulSet("web", {{"replicas", 1}})).code, 201);
  ASSERT_EQ(Send("POST", "/apis/apps/v1/namespaces/other/statefulsets",
                 StatefulSet("db", {{"replicas", 1}}))
                .code,
            201);
  EXPECT_EQ(Names(Send("GET", kStatefulSets).body), (std::vector<std::string>{"web"}));
  EXPECT_EQ(Names(Send("GET", "/apis/apps/v1/statefulsets").body),
            (std::vector<std::string>{"web", "db"}));
  EXPECT_EQ(Send("GET", "/apis/apps/v1/statefulsets").body["kind"], "StatefulSetList");
  ExpectStatus(Send("GET", "/apis/apps/v1/namespaces/default/deployments"), 404, "NotFound");
  ExpectStatus(Send("GET", "/apis/apps/v2/namespaces/default/statefulsets"), 404, "NotFound");
  ExpectStatus(Send("POST", std::string(kConfigMaps) + "/a", ConfigMap("a")), 405,
               "MethodNotAllowed");
  ExpectStatus(Send("POST", kConfigMaps, ConfigMap("d"), "text/plain"), 415,
               "UnsupportedMediaType");
  ExpectStatus(Send("POST", kConfigMaps, ConfigMap("Not_A_Name")), 422, "Invalid");
  ExpectStatus(Send("POST", "/api/v1/namespaces/other/configmaps",
                    [] {
                      json cm = ConfigMap("e");
                      cm["metadata"]["namespace"] = "default";
                      return cm;
                    }()),
               400, "BadRequest");
}

TEST_F(FakeApiServerTest, UpdateWithStaleResourceVersionIsAConflict) {
  Reply created = Send("POST", kConfigMaps, ConfigMap("a"));
  ASSERT_EQ(created.code, 201);
  json change = created.body;
  change["data"]["k"] = "v2";
  Reply updated = Send("PUT", std::string(kConfigMaps) + "/a", change);
  ASSERT_EQ(updated.code, 200) << updated.body.dump();
  EXPECT_EQ(updated.body["data"]["k"], "v2");
  EXPECT_NE(Rv(updated.body), Rv(created.body));
  EXPECT_EQ(updated.body["metadata"]["uid"], created.body["metadata"]["uid"]);

  change["data"]["k"] = "v3";  // still carries the first resourceVersion
  Reply stale = Send("PUT", std::string(kConfigMaps) + "/a", change);
  ExpectStatus(stale, 409, "Conflict");
  EXPECT_NE(stale.body["message"].get<std::string>().find("the object has been modified"),
            std::string::npos);
  EXPECT_EQ(api_->Get("configmaps", "default", "a")->at("data")["k"], "v2");

  change["metadata"].erase("resourceVersion");  // unconditional
  EXPECT_EQ(Send("PUT", std::string(kConfigMaps) + "/a", change).body["data"]["k"], "v3");
  ExpectStatus(Send("PUT", std::string(kConfigMaps) + "/b", change), 400, "BadRequest");
  ExpectStatus(Send("PUT", std::string(kConfigMaps) + "/missing", ConfigMap("missing")), 404,
               "NotFound");

  // A merge patch carrying a resourceVersion is conditional too.
  Reply patched =
      Send("PATCH", std::string(kConfigMaps) + "/a",
           {{"metadata", {{"resourceVersion", Rv(created.body)}}}}, "application/merge-patch+json");
  ExpectStatus(patched, 409, "Conflict");
  patched = Send("PATCH", std::string(kConfigMaps) + "/a", {{"data", {{"k2", "x"}}}},
                 "application/merge-patch+json");
  EXPECT_EQ(patched.code, 200);
  EXPECT_EQ(patched.body["data"], (json{{"k", "v3"}, {"k2", "x"}}));
  ExpectStatus(Send("PATCH", std::string(kConfigMaps) + "/a", {{"data", {{"k", "x"}}}},
                    "application/strategic-merge-patch+json"),
               415, "UnsupportedMediaType");
}

TEST_F(FakeApiServerTest, GenerationChangesWithTheSpecOnly) {
  Reply created = Send("POST", kStatefulSets, StatefulSet("web", {{"replicas", 1}}));
  ASSERT_EQ(created.code, 201);
  EXPECT_EQ(created.body["metadata"]["generation"], 1);

  json labelled = created.body;
  labelled["metadata"]["labels"] = {{"team", "a"}};
  Reply r1 = Send("PUT", std::string(kStatefulSets) + "/web", labelled);
  ASSERT_EQ(r1.code, 200);
  EXPECT_EQ(r1.body["metadata"]["generation"], 1);
  EXPECT_NE(Rv(r1.body), Rv(created.body));

  json scaled = r1.body;
  scaled["spec"]["replicas"] = 3;
  Reply r2 = Send("PUT", std::string(kStatefulSets) + "/web", scaled);
  EXPECT_EQ(r2.body["metadata"]["generation"], 2);

  // A write that changes nothing stores nothing.
  const int64_t before = api_->resource_version();
  Reply same = Send("PUT", std::string(kStatefulSets) + "/web", r2.body);
  EXPECT_EQ(same.code, 200);
  EXPECT_EQ(Rv(same.body), Rv(r2.body));
  EXPECT_EQ(api_->resource_version(), before);

  Reply r3 = Send("PATCH", std::string(kStatefulSets) + "/web", {{"spec", {{"replicas", 4}}}},
                  "application/merge-patch+json");
  EXPECT_EQ(r3.body["metadata"]["generation"], 3);
  Reply r4 = Send(
      "PATCH", std::string(kStatefulSets) + "/web",
      json::array({{{"op", "add"}, {"path", "/metadata/annotations"}, {"value", {{"note", "x"}}}}}),
      "application/json-patch+json");
  EXPECT_EQ(r4.code, 200) << r4.body.dump();
  EXPECT_EQ(r4.body["metadata"]["generation"], 3);
  EXPECT_EQ(r4.body["metadata"]["annotations"]["note"], "x");
}

TEST_F(FakeApiServerTest, StatusSubresourceIsSeparateFromTheMainResource) {
  json agent = {{"apiVersion", "agentry.dev/v1alpha1"},
                {"kind", "ManagedAgent"},
                {"metadata", {{"name", "bot"}}},
                {"spec", {{"model", "m1"}}},
                {"status", {{"phase", "Ready"}}}};
  Reply created = Send("POST", kAgents, agent);
  ASSERT_EQ(created.code, 201) << created.body.dump();
  EXPECT_FALSE(created.body.contains("status"));  // create drops .status

  const std::string status_path = std::string(kAgents) + "/bot/status";
  json with_status = created.body;
  with_status["status"] = {{"phase", "Pending"}};
  Reply s1 = Send("PUT", status_path, with_status);
  ASSERT_EQ(s1.code, 200) << s1.body.dump();
  EXPECT_EQ(s1.body["status"]["phase"], "Pending");
  EXPECT_EQ(s1.body["metadata"]["generation"], 1);

  // Writes to the main resource keep .status; writes to /status change only .status.
  json main_write = s1.body;
  main_write["spec"]["model"] = "m2";
  main_write["status"]["phase"] = "Hacked";
  Reply m = Send("PUT", std::string(kAgents) + "/bot", main_write);
  ASSERT_EQ(m.code, 200);
  EXPECT_EQ(m.body["spec"]["model"], "m2");
  EXPECT_EQ(m.body["status"]["phase"], "Pending");
  EXPECT_EQ(m.body["metadata"]["generation"], 2);

  json status_write = m.body;
  status_write["spec"]["model"] = "m3";
  status_write["status"] = {{"phase", "Ready"}, {"observedGeneration", 2}};
  Reply s2 = Send("PUT", status_path, status_write);
  ASSERT_EQ(s2.code, 200);
  EXPECT_EQ(s2.body["spec"]["model"], "m2");
  EXPECT_EQ(s2.body["status"]["phase"], "Ready");
  EXPECT_EQ(s2.body["metadata"]["generation"], 2);
  EXPECT_EQ(Send("GET", status_path).body, s2.body);

  // Apply to /status: a managedFields entry of its own, subresource "status".
  Reply applied = Apply(status_path,
                        {{"apiVersion", "agentry.dev/v1alpha1"},
                         {"kind", "ManagedAgent"},
                         {"metadata", {{"name", "bot"}}},
                         {"status", {{"phase", "Degraded"}}}},
                        "operator", /*force=*/true);  // "unknown" owns it through the PUTs
  ASSERT_EQ(applied.code, 200) << applied.body.dump();
  EXPECT_EQ(applied.body["status"]["phase"], "Degraded");
  bool found = false;
  for (const json& entry : applied.body["metadata"]["managedFields"]) {
    if (entry["manager"] == "operator") {
      found = true;
      EXPECT_EQ(entry["operation"], "Apply");
      EXPECT_EQ(entry["subresource"], "status");
      EXPECT_EQ(entry["fieldsV1"], (json{{"f:status", {{"f:phase", json::object()}}}}));
    }
  }
  EXPECT_TRUE(found) << applied.body.dump();

  ExpectStatus(Send("GET", std::string(kConfigMaps) + "/a/status"), 404, "NotFound");
  json nobody = agent;
  nobody["metadata"]["name"] = "nobody";
  ExpectStatus(Send("PUT", std::string(kAgents) + "/nobody/status", nobody), 404, "NotFound");
}

TEST_F(FakeApiServerTest, WatchReplaysFromAResourceVersionThenStreamsLive) {
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("a", {{"app", "x"}})).code, 201);
  const std::string from = std::to_string(api_->resource_version());
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("b", {{"app", "x"}})).code, 201);
  ASSERT_EQ(Send("PATCH", std::string(kConfigMaps) + "/a", {{"data", {{"k", "2"}}}},
                 "application/merge-patch+json")
                .code,
            200);
  ASSERT_EQ(Send("POST", kStatefulSets, StatefulSet("web", {{"replicas", 1}})).code, 201);

  auto watch = Watch(kConfigMaps, {{"resourceVersion", from}});
  ASSERT_EQ(watch->status(), 200);
  auto selective = Watch(kConfigMaps, {{"resourceVersion", from}, {"labelSelector", "app=x"}});
  std::optional<json> e1 = watch->Next();
  ASSERT_TRUE(e1);
  EXPECT_EQ((*e1)["type"], "ADDED");
  EXPECT_EQ((*e1)["object"]["metadata"]["name"], "b");
  std::optional<json> e2 = watch->Next();
  ASSERT_TRUE(e2);
  EXPECT_EQ((*e2)["type"], "MODIFIED");
  EXPECT_EQ((*e2)["object"]["data"]["k"], "2");
  EXPECT_GT(std::stoll(Rv((*e2)["object"])), std::stoll(Rv((*e1)["object"])));

  // Live, in order; the statefulset never shows up on the configmap watch.
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("c")).code, 201);
  ASSERT_EQ(Send("PATCH", std::string(kConfigMaps) + "/b",
                 {{"metadata", {{"labels", {{"app", nullptr}}}}}}, "application/merge-patch+json")
                .code,
            200);
  ASSERT_EQ(Send("DELETE", std::string(kConfigMaps) + "/c").code, 200);
  std::vector<std::pair<std::string, std::string>> live;
  for (int i = 0; i < 3; ++i) {
    std::optional<json> e = watch->Next();
    ASSERT_TRUE(e);
    live.emplace_back((*e)["type"], (*e)["object"]["metadata"]["name"]);
  }
  EXPECT_EQ(live, (std::vector<std::pair<std::string, std::string>>{
                      {"ADDED", "c"}, {"MODIFIED", "b"}, {"DELETED", "c"}}));

  // The selector watch: b and a as they changed, then b leaving the selector as DELETED; c
  // never matched.
  std::vector<std::pair<std::string, std::string>> selected;
  for (int i = 0; i < 3; ++i) {
    std::optional<json> e = selective->Next();
    ASSERT_TRUE(e);
    selected.emplace_back((*e)["type"], (*e)["object"]["metadata"]["name"]);
  }
  EXPECT_EQ(selected, (std::vector<std::pair<std::string, std::string>>{
                          {"ADDED", "b"}, {"MODIFIED", "a"}, {"DELETED", "b"}}));

  // Without a resourceVersion: the current objects as ADDED first.
  auto fresh = Watch(kConfigMaps, {});
  std::vector<std::string> initial;
  for (int i = 0; i < 2; ++i) {
    std::optional<json> e = fresh->Next();
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["type"], "ADDED");
    initial.push_back((*e)["object"]["metadata"]["name"]);
  }
  EXPECT_EQ(initial, (std::vector<std::string>{"a", "b"}));
}

TEST_F(FakeApiServerTest, WatchFromACompactedResourceVersionGetsExpired) {
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("a")).code, 201);
  const std::string old = std::to_string(api_->resource_version());
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("b")).code, 201);
  api_->Compact();

  auto watch = Watch(kConfigMaps, {{"resourceVersion", old}});
  ASSERT_EQ(watch->status(), 200);
  std::optional<json> e = watch->Next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["type"], "ERROR");
  EXPECT_EQ((*e)["object"]["kind"], "Status");
  EXPECT_EQ((*e)["object"]["code"], 410);
  EXPECT_EQ((*e)["object"]["reason"], "Expired");
  EXPECT_FALSE(watch->Next());  // and the stream ends

  // From the current resourceVersion it works.
  auto current =
      Watch(kConfigMaps, {{"resourceVersion", std::to_string(api_->resource_version())}});
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("c")).code, 201);
  e = current->Next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["type"], "ADDED");
  EXPECT_EQ((*e)["object"]["metadata"]["name"], "c");

  // The bounded history, room for 3 events: a watch from the first write's version needs the
  // next three, which are there until a fifth write pushes the second out.
  Restart({.history_limit = 3});
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("a")).code, 201);
  const std::string first = std::to_string(api_->resource_version());
  for (const char* name : {"b", "c", "d"}) {
    ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap(name)).code, 201);
  }
  auto replay = Watch(kConfigMaps, {{"resourceVersion", first}});  // b, c, d are kept
  e = replay->Next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["object"]["metadata"]["name"], "b");
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("e")).code, 201);
  auto too_old = Watch(kConfigMaps, {{"resourceVersion", first}});
  e = too_old->Next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["type"], "ERROR");
  EXPECT_EQ((*e)["object"]["code"], 410);
}

TEST_F(FakeApiServerTest, BookmarksWhileIdleOnlyWhenAsked) {
  Restart({.bookmark_interval = std::chrono::milliseconds(100)});
  ASSERT_EQ(Send("POST", kStatefulSets, StatefulSet("web", {{"replicas", 1}})).code, 201);
  const std::string rv = std::to_string(api_->resource_version());

  auto watch = Watch(kStatefulSets, {{"resourceVersion", rv}, {"allowWatchBookmarks", "true"}});
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < 2; ++i) {
    std::optional<json> e = watch->Next();
    ASSERT_TRUE(e);
    EXPECT_EQ((*e)["type"], "BOOKMARK");
    EXPECT_EQ((*e)["object"], (json{{"kind", "StatefulSet"},
                                    {"apiVersion", "apps/v1"},
                                    {"metadata", {{"resourceVersion", rv}}}}));
  }
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  // A change comes through between bookmarks, and later bookmarks carry its version.
  ASSERT_EQ(Send("POST", kStatefulSets, StatefulSet("db", {{"replicas", 1}})).code, 201);
  const std::string after = std::to_string(api_->resource_version());
  std::optional<json> e = watch->Next();
  while (e && (*e)["type"] == "BOOKMARK") e = watch->Next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["type"], "ADDED");
  e = watch->Next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["type"], "BOOKMARK");
  EXPECT_EQ((*e)["object"]["metadata"]["resourceVersion"], after);

  // Without allowWatchBookmarks an idle watch says nothing until its timeout.
  WatchStream quiet(api_->base_url(), WithQuery(kStatefulSets, {{"watch", "1"},
                                                                {"resourceVersion", after},
                                                                {"timeoutSeconds", "1"}}));
  const Clock::time_point quiet_start = Clock::now();
  EXPECT_FALSE(quiet.Next());
  EXPECT_GE(Clock::now() - quiet_start, std::chrono::milliseconds(500));
  EXPECT_LT(Clock::now() - quiet_start, std::chrono::seconds(5));
}

TEST_F(FakeApiServerTest, DropWatchesEndsOpenStreamsAndNewOnesWork) {
  const std::string rv = std::to_string(api_->resource_version());
  auto watch = Watch(kConfigMaps, {{"resourceVersion", rv}});
  ASSERT_EQ(Send("POST", kConfigMaps, ConfigMap("a")).code, 201);
  ASSERT_TRUE(watch->Next());
  EXPECT_EQ(api_->active_watches(), 1u);

  const Clock::time_point start = Clock::now();
  api_->DropWatches();
  EXPECT_FALSE(watch->Next());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));  // not the 20 s timeout
  for (int i = 0; i < 100 && api_->active_watches() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(api_->active_watches(), 0u);

  auto again = Watch(kConfigMaps, {{"resourceVersion", rv}});
  std::optional<json> e = again->Next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["object"]["metadata"]["name"], "a");
}

TEST_F(FakeApiServerTest, StopAndStartKeepTheObjectsAndThePort) {
  Reply created = Send("POST", kConfigMaps, ConfigMap("a"));
  ASSERT_EQ(created.code, 201);
  auto watch = Watch(kConfigMaps, {{"resourceVersion", Rv(created.body)}});
  const uint16_t port = api_->port();
  api_->Stop();
  EXPECT_FALSE(watch->Next());  // the restart ends the stream
  EXPECT_THROW(Send("GET", std::string(kConfigMaps) + "/a"), web::http::http_exception);
  ASSERT_TRUE(api_->Start().ok());
  EXPECT_EQ(api_->port(), port);
  EXPECT_EQ(Send("GET", std::string(kConfigMaps) + "/a").body, created.body);
}

// --- Server-side apply ---

TEST_F(FakeApiServerTest, ApplyCreatesThenRemovesWhatTheManagerStopsApplying) {
  const std::string path = std::string(kStatefulSets) + "/web";
  json first = StatefulSet("web", {{"replicas", 1}, {"serviceName", "web"}});
  first["metadata"]["labels"] = {{"app", "web"}};
  Reply created = Apply(path, first, "operator");
  ASSERT_EQ(created.code, 201) << created.body.dump();
  EXPECT_EQ(created.body["spec"]["serviceName"], "web");
  EXPECT_EQ(created.body["metadata"]["generation"], 1);
  ASSERT_EQ(created.body["metadata"]["managedFields"].size(), 1u);
  const json& entry = created.body["metadata"]["managedFields"][0];
  EXPECT_EQ(entry["manager"], "operator");
  EXPECT_EQ(entry["operation"], "Apply");
  EXPECT_EQ(entry["apiVersion"], "apps/v1");
  EXPECT_EQ(entry["fieldsType"], "FieldsV1");
  EXPECT_FALSE(entry.contains("subresource"));
  EXPECT_EQ(
      entry["fieldsV1"],
      (json{{"f:metadata", {{"f:labels", {{"f:app", json::object()}}}}},
            {"f:spec", {{"f:replicas", json::object()}, {"f:serviceName", json::object()}}}}));

  // The same apply again changes nothing: no new resourceVersion.
  const int64_t before = api_->resource_version();
  EXPECT_EQ(Apply(path, first, "operator").code, 200);
  EXPECT_EQ(api_->resource_version(), before);

  json second = StatefulSet("web", {{"replicas", 1}});
  Reply updated = Apply(path, second, "operator");
  ASSERT_EQ(updated.code, 200) << updated.body.dump();
  EXPECT_FALSE(updated.body["spec"].contains("serviceName"));
  EXPECT_FALSE(updated.body["metadata"].contains("labels"));
  EXPECT_EQ(updated.body["spec"]["replicas"], 1);
  EXPECT_EQ(updated.body["metadata"]["generation"], 2);
  EXPECT_EQ(updated.body["metadata"]["managedFields"][0]["fieldsV1"],
            (json{{"f:spec", {{"f:replicas", json::object()}}}}));

  ExpectStatus(Apply(path, second, ""), 400, "BadRequest");  // fieldManager is required
  json no_kind = second;
  no_kind.erase("kind");
  ExpectStatus(Apply(path, no_kind, "operator"), 400, "BadRequest");
}

TEST_F(FakeApiServerTest, ApplyConflictsNameTheOtherManagerAndForceTakesOwnership) {
  const std::string path = std::string(kStatefulSets) + "/web";
  ASSERT_EQ(
      Apply(path, StatefulSet("web", {{"replicas", 1}, {"serviceName", "web"}}), "operator").code,
      201);

  Reply conflict = Apply(path, StatefulSet("web", {{"replicas", 3}}), "autoscaler");
  ExpectStatus(conflict, 409, "Conflict");
  const std::string message = conflict.body["message"];
  EXPECT_NE(message.find("\"operator\""), std::string::npos) << message;
  EXPECT_NE(message.find(".spec.replicas"), std::string::npos) << message;
  EXPECT_EQ(conflict.body["details"]["causes"][0]["field"], ".spec.replicas");
  EXPECT_EQ(api_->Get("statefulsets", "default", "web")->at("spec")["replicas"], 1);

  // The same value is no conflict: both own it.
  Reply shared = Apply(path, StatefulSet("web", {{"replicas", 1}}), "autoscaler");
  ASSERT_EQ(shared.code, 200) << shared.body.dump();
  EXPECT_EQ(shared.body["metadata"]["managedFields"].size(), 2u);

  Reply forced = Apply(path, StatefulSet("web", {{"replicas", 3}}), "autoscaler", /*force=*/true);
  ASSERT_EQ(forced.code, 200) << forced.body.dump();
  EXPECT_EQ(forced.body["spec"]["replicas"], 3);
  for (const json& entry : forced.body["metadata"]["managedFields"]) {
    const json spec = entry["fieldsV1"]["f:spec"];
    if (entry["manager"] == "operator") {
      EXPECT_EQ(spec, (json{{"f:serviceName", json::object()}}));
    } else {
      EXPECT_EQ(entry["manager"], "autoscaler");
      EXPECT_EQ(spec, (json{{"f:replicas", json::object()}}));
    }
  }

  // Now the operator is the one in conflict; dropping the field leaves the autoscaler's value.
  Reply back =
      Apply(path, StatefulSet("web", {{"replicas", 1}, {"serviceName", "web"}}), "operator");
  ExpectStatus(back, 409, "Conflict");
  EXPECT_NE(back.body["message"].get<std::string>().find("\"autoscaler\""), std::string::npos);
  Reply yielded = Apply(path, StatefulSet("web", {{"serviceName", "web"}}), "operator");
  ASSERT_EQ(yielded.code, 200);
  EXPECT_EQ(yielded.body["spec"]["replicas"], 3);
}

TEST_F(FakeApiServerTest, ApplyKeepsFieldsAnotherManagerStillOwns) {
  const std::string path = std::string(kConfigMaps) + "/shared";
  json both = ConfigMap("shared");
  both["data"] = {{"x", "1"}, {"y", "2"}};
  ASSERT_EQ(Apply(path, both, "a").code, 201);
  json only_x = ConfigMap("shared");
  only_x["data"] = {{"x", "1"}};
  ASSERT_EQ(Apply(path, only_x, "b").code, 200);

  json nothing = ConfigMap("shared");
  nothing.erase("data");
  nothing["metadata"].erase("labels");
  Reply a_left = Apply(path, nothing, "a");
  ASSERT_EQ(a_left.code, 200);
  EXPECT_EQ(a_left.body["data"], (json{{"x", "1"}}));  // y went, x is b's too
  Reply b_left = Apply(path, nothing, "b");
  ASSERT_EQ(b_left.code, 200);
  EXPECT_FALSE(b_left.body.contains("data"));
  EXPECT_FALSE(b_left.body["metadata"].contains("managedFields"));
}

// status.runtimes is an associative list (by pod), as the ManagedAgent CRD declares: each
// runtime pod applies its own element under its own field manager, and the elements merge.
TEST_F(FakeApiServerTest, ApplyMergesAssociativeListsPerElement) {
  const std::string path = std::string(kAgents) + "/triage";
  ASSERT_EQ(Send("POST", kAgents,
                 {{"apiVersion", "agentry.dev/v1alpha1"},
                  {"kind", "ManagedAgent"},
                  {"metadata", {{"name", "triage"}}},
                  {"spec", {{"replicas", 2}}}})
                .code,
            201);
  const auto runtime = [](const std::string& pod, int sessions) {
    return json{{"apiVersion", "agentry.dev/v1alpha1"},
                {"kind", "ManagedAgent"},
                {"metadata", {{"name", "triage"}}},
                {"status", {{"runtimes", json::array({{{"pod", pod}, {"sessions", sessions}}})}}}};
  };
  const std::string status = path + "/status";
  ASSERT_EQ(Apply(status, runtime("triage-1", 4), "runtime-triage-1").code, 200);
  Reply both = Apply(status, runtime("triage-0", 2), "runtime-triage-0");
  ASSERT_EQ(both.code, 200) << both.body.dump();
  // Stored order first, then the new element.
  EXPECT_EQ(both.body["status"]["runtimes"],
            (json::array(
                {{{"pod", "triage-1"}, {"sessions", 4}}, {{"pod", "triage-0"}, {"sessions", 2}}})));
  int runtime_managers = 0;
  for (const json& entry : both.body["metadata"]["managedFields"]) {
    if (entry.value("subresource", "") != "status") continue;  // the creator's spec
    ++runtime_managers;
    const std::string pod = entry["manager"].get<std::string>().substr(8);
    EXPECT_EQ(entry["fieldsV1"],
              (json{{"f:status",
                     {{"f:runtimes",
                       {{"k:{\"pod\":\"" + pod + "\"}",
                         {{"f:pod", json::object()}, {"f:sessions", json::object()}}}}}}}}))
        << entry.dump();
  }
  EXPECT_EQ(runtime_managers, 2);

  // A new value for one element is no conflict with the other's manager.
  Reply changed = Apply(status, runtime("triage-1", 5), "runtime-triage-1");
  ASSERT_EQ(changed.code, 200) << changed.body.dump();
  EXPECT_EQ(changed.body["status"]["runtimes"][0]["sessions"], 5);
  EXPECT_EQ(changed.body["status"]["runtimes"][1]["sessions"], 2);
  // The same element from another manager is.
  ExpectStatus(Apply(status, runtime("triage-1", 6), "runtime-triage-0"), 409, "Conflict");

  // A manager that stops applying its element removes it, and only it.
  json none = runtime("x", 0);
  none["status"]["runtimes"] = json::array();
  Reply left = Apply(status, none, "runtime-triage-1");
  ASSERT_EQ(left.code, 200) << left.body.dump();
  EXPECT_EQ(left.body["status"]["runtimes"],
            (json::array({{{"pod", "triage-0"}, {"sessions", 2}}})));

  // An element without its key, or two with the same key, is refused.
  json keyless = runtime("triage-0", 1);
  keyless["status"]["runtimes"][0].erase("pod");
  ExpectStatus(Apply(status, keyless, "runtime-triage-0"), 422, "Invalid");
  json twice = runtime("triage-0", 1);
  twice["status"]["runtimes"].push_back(twice["status"]["runtimes"][0]);
  ExpectStatus(Apply(status, twice, "runtime-triage-0"), 422, "Invalid");
}

TEST_F(FakeApiServerTest, UpdatesTakeOwnershipOfTheFieldsTheyChange) {
  const std::string path = std::string(kStatefulSets) + "/web";
  ASSERT_EQ(
      Apply(path, StatefulSet("web", {{"replicas", 1}, {"serviceName", "web"}}), "operator").code,
      201);
  Reply put = Send("PATCH", WithQuery(path, {{"fieldManager", "kubectl"}}),
                   {{"spec", {{"replicas", 2}}}}, "application/merge-patch+json");
  ASSERT_EQ(put.code, 200);
  const json& fields = put.body["metadata"]["managedFields"];
  ASSERT_EQ(fields.size(), 2u) << fields.dump();
  EXPECT_EQ(fields[0]["manager"], "operator");
  EXPECT_EQ(fields[0]["fieldsV1"], (json{{"f:spec", {{"f:serviceName", json::object()}}}}));
  EXPECT_EQ(fields[1]["manager"], "kubectl");
  EXPECT_EQ(fields[1]["operation"], "Update");
  EXPECT_EQ(fields[1]["fieldsV1"], (json{{"f:spec", {{"f:replicas", json::object()}}}}));

  // A create without fieldManager is recorded as "unknown".
  Reply created = Send("POST", kConfigMaps, ConfigMap("a"));
  EXPECT_EQ(created.body["metadata"]["managedFields"][0]["manager"], "unknown");
  EXPECT_EQ(created.body["metadata"]["managedFields"][0]["operation"], "Update");
}

// --- Delete, hooks, counters ---

TEST_F(FakeApiServerTest, DeleteAnswersTheObjectAndEmitsDeleted) {
  Reply created = Send("POST", kConfigMaps, ConfigMap("a"));
  ASSERT_EQ(created.code, 201);
  auto watch = Watch(kConfigMaps, {{"resourceVersion", Rv(created.body)}});
  Reply deleted = Send("DELETE", std::string(kConfigMaps) + "/a");
  ASSERT_EQ(deleted.code, 200);
  EXPECT_EQ(deleted.body["metadata"]["uid"], created.body["metadata"]["uid"]);
  std::optional<json> e = watch->Next();
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)["type"], "DELETED");
  EXPECT_EQ((*e)["object"]["metadata"]["name"], "a");
  EXPECT_EQ(Rv((*e)["object"]), std::to_string(api_->resource_version()));
  EXPECT_FALSE(api_->Get("configmaps", "default", "a"));
  ExpectStatus(Send("DELETE", std::string(kConfigMaps) + "/a"), 404, "NotFound");

  // With a finalizer: marked, and gone once the finalizer is removed.
  json guarded = ConfigMap("b");
  guarded["metadata"]["finalizers"] = {"agentry.dev/cleanup"};
  guarded["metadata"]["ownerReferences"] = {
      {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "a"}, {"uid", "u1"}}};
  ASSERT_EQ(Send("POST", kConfigMaps, guarded).code, 201);
  Reply marked = Send("DELETE", std::string(kConfigMaps) + "/b");
  ASSERT_EQ(marked.code, 200);
  EXPECT_TRUE(marked.body["metadata"].contains("deletionTimestamp"));
  EXPECT_EQ(marked.body["metadata"]["ownerReferences"], guarded["metadata"]["ownerReferences"]);
  ASSERT_TRUE(api_->Get("configmaps", "default", "b"));
  Reply cleared = Send("PATCH", std::string(kConfigMaps) + "/b",
                       {{"metadata", {{"finalizers", nullptr}}}}, "application/merge-patch+json");
  EXPECT_EQ(cleared.code, 200);
  EXPECT_FALSE(api_->Get("configmaps", "default", "b"));
  std::vector<std::string> types;
  for (int i = 0; i < 3; ++i) {
    e = watch->Next();
    ASSERT_TRUE(e);
    types.push_back((*e)["type"]);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"}));
}

TEST_F(FakeApiServerTest, PutAndGetHooksSeedObjectsWithStatus) {
  auto stored = api_->Put({{"apiVersion", "agentry.dev/v1alpha1"},
                           {"kind", "ManagedAgent"},
                           {"metadata", {{"name", "bot"}, {"namespace", "team"}}},
                           {"spec", {{"model", "m"}}},
                           {"status", {{"phase", "Ready"}}}});
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ((*stored)["metadata"]["generation"], 1);
  std::optional<json> got = api_->Get("managedagents", "team", "bot");
  ASSERT_TRUE(got);
  EXPECT_EQ((*got)["status"]["phase"], "Ready");
  EXPECT_EQ(Send("GET", "/apis/agentry.dev/v1alpha1/namespaces/team/managedagents/bot").body, *got);
  EXPECT_FALSE(
      api_->Put({{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}}}}).ok());
  EXPECT_EQ(api_->List("managedagents").size(), 1u);
  EXPECT_EQ(api_->List("managedagents", "default").size(), 0u);
}

TEST_F(FakeApiServerTest, CountsRequestsPerVerbAndInjectsFailures) {
  EXPECT_EQ(api_->writes(), 0u);
  const std::string item = std::string(kConfigMaps) + "/a";
  Reply created = Send("POST", kConfigMaps, ConfigMap("a"));
  Send("GET", item);
  Send("GET", item);
  Send("GET", kConfigMaps);
  Send("PUT", item, created.body);
  Send("PATCH", item, {{"data", {{"k", "x"}}}}, "application/merge-patch+json");
  Apply(item, ConfigMap("a"), "m");
  Send("DELETE", item);
  Watch(kConfigMaps, {{"timeoutSeconds", "0"}})->Next();
  EXPECT_EQ(api_->count(Verb::kCreate), 1u);
  EXPECT_EQ(api_->count(Verb::kGet), 2u);
  EXPECT_EQ(api_->count(Verb::kList), 1u);
  EXPECT_EQ(api_->count(Verb::kUpdate), 1u);
  EXPECT_EQ(api_->count(Verb::kPatch), 2u);
  EXPECT_EQ(api_->count(Verb::kDelete), 1u);
  EXPECT_EQ(api_->count(Verb::kWatch), 1u);
  EXPECT_EQ(api_->writes(), 5u);
  api_->ResetCounts();
  Send("GET", kConfigMaps);
  EXPECT_EQ(api_->writes(), 0u);
  EXPECT_EQ(api_->count(Verb::kList), 1u);

  // Injected failures: the next N of a verb, then back to normal.
  created = Send("POST", kConfigMaps, ConfigMap("b"));
  api_->FailNext(Verb::kUpdate, 1, 409);
  api_->FailNext(Verb::kGet, 2, 500);
  ExpectStatus(Send("PUT", std::string(kConfigMaps) + "/b", created.body), 409, "Conflict");
  EXPECT_EQ(Send("PUT", std::string(kConfigMaps) + "/b", created.body).code, 200);
  ExpectStatus(Send("GET", std::string(kConfigMaps) + "/b"), 500, "InternalError");
  ExpectStatus(Send("GET", std::string(kConfigMaps) + "/b"), 500, "InternalError");
  EXPECT_EQ(Send("GET", std::string(kConfigMaps) + "/b").code, 200);
  EXPECT_EQ(api_->count(Verb::kGet), 3u);
}

}  // namespace
}  // namespace agentry::kube
