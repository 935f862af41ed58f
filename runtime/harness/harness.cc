#include "runtime/harness/harness.h"

#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "common/log/log.h"
#include "runtime/harness/session_snapshot.h"
#include "runtime/prompt/answer_text.h"

namespace agentry::harness {
namespace {

nlohmann::json Metadata(const statepb::Session& session) {
  nlohmann::json meta =
      nlohmann::json::parse(session.metadata_json(), nullptr, /*allow_exceptions=*/false);
  return meta.is_object() ? meta : nlohmann::json::object();
}

// How far the daemon session's KV holds the transcript, from the session's metadata.
int64_t KvThroughSeq(const statepb::Session& session) {
  const nlohmann::json meta = Metadata(session);
  if (!meta.contains("kv_through_seq") || !meta["kv_through_seq"].is_number_integer()) return 0;
  return meta["kv_through_seq"].get<int64_t>();
}

// A tool call's id: unique within the session, as the transcript and approvals name it.
std::string NewCallId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char id[24];
  std::snprintf(id, sizeof(id), "call_%012llx",
                static_cast<unsigned long long>(rng() & 0xFFFFFFFFFFFFULL));
  return id;
}

std::vector<statepb::Event> ToolEvents(const std::vector<ToolResultEvent>& results) {
  std::vector<statepb::Event> events;
  for (const ToolResultEvent& r : results) {
    statepb::Event& e = events.emplace_back();
    e.set_kind("tool");
    e.set_name(r.name);
    e.set_tool_call_id(r.call_id);
    e.set_content(r.content);
    e.set_metadata_json(r.metadata_json);
  }
  return events;
}

}  // namespace

Harness::Harness(HarnessOptions options, StateClient* state, NodeClient* node)
    : options_(std::move(options)), state_(state), node_(node) {}

StatusOr<statepb::Session> Harness::OpenSession(const std::string& id,
                                                const std::string& on_behalf_of,
                                                const std::string& metadata_json) {
  statepb::CreateSessionRequest request;
  request.set_metadata_json(metadata_json);
  request.set_id(id);
  request.set_agent(options_.agent);
  request.set_on_behalf_of(on_behalf_of);
  return state_->CreateSession(request);
}

nodepb::OpenSessionRequest Harness::OpenRequest(const statepb::Session& session) const {
  nodepb::OpenSessionRequest open;
  open.set_agent(options_.agent);
  open.set_session_id(session.id());
  open.set_model(options_.model);
  open.set_on_behalf_of(session.on_behalf_of());
  open.mutable_sampling()->set_temperature(0.0f);
  return open;
}

nodepb::GenerateRequest Harness::GenerateRequestFor(const std::string& handle,
                                                    int32_t max_tokens) const {
  nodepb::GenerateRequest generate;
  generate.set_session(handle);
  generate.set_max_tokens(max_tokens);
  if (!options_.tools.empty()) {
    nodepb::ToolCallFormat* format = generate.mutable_tool_calls();
    format->set_open(std::string(runtime::kToolCallOpen));
    format->set_close(std::string(runtime::kToolCallClose));
    for (const runtime::ToolDecl& decl : options_.tools) {
      nodepb::Tool* tool = format->add_tools();
      tool->set_name(decl.name);
      if (!decl.parameters.is_null()) tool->set_parameters_json(decl.parameters.dump());
    }
  }
  return generate;
}

StatusOr<std::string> Harness::OpenEmpty(const statepb::Session& session) {
  AGENTRY_ASSIGN_OR_RETURN(nodepb::OpenSessionResponse open,
                           node_->OpenSession(OpenRequest(session)));
  if (!open.existed()) return open.session();
  // Its KV holds something other than this transcript: start it again.
  AGENTRY_RETURN_IF_ERROR(node_->CloseSession(open.session()));
  AGENTRY_ASSIGN_OR_RETURN(open, node_->OpenSession(OpenRequest(session)));
  return open.session();
}

std::vector<statepb::Event> PromptEvents(const std::vector<statepb::Event>& events,
                                         int64_t first_input_seq, int64_t through_seq) {
  std::vector<statepb::Event> kept;
  std::vector<const statepb::Event*> unanswered;  // since the last assistant event
  const auto drop_failed_users = [&] {
    for (const statepb::Event* e : unanswered) {
      if (e->kind() != "user") kept.push_back(*e);
    }
    unanswered.clear();
  };
  for (const statepb::Event& e : events) {
    if (e.seq() > through_seq) break;
    if (e.seq() >= first_input_seq) {
      drop_failed_users();
      kept.push_back(e);
    } else if (e.kind() == "assistant") {
      for (const statepb::Event* answered : unanswered) kept.push_back(*answered);
      unanswered.clear();
      kept.push_back(e);
    } else {
      unanswered.push_back(&e);
    }
  }
  drop_failed_users();
  return kept;
}

StatusOr<GenerateResult> Harness::Rebuild(const statepb::Session& session, int64_t through_seq,
                                          std::string fresh_handle, int32_t max_tokens,
                                          const std::function<bool(const std::string&)>& on_text,
                                          TurnReply* reply) {
  AGENTRY_ASSIGN_OR_RETURN(const std::vector<statepb::Event> events,
                           state_->ReadTranscript(session.id()));
  std::vector<nodepb::Message> history;
  for (const statepb::Event& e : PromptEvents(events, reply->user_seq, through_seq)) {
    nodepb::Message m;
    m.set_role(e.kind());  // event kinds are chat roles
    m.set_content(e.content());
    history.push_back(std::move(m));
  }
  // Drop the oldest messages until the prompt fits, halving what is kept each time; the
  // last message (this turn's) always stays.
  size_t first = 0;
  while (true) {
    if (fresh_handle.empty()) {
      AGENTRY_ASSIGN_OR_RETURN(fresh_handle, OpenEmpty(session));
    }
    nodepb::GenerateRequest generate = GenerateRequestFor(fresh_handle, max_tokens);
    fresh_handle.clear();  // a retry (shortened) must start from an empty KV again
    nodepb::Message* system = generate.add_messages();
    system->set_role("system");
    system->set_content(options_.system_prompt);
    if (first > 0) {
      nodepb::Message* marker = generate.add_messages();
      marker->set_role("system");
      marker->set_content("[" + std::to_string(first) +
                          " earlier messages omitted to fit the context window]");
    }
    for (size_t i = first; i < history.size(); ++i) *generate.add_messages() = history[i];
    StatusOr<GenerateResult> result = node_->Generate(generate, on_text);
    if (result.ok() || result.status().code() != StatusCode::kOutOfRange ||
        first + 1 >= history.size()) {
      reply->rebuilt = through_seq > 1;  // a first turn has no history to rebuild
      reply->omitted_messages = static_cast<int64_t>(first);
      return result;
    }
    first += (history.size() - first) / 2;
  }
}

std::optional<StatusOr<GenerateResult>> Harness::Restore(
    const statepb::Session& session, int64_t through_seq, int32_t max_tokens,
    const std::function<bool(const std::string&)>& on_text, TurnReply* reply) {
  StatusOr<std::string> blob = state_->GetSnapshot(session.id());
  if (!blob.ok()) return std::nullopt;  // none (or unreadable): rebuild
  StatusOr<SessionSnapshot> snapshot = DecodeSessionSnapshot(*blob);
  if (!snapshot.ok() || snapshot->through_seq >= through_seq ||
      snapshot->prompt_key != PromptKey(options_.model, options_.system_prompt)) {
    return std::nullopt;
  }
  StatusOr<std::vector<statepb::Event>> events = state_->ReadTranscript(session.id());
  if (!events.ok()) return StatusOr<GenerateResult>(events.status());
  StatusOr<nodepb::RestoreResponse> restored =
      node_->Restore(OpenRequest(session), snapshot->daemon_bytes);
  if (!restored.ok()) {
    log::Logger("harness").Warn(
        "snapshot not restored; rebuilding from the transcript",
        {{"session", session.id()}, {"error", restored.status().message()}});
    return std::nullopt;
  }
  nodepb::GenerateRequest generate = GenerateRequestFor(restored->session().session(), max_tokens);
  for (const statepb::Event& e : PromptEvents(*events, reply->user_seq, through_seq)) {
    if (e.seq() <= snapshot->through_seq) continue;
    nodepb::Message* m = generate.add_messages();
    m->set_role(e.kind());
    m->set_content(e.content());
  }
  StatusOr<GenerateResult> result = node_->Generate(generate, on_text);
  if (!result.ok() && result.status().code() == StatusCode::kOutOfRange) return std::nullopt;
  reply->restored = result.ok();
  return result;
}

Status Harness::SaveSnapshot(const statepb::Session& session) {
  const int64_t through_seq = KvThroughSeq(session);
  if (through_seq < 1 || through_seq != session.next_seq() - 1) {
    return FailedPreconditionError("the daemon's KV does not hold the whole transcript");
  }
  AGENTRY_ASSIGN_OR_RETURN(const nodepb::OpenSessionResponse open,
                           node_->OpenSession(OpenRequest(session)));
  if (!open.existed()) {
    (void)node_->CloseSession(open.session());  // opened by asking: nothing to save
    return FailedPreconditionError("the node daemon no longer has the session");
  }
  SessionSnapshot snapshot;
  snapshot.through_seq = through_seq;
  snapshot.prompt_key = PromptKey(options_.model, options_.system_prompt);
  AGENTRY_ASSIGN_OR_RETURN(snapshot.daemon_bytes, node_->Snapshot(open.session()));
  return state_->PutSnapshot(session.id(), EncodeSessionSnapshot(snapshot)).status();
}

Status Harness::ReleaseDaemonSession(const statepb::Session& session) {
  // The daemon finds sessions by (agent, session id); one it did not have is opened by the
  // asking and closed at once.
  AGENTRY_ASSIGN_OR_RETURN(const nodepb::OpenSessionResponse open,
                           node_->OpenSession(OpenRequest(session)));
  return node_->CloseSession(open.session());
}

StatusOr<int> Harness::SaveSnapshots() {
  statepb::ListSessionsRequest list;
  list.set_state("active");
  list.set_limit(1000);
  AGENTRY_ASSIGN_OR_RETURN(const statepb::ListSessionsResponse sessions,
                           state_->ListSessions(list));
  int saved = 0;
  for (const statepb::Session& s : sessions.sessions()) {
    if (s.agent() == options_.agent && SaveSnapshot(s).ok()) ++saved;
  }
  return saved;
}

StatusOr<TurnReply> Harness::Turn(const std::string& session_id, const std::string& user_text,
                                  const std::function<bool(const std::string&)>& on_text) {
  AGENTRY_ASSIGN_OR_RETURN(const statepb::Session session, state_->GetSession(session_id));
  return Turn(session, user_text, on_text);
}

StatusOr<TurnReply> Harness::Turn(const statepb::Session& session, const std::string& user_text,
                                  const std::function<bool(const std::string&)>& on_text,
                                  int32_t max_tokens, const std::vector<ToolResultEvent>& before) {
  std::vector<statepb::Event> events = ToolEvents(before);
  statepb::Event& event = events.emplace_back();
  event.set_kind("user");
  event.set_content(user_text);
  return Step(session, events, on_text, max_tokens);
}

StatusOr<TurnReply> Harness::Continue(const statepb::Session& session,
                                      const std::vector<ToolResultEvent>& results,
                                      const std::function<bool(const std::string&)>& on_text,
                                      int32_t max_tokens) {
  return Step(session, ToolEvents(results), on_text, max_tokens);
}

StatusOr<TurnReply> Harness::Step(const statepb::Session& session,
                                  const std::vector<statepb::Event>& input,
                                  const std::function<bool(const std::string&)>& on_text,
                                  int32_t max_tokens) {
  max_tokens = max_tokens > 0 && (options_.max_tokens <= 0 || max_tokens < options_.max_tokens)
                   ? max_tokens
                   : options_.max_tokens;
  TurnReply reply;
  statepb::AppendEventsRequest append;
  append.set_session_id(session.id());
  append.set_expected_next_seq(session.next_seq());
  for (const statepb::Event& e : input) *append.add_events() = e;
  AGENTRY_ASSIGN_OR_RETURN(const statepb::AppendEventsResponse appended,
                           state_->AppendEvents(append));
  reply.user_seq = appended.seqs(0);
  const int64_t through_seq = appended.seqs(appended.seqs_size() - 1);

  // With tools, what streams is the answer's text; a call is reported as a call (its text is
  // still the reply's, in the transcript and in TurnReply::text).
  runtime::AnswerText answer_text(on_text);
  const std::function<bool(const std::string&)> stream =
      options_.tools.empty() ? on_text : [&answer_text](const std::string& text) {
        return answer_text.Feed(text);
      };

  StatusOr<GenerateResult> result = UnavailableError("not generated");
  bool hot = false;
  std::string fresh_handle;  // a daemon session opened just now, empty
  if (KvThroughSeq(session) == reply.user_seq - 1 && reply.user_seq > 1) {
    AGENTRY_ASSIGN_OR_RETURN(const nodepb::OpenSessionResponse open,
                             node_->OpenSession(OpenRequest(session)));
    if (!open.existed()) fresh_handle = open.session();
    if (open.existed()) {
      hot = true;
      nodepb::GenerateRequest generate = GenerateRequestFor(open.session(), max_tokens);
      for (const statepb::Event& e : input) {
        nodepb::Message* m = generate.add_messages();
        m->set_role(e.kind());
        m->set_content(e.content());
      }
      result = node_->Generate(generate, stream);
      // A context that filled up is rebuilt, shortened, from the transcript.
      if (!result.ok() && result.status().code() == StatusCode::kOutOfRange) hot = false;
    }
  }
  if (!hot && reply.user_seq > 1) {
    if (std::optional<StatusOr<GenerateResult>> restored =
            Restore(session, through_seq, max_tokens, stream, &reply)) {
      result = *std::move(restored);
      hot = true;
      fresh_handle.clear();  // the restore went into it
    }
  }
  if (!hot)
    result = Rebuild(session, through_seq, std::move(fresh_handle), max_tokens, stream, &reply);
  AGENTRY_RETURN_IF_ERROR(result.status());
  if (!options_.tools.empty()) (void)answer_text.Finish();

  statepb::AppendEventsRequest answer;
  answer.set_session_id(session.id());
  statepb::Event* out = answer.add_events();
  out->set_kind("assistant");
  out->set_content(result->text);
  nlohmann::json event_meta{{"finish_reason", nodepb::FinishReason_Name(result->finish_reason)}};
  if (!options_.tools.empty() && result->finish_reason == nodepb::FINISH_REASON_STOP) {
    // A complete call, written under the daemon's constraint (or, from a daemon without it,
    // one that still parses: the toolbox checks its arguments again).
    if (StatusOr<runtime::ToolCall> call = runtime::ParseToolCall(result->text); call.ok()) {
      reply.tool_call = std::move(*call);
      reply.tool_call_id = NewCallId();
      out->set_name(reply.tool_call->name);
      out->set_tool_call_id(reply.tool_call_id);
      event_meta["tool_call"] = true;
    }
  }
  out->set_metadata_json(event_meta.dump());
  AGENTRY_ASSIGN_OR_RETURN(const statepb::AppendEventsResponse stored,
                           state_->AppendEvents(answer));
  reply.reply_seq = stored.seqs(0);
  reply.text = result->text;
  reply.finish_reason = result->finish_reason;
  reply.prompt_tokens = result->usage.prompt_tokens();
  reply.cached_tokens = result->usage.cached_tokens();
  reply.generated_tokens = result->usage.generated_tokens();

  // Bookkeeping after the reply is durable: a failure here costs a rebuild next turn, never
  // a message.
  statepb::UpdateSessionRequest update;
  update.set_id(session.id());
  nlohmann::json meta = Metadata(session);
  meta["kv_through_seq"] = reply.reply_seq;
  update.set_metadata_json(meta.dump());
  (void)state_->UpdateSession(update);
  statepb::AddUsageRequest usage;
  usage.set_session_id(session.id());
  (*usage.mutable_counters())["prompt_tokens"] = reply.prompt_tokens;
  (*usage.mutable_counters())["completion_tokens"] = reply.generated_tokens;
  (*usage.mutable_counters())["turns"] = 1;
  (void)state_->AddUsage(usage);
  return reply;
}

}  // namespace agentry::harness
