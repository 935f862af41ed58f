#include "runtime/harness/node_client.h"

#include "common/grpc/chunks.h"
#include "common/grpc/status.h"

namespace agentry::harness {
namespace {

Status FromDaemon(const grpc::Status& s) { return FromGrpc(s).WithPrefix("node daemon"); }

}  // namespace

NodeClient::NodeClient(const std::string& target)
    : channel_(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())),
      stub_(nodepb::NodeAgent::NewStub(channel_)) {}

StatusOr<nodepb::OpenSessionResponse> NodeClient::OpenSession(
    const nodepb::OpenSessionRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  nodepb::OpenSessionResponse response;
  if (const grpc::Status s = stub_->OpenSession(&context, request, &response); !s.ok()) {
    return FromDaemon(s);
  }
  return response;
}

Status NodeClient::CloseSession(const std::string& session) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  nodepb::CloseSessionRequest request;
  request.set_session(session);
  nodepb::CloseSessionResponse response;
  return FromDaemon(stub_->CloseSession(&context, request, &response));
}

Status NodeClient::CheckModelServed(const std::string& model) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  nodepb::ListDevicesResponse response;
  AGENTRY_RETURN_IF_ERROR(
      FromDaemon(stub_->ListDevices(&context, nodepb::ListDevicesRequest(), &response)));
  std::string served;
  for (const std::string& name : response.models()) {
    if (name == model) return OkStatus();
    served += (served.empty() ? "" : ", ") + name;
  }
  return NotFoundError("the node daemon does not serve model " + model +
                       " (it serves: " + (served.empty() ? "nothing" : served) + ")");
}

StatusOr<GenerateResult> NodeClient::Generate(
    const nodepb::GenerateRequest& request,
    const std::function<bool(const std::string&)>& on_text) {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<nodepb::GenerateResponse>> reader =
      stub_->Generate(&context, request);
  GenerateResult result;
  nodepb::GenerateResponse piece;
  bool cancelled = false;
  while (reader->Read(&piece)) {
    if (!piece.text().empty()) {
      result.text += piece.text();
      if (!cancelled && !on_text(piece.text())) {
        // The daemon's Cancel stops the generation at its next token and still ends the
        // stream with the usage (what was prefilled and generated counts against budgets);
        // the stream is only torn down when the daemon cannot be asked.
        cancelled = true;
        grpc::ClientContext cancel_context;
        cancel_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        nodepb::CancelRequest cancel;
        cancel.set_session(request.session());
        nodepb::CancelResponse response;
        if (!stub_->Cancel(&cancel_context, cancel, &response).ok()) context.TryCancel();
      }
    }
    if (piece.finish_reason() != nodepb::FINISH_REASON_UNSPECIFIED) {
      result.finish_reason = piece.finish_reason();
      result.usage = piece.usage();
    }
  }
  const grpc::Status s = reader->Finish();
  if (cancelled) {
    result.finish_reason = nodepb::FINISH_REASON_CANCELLED;
    return result;
  }
  if (!s.ok()) return FromDaemon(s);
  return result;
}

StatusOr<std::string> NodeClient::Snapshot(const std::string& session) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  nodepb::SnapshotRequest request;
  request.set_session(session);
  std::unique_ptr<grpc::ClientReader<nodepb::SnapshotChunk>> reader =
      stub_->Snapshot(&context, request);
  std::string bytes;
  if (const grpc::Status s = ReadChunks(reader.get(), &bytes); !s.ok()) return FromDaemon(s);
  return bytes;
}

StatusOr<nodepb::RestoreResponse> NodeClient::Restore(const nodepb::OpenSessionRequest& open,
                                                      std::string_view snapshot) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  nodepb::RestoreResponse response;
  std::unique_ptr<grpc::ClientWriter<nodepb::RestoreRequest>> writer =
      stub_->Restore(&context, &response);
  const grpc::Status s = WriteChunks(writer.get(), snapshot, [&](nodepb::RestoreRequest* first) {
    *first->mutable_open() = open;
  });
  if (!s.ok()) return FromDaemon(s);
  return response;
}

}  // namespace agentry::harness
