// runtime/harness/tests/data_plane.h — a real node daemon (gRPC on a unix socket, serving a
// generated test model as "tiny" with the chatml template) and a real state sidecar (SQLite
// in a temporary directory), in this process, for the runtime's component tests.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "nodeagent/engine/test_model.h"
#include "nodeagent/server/node_service.h"
#include "runtime/state/state_service.h"
#include "runtime/state/store.h"

namespace agentry::harness {

class LocalDataPlane {
 public:
  // Empty on success, else what failed.
  std::string Start(int64_t context = 256) {
    static std::atomic<int> counter{0};
    dir_ = "/tmp/agdp-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    std::filesystem::create_directories(dir_);
    engine::TestModelSpec spec;
    spec.ctx = context;
    spec.seed = 5;
    StatusOr<std::string> bytes = engine::BuildTestModel(spec);
    if (!bytes.ok()) return bytes.status().ToString();
    std::ofstream(dir_ + "/model.gguf", std::ios::binary) << *bytes;
    if (Status s = models_.Add("tiny", dir_ + "/model.gguf", "chatml"); !s.ok())
      return s.ToString();
    devices::Device cpu;
    cpu.id = "cpu";
    scheduler::SessionManagerOptions options;
    options.context_length = context;
    options.threads = 2;
    sessions_ = std::make_unique<scheduler::SessionManager>(
        &models_, std::vector<devices::Device>{cpu}, options, nullptr);
    node_server_ = std::make_unique<server::NodeServer>(
        sessions_.get(), &models_, server::NodeServerOptions{dir_ + "/node.sock"});
    if (Status s = node_server_->Start(); !s.ok()) return s.ToString();
    StatusOr<std::unique_ptr<state::StateStore>> store = state::StateStore::Open(dir_ + "/state");
    if (!store.ok()) return store.status().ToString();
    store_ = std::move(store).value();
    state_server_ = std::make_unique<state::StateServer>(
        store_.get(), state::StateServerOptions{.socket_path = dir_ + "/state.sock"}, nullptr);
    if (Status s = state_server_->Start(); !s.ok()) return s.ToString();
    return "";
  }

  ~LocalDataPlane() {
    state_server_.reset();
    node_server_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string node_target() const { return "unix:" + dir_ + "/node.sock"; }
  // The node daemon's sessions (what it holds KV for).
  std::vector<scheduler::SessionInfo> DaemonSessions() const { return sessions_->ListSessions(""); }
  std::string state_target() const { return "unix:" + dir_ + "/state.sock"; }

 private:
  std::string dir_;
  scheduler::ModelRegistry models_;
  std::unique_ptr<scheduler::SessionManager> sessions_;
  std::unique_ptr<server::NodeServer> node_server_;
  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<state::StateServer> state_server_;
};

}  // namespace agentry::harness
