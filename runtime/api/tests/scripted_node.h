// runtime/api/tests/scripted_node.h — a node daemon written for the tests: a real
// agentry.node.v1 gRPC server on a unix socket whose replies come from a script, so the
// runtime's tool loop can be driven through calls a random-weight model never writes. It
// records every Generate request (the messages it appended and the tool-call format), as the
// real daemon would receive them.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agentry/node/v1/node.grpc.pb.h"

#include "common/grpc/unix_socket_server.h"

namespace agentry::api::testing {

namespace nodepb = agentry::node::v1;

class ScriptedNode final : public nodepb::NodeAgent::Service {
 public:
  ~ScriptedNode() override { Stop(); }

  // Empty on success, else why the server did not start.
  std::string Start(const std::string& socket) {
    socket_ = socket;
    StatusOr<std::unique_ptr<grpc::Server>> server = StartUnixSocketServer(socket, this, 4 << 20);
    if (!server.ok()) return server.status().ToString();
    server_ = std::move(server).value();
    return "";
  }
  void Stop() {
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
  }
  std::string target() const { return "unix:" + socket_; }

  // The next replies, in order; a Generate with none left answers "(no script)".
  void Script(std::vector<std::string> replies) {
    std::lock_guard<std::mutex> lock(mu_);
    replies_.insert(replies_.end(), replies.begin(), replies.end());
  }
  // Runs at the start of every Generate, before any reply is written (time passing, say).
  void OnGenerate(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    on_generate_ = std::move(hook);
  }
  std::vector<nodepb::GenerateRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  grpc::Status OpenSession(grpc::ServerContext*, const nodepb::OpenSessionRequest* request,
                           nodepb::OpenSessionResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string handle = request->agent() + "|" + request->session_id();
    response->set_session(handle);
    response->set_context_length(4096);
    response->set_existed(!open_.insert(handle).second);
    return grpc::Status::OK;
  }
  grpc::Status CloseSession(grpc::ServerContext*, const nodepb::CloseSessionRequest* request,
                            nodepb::CloseSessionResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    open_.erase(request->session());
    return grpc::Status::OK;
  }
  grpc::Status Cancel(grpc::ServerContext*, const nodepb::CancelRequest*,
                      nodepb::CancelResponse*) override {
    return grpc::Status::OK;
  }
  grpc::Status Generate(grpc::ServerContext*, const nodepb::GenerateRequest* request,
                        grpc::ServerWriter<nodepb::GenerateResponse>* writer) override {
    std::string text = "(no script)";
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (on_generate_) on_generate_();
      requests_.push_back(*request);
      if (!replies_.empty()) {
        text = replies_.front();
        replies_.pop_front();
      }
    }
    nodepb::GenerateResponse delta;
    delta.set_text(text);
    writer->Write(delta);
    nodepb::GenerateResponse last;
    last.set_finish_reason(nodepb::FINISH_REASON_STOP);
    last.mutable_usage()->set_prompt_tokens(10);
    last.mutable_usage()->set_generated_tokens(5);
    last.set_tool_call(text.starts_with("<tool_call>"));
    writer->Write(last);
    return grpc::Status::OK;
  }

 private:
  std::string socket_;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::deque<std::string> replies_;
  std::vector<nodepb::GenerateRequest> requests_;
  std::set<std::string> open_;
  std::function<void()> on_generate_;
};

}  // namespace agentry::api::testing
