// nodeagent/server/node_service.cc — see node_service.h.
#include "nodeagent/server/node_service.h"

#include <filesystem>

#include <grpcpp/health_check_service_interface.h>
#include <nlohmann/json.hpp>

#include "common/grpc/status.h"
#include "common/grpc/unix_socket_server.h"

namespace agentry::server {

namespace pb = agentry::node::v1;

namespace {

scheduler::SamplingOverride FromProto(const pb::Sampling& s) {
  scheduler::SamplingOverride o;
  if (s.has_temperature()) o.temperature = s.temperature();
  if (s.has_top_k()) o.top_k = s.top_k();
  if (s.has_top_p()) o.top_p = s.top_p();
  if (s.has_min_p()) o.min_p = s.min_p();
  if (s.has_repeat_penalty()) o.repeat_penalty = s.repeat_penalty();
  if (s.has_seed()) o.seed = s.seed();
  return o;
}

StatusOr<scheduler::ToolCallFormat> FromProto(const pb::ToolCallFormat& f) {
  scheduler::ToolCallFormat format{f.open(), f.close(), {}};
  for (int i = 0; i < f.tools_size(); ++i) {
    const pb::Tool& tool = f.tools(i);
    nlohmann::json parameters;  // null: no arguments
    if (!tool.parameters_json().empty()) {
      parameters = nlohmann::json::parse(tool.parameters_json(), nullptr, false);
      if (parameters.is_discarded()) {
        return InvalidArgumentError("tool_calls.tools[" + std::to_string(i) + "] (" + tool.name() +
                                    ").parameters_json: not valid JSON");
      }
    }
    format.tools.push_back({tool.name(), std::move(parameters)});
  }
  return format;
}

StatusOr<scheduler::OpenSessionParams> FromProto(const pb::OpenSessionRequest& r) {
  scheduler::OpenSessionParams p;
  p.agent = r.agent();
  p.session_id = r.session_id();
  p.model = r.model();
  p.device_id = r.device_id();
  switch (r.device_preference()) {
    case pb::DEVICE_PREFERENCE_ANY:
      break;
    case pb::DEVICE_PREFERENCE_CPU:
      p.preferred_kind = devices::DeviceKind::kCpu;
      break;
    case pb::DEVICE_PREFERENCE_NVIDIA_GPU:
      p.preferred_kind = devices::DeviceKind::kNvidiaGpu;
      break;
    case pb::DEVICE_PREFERENCE_NEURON:
      p.preferred_kind = devices::DeviceKind::kNeuron;
      break;
    default:
      return InvalidArgumentError("device_preference: unknown value " +
                                  std::to_string(r.device_preference()));
  }
  p.sampling = FromProto(r.sampling()).Apply({});
  p.on_behalf_of = r.on_behalf_of();
  return p;
}

void ToProto(const devices::Device& d, pb::Device* out) {
  out->set_id(d.id);
  out->set_kind(std::string(devices::DeviceKindName(d.kind)));
  out->set_model(d.model);
  out->set_backend(d.backend);
  out->set_note(d.note);
  out->set_cores(d.cores);
  out->set_isa(d.isa);
  out->set_memory_total_bytes(d.memory_total_bytes);
}

void ToProto(const scheduler::SessionPlacement& p, pb::OpenSessionResponse* out) {
  out->set_session(p.handle);
  ToProto(p.device, out->mutable_device());
  out->set_context_length(p.context_length);
  out->set_existed(p.existed);
}

pb::FinishReason ToProto(scheduler::FinishReason f) {
  switch (f) {
    case scheduler::FinishReason::kStop:
      return pb::FINISH_REASON_STOP;
    case scheduler::FinishReason::kLength:
      return pb::FINISH_REASON_LENGTH;
    case scheduler::FinishReason::kCancelled:
      return pb::FINISH_REASON_CANCELLED;
  }
  return pb::FINISH_REASON_UNSPECIFIED;
}

}  // namespace

grpc::Status NodeService::OpenSession(grpc::ServerContext*, const pb::OpenSessionRequest* request,
                                      pb::OpenSessionResponse* response) {
  StatusOr<scheduler::OpenSessionParams> params = FromProto(*request);
  if (!params.ok()) return ToGrpc(params.status());
  StatusOr<scheduler::SessionPlacement> placed = sessions_->Open(*params);
  if (!placed.ok()) return ToGrpc(placed.status());
  ToProto(*placed, response);
  return grpc::Status::OK;
}

grpc::Status NodeService::Generate(grpc::ServerContext* context, const pb::GenerateRequest* request,
                                   grpc::ServerWriter<pb::GenerateResponse>* writer) {
  scheduler::GenerateParams params;
  params.handle = request->session();
  for (const pb::Message& m : request->messages())
    params.messages.push_back({m.role(), m.content()});
  params.tokens.assign(request->tokens().begin(), request->tokens().end());
  params.sampling = FromProto(request->sampling());
  params.stop.assign(request->stop().begin(), request->stop().end());
  params.max_tokens = request->max_tokens();
  params.json_schema = request->json_schema();
  if (request->has_tool_calls()) {
    StatusOr<scheduler::ToolCallFormat> format = FromProto(request->tool_calls());
    if (!format.ok()) return ToGrpc(format.status());
    params.tool_calls = std::move(*format);
  }
  StatusOr<scheduler::GenerationResult> result =
      sessions_->Generate(params, [&](const scheduler::GenerationDelta& d) {
        if (context->IsCancelled()) return false;
        pb::GenerateResponse delta;
        delta.mutable_tokens()->Add(d.tokens.begin(), d.tokens.end());
        delta.set_text(d.text);
        return writer->Write(delta);
      });
  if (!result.ok()) return ToGrpc(result.status());
  pb::GenerateResponse last;
  last.set_finish_reason(ToProto(result->finish));
  pb::Usage* usage = last.mutable_usage();
  usage->set_prompt_tokens(result->usage.prompt_tokens);
  usage->set_cached_tokens(result->usage.cached_tokens);
  usage->set_generated_tokens(result->usage.generated_tokens);
  usage->set_kv_tokens(result->usage.kv_tokens);
  usage->set_restored(result->usage.restored);
  last.set_tool_call(result->tool_call);
  writer->Write(last);
  return grpc::Status::OK;
}

grpc::Status NodeService::Cancel(grpc::ServerContext*, const pb::CancelRequest* request,
                                 pb::CancelResponse* response) {
  StatusOr<bool> was = sessions_->Cancel(request->session());
  if (!was.ok()) return ToGrpc(was.status());
  response->set_was_generating(*was);
  return grpc::Status::OK;
}

grpc::Status NodeService::CloseSession(grpc::ServerContext*, const pb::CloseSessionRequest* request,
                                       pb::CloseSessionResponse*) {
  return ToGrpc(sessions_->Close(request->session()));
}

grpc::Status NodeService::Snapshot(grpc::ServerContext*, const pb::SnapshotRequest* request,
                                   grpc::ServerWriter<pb::SnapshotChunk>* writer) {
  StatusOr<std::string> bytes = sessions_->Snapshot(request->session());
  if (!bytes.ok()) return ToGrpc(bytes.status());
  for (size_t at = 0; at < bytes->size(); at += kSnapshotChunkBytes) {
    pb::SnapshotChunk chunk;
    chunk.set_data(bytes->substr(at, kSnapshotChunkBytes));
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
  return grpc::Status::OK;
}

grpc::Status NodeService::Restore(grpc::ServerContext*,
                                  grpc::ServerReader<pb::RestoreRequest>* reader,
                                  pb::RestoreResponse* response) {
  pb::RestoreRequest message;
  std::optional<pb::OpenSessionRequest> open;
  std::string bytes;
  while (reader->Read(&message)) {
    if (message.has_open()) {
      if (open.has_value()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "open: only the first message names the session");
      }
      open = message.open();
    }
    if (bytes.size() + message.data().size() > kMaxSnapshotBytes) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "data: larger than the " + std::to_string(kMaxSnapshotBytes >> 20) +
                              " MiB a snapshot may be");
    }
    bytes += message.data();
  }
  if (!open.has_value()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "open: the first message must name the session to restore into");
  }
  StatusOr<scheduler::OpenSessionParams> params = FromProto(*open);
  if (!params.ok()) return ToGrpc(params.status());
  StatusOr<scheduler::SessionPlacement> placed = sessions_->Restore(*params, bytes);
  if (!placed.ok()) return ToGrpc(placed.status());
  ToProto(*placed, response->mutable_session());
  response->set_kv_tokens(placed->kv_tokens);
  return grpc::Status::OK;
}

grpc::Status NodeService::ListDevices(grpc::ServerContext*, const pb::ListDevicesRequest*,
                                      pb::ListDevicesResponse* response) {
  const std::vector<std::string> models = models_->names();
  for (const scheduler::DeviceUsage& u : sessions_->ListDevices()) {
    pb::Device* d = response->add_devices();
    ToProto(u.device, d);
    d->set_kv_capacity_bytes(u.kv_capacity_bytes);
    d->set_kv_used_bytes(u.kv_used_bytes);
    d->set_sessions(u.sessions);
    // Every device is served by the CPU backend, which serves every model.
    for (const std::string& m : models) d->add_models(m);
  }
  for (const std::string& m : models) response->add_models(m);
  return grpc::Status::OK;
}

grpc::Status NodeService::ListSessions(grpc::ServerContext*, const pb::ListSessionsRequest* request,
                                       pb::ListSessionsResponse* response) {
  for (const scheduler::SessionInfo& s : sessions_->ListSessions(request->agent())) {
    pb::SessionInfo* out = response->add_sessions();
    out->set_session(s.handle);
    out->set_agent(s.agent);
    out->set_session_id(s.session_id);
    out->set_model(s.model);
    out->set_device_id(s.device_id);
    out->set_kv_tokens(s.kv_tokens);
    out->set_kv_bytes(s.kv_bytes);
    out->set_state(s.state);
    out->set_idle_seconds(static_cast<int64_t>(s.idle_seconds));
  }
  return grpc::Status::OK;
}

NodeServer::NodeServer(scheduler::SessionManager* sessions, scheduler::ModelRegistry* models,
                       NodeServerOptions options)
    : sessions_(sessions), options_(std::move(options)), service_(sessions, models) {}

NodeServer::~NodeServer() {
  if (server_ != nullptr) Shutdown(std::chrono::steady_clock::now());
}

Status NodeServer::Start() {
  AGENTRY_ASSIGN_OR_RETURN(
      server_, StartUnixSocketServer(options_.socket_path, &service_, options_.max_message_bytes));
  return OkStatus();
}

int NodeServer::Shutdown(std::chrono::steady_clock::time_point deadline) {
  if (server_ == nullptr) return 0;
  server_->GetHealthCheckService()->SetServingStatus(false);
  sessions_->StopAccepting();
  const int cancelled = sessions_->Drain(deadline);
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_.reset();
  std::error_code ec;
  std::filesystem::remove(options_.socket_path, ec);
  return cancelled;
}

}  // namespace agentry::server
