// runtime/harness/node_client.h — the runtime's client of the node daemon.
//
// Generate is not retried: it is not idempotent (the daemon's KV moves on), so a daemon that
// vanished mid-turn is UNAVAILABLE to the caller, who answers 503 and lets the next turn
// rebuild the session from the transcript.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "agentry/node/v1/node.grpc.pb.h"
#include <grpcpp/grpcpp.h>

#include "common/status.h"

namespace agentry::harness {

namespace nodepb = agentry::node::v1;

struct GenerateResult {
  std::string text;
  nodepb::FinishReason finish_reason = nodepb::FINISH_REASON_UNSPECIFIED;
  nodepb::Usage usage;
};

class NodeClient {
 public:
  // "unix:/var/run/agentry/nodeagent.sock"
  explicit NodeClient(const std::string& target);

  StatusOr<nodepb::OpenSessionResponse> OpenSession(const nodepb::OpenSessionRequest& request);
  Status CloseSession(const std::string& session);
  // Streams the reply's text to `on_text` as it arrives; `on_text` returning false cancels
  // the generation (the result then ends with FINISH_REASON_CANCELLED).
  StatusOr<GenerateResult> Generate(const nodepb::GenerateRequest& request,
                                    const std::function<bool(const std::string&)>& on_text);
  // The session's KV, position and transcript, in the daemon's versioned snapshot format.
  StatusOr<std::string> Snapshot(const std::string& session);
  // Opens (or reuses) the session `open` names and loads `snapshot` into it.
  StatusOr<nodepb::RestoreResponse> Restore(const nodepb::OpenSessionRequest& open,
                                            std::string_view snapshot);
  // OK when the daemon serves `model`; NOT_FOUND naming what it serves instead; UNAVAILABLE
  // when it does not answer (within 5 s).
  Status CheckModelServed(const std::string& model);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<nodepb::NodeAgent::Stub> stub_;
};

}  // namespace agentry::harness
