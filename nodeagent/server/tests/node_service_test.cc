// The node daemon's gRPC API over a real unix socket: sessions, streamed generation, cancel,
// snapshots through streams, listings, health, errors, and shutdown.
#include "nodeagent/server/node_service.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "nodeagent/engine/test_model.h"

namespace agentry::server {
namespace {

namespace pb = agentry::node::v1;
using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class NodeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/nodeagent_test_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    engine::TestModelSpec spec;
    spec.ctx = 512;
    spec.seed = 3;
    StatusOr<std::string> bytes = engine::BuildTestModel(spec);
    ASSERT_TRUE(bytes.ok());
    std::ofstream(dir_ + "/model.gguf", std::ios::binary) << *bytes;
    ASSERT_TRUE(models_.Add("tiny", dir_ + "/model.gguf", "chatml").ok());
    devices::Device cpu;
    cpu.id = "cpu";
    devices::Device gpu;
    gpu.id = "nvidia0";
    gpu.kind = devices::DeviceKind::kNvidiaGpu;
    gpu.note = "no CUDA backend yet: served by the CPU backend";
    scheduler::SessionManagerOptions options;
    options.context_length = 512;
    options.threads = 2;
    sessions_ = std::make_unique<scheduler::SessionManager>(
        &models_, std::vector<devices::Device>{cpu, gpu}, options, nullptr);
    // A socket under a directory that does not exist yet: Start creates it.
    socket_ = dir_ + "/run/node.sock";
    server_ = std::make_unique<NodeServer>(sessions_.get(), &models_, NodeServerOptions{socket_});
    ASSERT_TRUE(server_->Start().ok());
    channel_ = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
    stub_ = pb::NodeAgent::NewStub(channel_);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Open(const std::string& id, pb::DevicePreference pref = pb::DEVICE_PREFERENCE_ANY) {
    grpc::ClientContext ctx;
    pb::OpenSessionRequest req;
    req.set_agent("ns/triage");
    req.set_session_id(id);
    req.set_model("tiny");
    req.set_device_preference(pref);
    req.mutable_sampling()->set_temperature(0.0f);
    pb::OpenSessionResponse resp;
    const grpc::Status s = stub_->OpenSession(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.session();
  }

  // The streamed responses of one Generate, and its status.
  grpc::Status Generate(const std::string& session, const std::string& user, int max_tokens,
                        std::vector<pb::GenerateResponse>* out,
                        const std::string& json_schema = "") {
    grpc::ClientContext ctx;
    pb::GenerateRequest req;
    req.set_session(session);
    pb::Message* m = req.add_messages();
    m->set_role("user");
    m->set_content(user);
    req.set_max_tokens(max_tokens);
    req.set_json_schema(json_schema);
    auto reader = stub_->Generate(&ctx, req);
    pb::GenerateResponse r;
    while (reader->Read(&r)) out->push_back(r);
    return reader->Finish();
  }

  std::string dir_, socket_;
  scheduler::ModelRegistry models_;
  std::unique_ptr<scheduler::SessionManager> sessions_;
  std::unique_ptr<NodeServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::NodeAgent::Stub> stub_;
};

TEST_F(NodeServiceTest, SocketIsGroupOnlyAndHealthSaysServing) {
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  auto health = Health::NewStub(channel_);
  grpc::ClientContext ctx;
  HealthCheckResponse resp;
  ASSERT_TRUE(health->Check(&ctx, HealthCheckRequest(), &resp).ok());
  EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
}

TEST_F(NodeServiceTest, GenerateStreamsTokensAndReportsUsage) {
  const std::string session = Open("c1");
  std::vector<pb::GenerateResponse> first, second;
  ASSERT_TRUE(Generate(session, "hello", 8, &first).ok());
  ASSERT_EQ(first.size(), 9u);  // one token each, then the summary
  for (size_t i = 0; i + 1 < first.size(); ++i) EXPECT_EQ(first[i].tokens_size(), 1);
  const pb::GenerateResponse& last = first.back();
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_LENGTH);
  EXPECT_EQ(last.usage().generated_tokens(), 8);
  EXPECT_EQ(last.usage().cached_tokens(), 0);
  ASSERT_TRUE(Generate(session, "and then?", 4, &second).ok());
  // The second turn reuses the first (its prompt and 7 evaluated reply tokens).
  EXPECT_EQ(second.back().usage().cached_tokens(), last.usage().prompt_tokens() + 7);
}

TEST_F(NodeServiceTest, ListingsShowDevicesSessionsAndKv) {
  const std::string a = Open("c1", pb::DEVICE_PREFERENCE_CPU);
  const std::string b = Open("c2", pb::DEVICE_PREFERENCE_NVIDIA_GPU);
  std::vector<pb::GenerateResponse> out;
  ASSERT_TRUE(Generate(b, "hi", 2, &out).ok());
  grpc::ClientContext c1, c2;
  pb::ListDevicesResponse devices;
  ASSERT_TRUE(stub_->ListDevices(&c1, pb::ListDevicesRequest(), &devices).ok());
  ASSERT_EQ(devices.devices_size(), 2);
  EXPECT_EQ(devices.devices(1).id(), "nvidia0");
  EXPECT_EQ(devices.devices(1).backend(), "cpu");
  EXPECT_NE(devices.devices(1).note().find("CPU backend"), std::string::npos);
  EXPECT_EQ(devices.devices(1).sessions(), 1);
  EXPECT_GT(devices.devices(1).kv_used_bytes(), 0u);
  ASSERT_EQ(devices.models_size(), 1);
  pb::ListSessionsResponse sessions;
  ASSERT_TRUE(stub_->ListSessions(&c2, pb::ListSessionsRequest(), &sessions).ok());
  ASSERT_EQ(sessions.sessions_size(), 2);
  for (const pb::SessionInfo& s : sessions.sessions()) {
    EXPECT_EQ(s.device_id(), s.session() == a ? "cpu" : "nvidia0");
    EXPECT_EQ(s.kv_tokens() > 0, s.session() == b);
    EXPECT_GT(s.kv_bytes(), 0u);
  }
}

TEST_F(NodeServiceTest, SnapshotStreamsOutAndRestoresIntoANewSession) {
  const std::string a = Open("c1");
  std::vector<pb::GenerateResponse> out;
  ASSERT_TRUE(Generate(a, "remember 4821", 6, &out).ok());
  std::string bytes;
  {
    grpc::ClientContext ctx;
    pb::SnapshotRequest req;
    req.set_session(a);
    auto reader = stub_->Snapshot(&ctx, req);
    pb::SnapshotChunk chunk;
    while (reader->Read(&chunk)) bytes += chunk.data();
    ASSERT_TRUE(reader->Finish().ok());
  }
  ASSERT_GT(bytes.size(), 100u);
  const auto restore = [&](const std::string& data, pb::RestoreResponse* resp) {
    grpc::ClientContext ctx;
    auto writer = stub_->Restore(&ctx, resp);
    pb::RestoreRequest first;
    first.mutable_open()->set_agent("ns/triage");
    first.mutable_open()->set_session_id("moved");
    first.mutable_open()->set_model("tiny");
    first.set_data(data.substr(0, 50));
    writer->Write(first);
    pb::RestoreRequest rest;
    rest.set_data(data.substr(std::min<size_t>(50, data.size())));
    writer->Write(rest);
    writer->WritesDone();
    return writer->Finish();
  };
  pb::RestoreResponse resp;
  std::string corrupt = bytes;
  corrupt[bytes.size() / 2] ^= 1;
  const grpc::Status bad = restore(corrupt, &resp);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::DATA_LOSS) << bad.error_message();
  const grpc::Status ok = restore(bytes, &resp);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_GT(resp.kv_tokens(), 0);
  out.clear();
  ASSERT_TRUE(Generate(resp.session().session(), "what number?", 3, &out).ok());
  EXPECT_EQ(out.back().usage().cached_tokens(), resp.kv_tokens());
}

TEST_F(NodeServiceTest, CancelEndsAGenerationAndOthersCarryOn) {
  const std::string a = Open("c1");
  const std::string b = Open("c2");
  grpc::ClientContext ctx;
  pb::GenerateRequest req;
  req.set_session(a);
  req.add_messages()->set_role("user");
  req.set_max_tokens(400);
  auto reader = stub_->Generate(&ctx, req);
  pb::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));  // generating now
  {
    grpc::ClientContext cancel_ctx;
    pb::CancelRequest cancel;
    cancel.set_session(a);
    pb::CancelResponse resp;
    ASSERT_TRUE(stub_->Cancel(&cancel_ctx, cancel, &resp).ok());
    EXPECT_TRUE(resp.was_generating());
  }
  pb::GenerateResponse last;
  while (reader->Read(&r)) last = r;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_CANCELLED);
  EXPECT_LT(last.usage().generated_tokens(), 400);
  std::vector<pb::GenerateResponse> out;
  EXPECT_TRUE(Generate(b, "still here?", 2, &out).ok());
}

TEST_F(NodeServiceTest, JsonSchemaConstrainsTheStreamedReply) {
  const std::string a = Open("c1");
  std::vector<pb::GenerateResponse> out;
  ASSERT_TRUE(Generate(a, "status of 4821?", 100, &out,
                       R"({"type":"object","properties":{"id":{"enum":[4821,4822]}},)"
                       R"("required":["id"],"additionalProperties":false})")
                  .ok());
  std::string text;
  for (const pb::GenerateResponse& r : out) text += r.text();
  EXPECT_EQ(out.back().finish_reason(), pb::FINISH_REASON_STOP) << text;
  const nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  ASSERT_TRUE(value.is_object()) << text;
  EXPECT_TRUE(value["id"] == 4821 || value["id"] == 4822) << text;
  EXPECT_EQ(value.size(), 1u) << text;
  const grpc::Status bad = Generate(a, "again", 10, &out, R"({"type":"string","format":"date"})");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("json_schema.format: unsupported keyword"), std::string::npos)
      << bad.error_message();
}

TEST_F(NodeServiceTest, MalformedRequestsGetErrorsThatNameTheProblem) {
  const std::string a = Open("c1");
  std::vector<pb::GenerateResponse> out;
  grpc::Status s = Generate("s999", "hi", 1, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("s999"), std::string::npos);
  {
    grpc::ClientContext ctx;
    pb::OpenSessionRequest req;
    req.set_agent("ns/triage");
    req.set_session_id("x");
    req.set_model("llama-70b");
    pb::OpenSessionResponse resp;
    s = stub_->OpenSession(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(s.error_message().find("served: tiny"), std::string::npos) << s.error_message();
  }
  s = Generate(a, std::string(20000, 'y'), 1, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << s.error_message();
  {
    grpc::ClientContext ctx;
    pb::GenerateRequest req;
    req.set_session(a);
    req.add_tokens(1 << 30);
    auto reader = stub_->Generate(&ctx, req);
    pb::GenerateResponse r;
    while (reader->Read(&r)) {
    }
    s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // The session is untouched by all of it.
  out.clear();
  ASSERT_TRUE(Generate(a, "hello", 2, &out).ok());
  EXPECT_EQ(out.back().usage().cached_tokens(), 0);
}

TEST_F(NodeServiceTest, ShutdownStopsServingAndRemovesTheSocket) {
  Open("c1");
  EXPECT_EQ(server_->Shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(5)), 0);
  EXPECT_FALSE(std::filesystem::exists(socket_));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  pb::ListSessionsResponse resp;
  EXPECT_FALSE(stub_->ListSessions(&ctx, pb::ListSessionsRequest(), &resp).ok());
}

}  // namespace
}  // namespace agentry::server
