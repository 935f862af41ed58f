#include "runtime/harness/state_client.h"

#include <random>
#include <thread>

#include "common/grpc/chunks.h"
#include "common/grpc/status.h"
#include "common/sha256.h"

namespace agentry::harness {
namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  // A restarted sidecar is found again within a fraction of a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  args.SetMaxReceiveMessageSize(32 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

bool IsStateVolumeFull(const Status& status) {
  return status.code() == StatusCode::kResourceExhausted &&
         status.message().rfind(std::string(kStateSidecarPrefix) + ": ", 0) == 0;
}

StateClient::StateClient(const std::string& target, StateClientOptions options)
    : options_(options), channel_(MakeChannel(target)), stub_(statepb::State::NewStub(channel_)) {}

std::string StateClient::NewRequestId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = rng();
    for (int i = 0; i < 16; ++i, bits >>= 4) id[half * 16 + i] = kHex[bits & 15];
  }
  return id;
}

template <typename Request, typename Response>
StatusOr<Response> StateClient::Call(
    grpc::Status (statepb::State::Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    const Request& request) {
  const auto give_up = std::chrono::steady_clock::now() + options_.retry_for;
  auto backoff = std::chrono::milliseconds(20);
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + options_.call_timeout);
    context.set_wait_for_ready(true);
    Response response;
    const grpc::Status s = ((*stub_).*method)(&context, request, &response);
    if (s.ok()) return response;
    const bool transient = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (!transient || std::chrono::steady_clock::now() + backoff > give_up) {
      return FromGrpc(s).WithPrefix(kStateSidecarPrefix);
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
}

StatusOr<statepb::Session> StateClient::CreateSession(
    const statepb::CreateSessionRequest& request) {
  return Call(&statepb::State::Stub::CreateSession, request);
}

StatusOr<statepb::Session> StateClient::GetSession(const std::string& id) {
  statepb::GetSessionRequest request;
  request.set_id(id);
  return Call(&statepb::State::Stub::GetSession, request);
}

StatusOr<statepb::ListSessionsResponse> StateClient::ListSessions(
    const statepb::ListSessionsRequest& request) {
  return Call(&statepb::State::Stub::ListSessions, request);
}

StatusOr<statepb::Session> StateClient::UpdateSession(statepb::UpdateSessionRequest request) {
  if (request.request_id().empty()) request.set_request_id(NewRequestId());
  return Call(&statepb::State::Stub::UpdateSession, request);
}

StatusOr<statepb::AppendEventsResponse> StateClient::AppendEvents(
    statepb::AppendEventsRequest request) {
  if (request.request_id().empty()) request.set_request_id(NewRequestId());
  return Call(&statepb::State::Stub::AppendEvents, request);
}

StatusOr<std::vector<statepb::Event>> StateClient::ReadTranscript(const std::string& session_id) {
  std::vector<statepb::Event> events;
  while (true) {
    statepb::ReadTranscriptRequest request;
    request.set_session_id(session_id);
    request.set_after_seq(events.empty() ? 0 : events.back().seq());
    AGENTRY_ASSIGN_OR_RETURN(statepb::ReadTranscriptResponse page,
                             Call(&statepb::State::Stub::ReadTranscript, request));
    events.insert(events.end(), page.events().begin(), page.events().end());
    if (!page.more() || page.events().empty()) return events;
  }
}

StatusOr<statepb::MemoryEntry> StateClient::PutMemory(statepb::PutMemoryRequest request) {
  if (request.request_id().empty()) request.set_request_id(NewRequestId());
  return Call(&statepb::State::Stub::PutMemory, request);
}

StatusOr<statepb::SearchMemoryResponse> StateClient::SearchMemory(
    const statepb::SearchMemoryRequest& request) {
  return Call(&statepb::State::Stub::SearchMemory, request);
}

StatusOr<statepb::Usage> StateClient::AddUsage(statepb::AddUsageRequest request) {
  if (request.request_id().empty()) request.set_request_id(NewRequestId());
  return Call(&statepb::State::Stub::AddUsage, request);
}

StatusOr<statepb::Usage> StateClient::GetUsage(const statepb::GetUsageRequest& request) {
  return Call(&statepb::State::Stub::GetUsage, request);
}

StatusOr<statepb::AuditRecord> StateClient::AppendAudit(statepb::AppendAuditRequest request) {
  if (request.request_id().empty()) request.set_request_id(NewRequestId());
  return Call(&statepb::State::Stub::AppendAudit, request);
}

StatusOr<statepb::ListAuditResponse> StateClient::ListAudit(
    const statepb::ListAuditRequest& request) {
  return Call(&statepb::State::Stub::ListAudit, request);
}

StatusOr<statepb::VerifyAuditResponse> StateClient::VerifyAudit() {
  return Call(&statepb::State::Stub::VerifyAudit, statepb::VerifyAuditRequest{});
}

StatusOr<statepb::SnapshotInfo> StateClient::PutSnapshot(const std::string& session_id,
                                                         std::string_view bytes) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  statepb::SnapshotInfo info;
  std::unique_ptr<grpc::ClientWriter<statepb::PutSnapshotRequest>> writer =
      stub_->PutSnapshot(&context, &info);
  const grpc::Status s = WriteChunks(writer.get(), bytes, [&](statepb::PutSnapshotRequest* first) {
    first->set_session_id(session_id);
    first->set_sha256(Sha256Hex(bytes));
  });
  if (!s.ok()) {
    return FromGrpc(s).WithPrefix(kStateSidecarPrefix);
  }
  return info;
}

StatusOr<std::string> StateClient::GetSnapshot(const std::string& session_id) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  statepb::GetSnapshotRequest request;
  request.set_session_id(session_id);
  std::unique_ptr<grpc::ClientReader<statepb::SnapshotChunk>> reader =
      stub_->GetSnapshot(&context, request);
  std::string bytes;
  if (const grpc::Status s = ReadChunks(reader.get(), &bytes); !s.ok()) {
    return FromGrpc(s).WithPrefix(kStateSidecarPrefix);
  }
  return bytes;
}

}  // namespace agentry::harness
