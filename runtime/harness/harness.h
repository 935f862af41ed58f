// runtime/harness/harness.h — one agent's turn loop over the state sidecar and the node
// daemon.
//
//   Harness harness({.agent = "team-a/triage", .model = "triage", .system_prompt = prompt},
//                   &state, &node);
//   harness.OpenSession("s-1", "alice");
//   StatusOr<TurnReply> reply = harness.Turn("s-1", "Is staging down?", on_text);
//
// A turn:
//   1. the user message is appended to the transcript, durably, before anything else (a
//      second writer on the same session in the meantime fails the turn ABORTED);
//   2. the node daemon session is opened (or found). When its KV holds the transcript up to
//      this message (the session metadata's kv_through_seq says how far it does), only the
//      new message is sent: turn N+1 prefills only what is new. Otherwise (a daemon that
//      restarted or evicted and lost it, a runtime that died mid-turn) the session is
//      rebuilt from the transcript: system prompt, then every event;
//   3. the reply streams to `on_text` and, once complete, is appended durably; only then does
//      Turn return it. Usage (prompt and completion tokens) is added to the session's and
//      the day's counters.
// Snapshots: SaveSnapshots (the runtime calls it when it stops) keeps the daemon's KV of each
// active session in the state sidecar (session_snapshot.h). A turn whose daemon session lost
// the transcript (a daemon that restarted, another node after the pod moved) restores the
// newest snapshot taken under the same model and instructions and sends only the events after
// it; without a usable one it rebuilds from the transcript.
// Context window: when the rebuilt prompt does not fit the model's context, the oldest
// messages are dropped (the system prompt is always kept) and a system message takes their
// place saying how many were omitted; the turn's reply reports that count.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/harness/node_client.h"
#include "runtime/harness/state_client.h"
#include "runtime/prompt/agent_prompt.h"

namespace agentry::harness {

struct HarnessOptions {
  std::string agent;          // "namespace/name"
  std::string model;          // the model's name on the node daemon
  std::string system_prompt;  // instructions (and tools), first in every rebuilt prompt
  int32_t max_tokens = 256;   // per reply
  // The tools a reply may call: a reply that opens a tool call is decoded under their
  // schemas (the node daemon's tool-call constraint) and comes back parsed.
  std::vector<runtime::ToolDecl> tools{};
};

// A tool's result, to append to the transcript before the model's next step.
struct ToolResultEvent {
  std::string call_id;
  std::string name;
  std::string content;  // what the model reads (JSON)
  std::string metadata_json = "{}";
};

struct TurnReply {
  std::string text;
  int64_t user_seq = 0;   // the user message's sequence number in the transcript
  int64_t reply_seq = 0;  // the reply's
  nodepb::FinishReason finish_reason = nodepb::FINISH_REASON_UNSPECIFIED;
  int64_t prompt_tokens = 0;  // prefilled for this turn
  int64_t cached_tokens = 0;  // already in the daemon's KV (not recomputed)
  int64_t generated_tokens = 0;
  // The daemon session was rebuilt from the transcript (its KV lost the earlier turns); never
  // on a session's first turn, which has nothing earlier.
  bool rebuilt = false;
  bool restored = false;          // the daemon session was restored from a snapshot first
  bool budget_exhausted = false;  // set by the session API: cut short by a token budget
  int64_t omitted_messages = 0;   // dropped to fit the context window
  // The reply is a tool call: what it calls, and the id its result must carry.
  std::optional<runtime::ToolCall> tool_call;
  std::string tool_call_id;
  // Set by the session API's tool loop: the calls this turn ran, as the API reports them, and
  // why the loop stopped early ("" when the model answered; "tool_steps_exhausted";
  // "budget_exhausted" is budget_exhausted).
  std::vector<nlohmann::json> tool_steps;
  bool tool_steps_exhausted = false;
  // The turn paused for a person's approval of this call (null: it did not).
  nlohmann::json pending_approval;
};

class Harness {
 public:
  Harness(HarnessOptions options, StateClient* state, NodeClient* node);
  const HarnessOptions& options() const { return options_; }

  // Creates the session in the state sidecar (or returns it: idempotent for the same user).
  // `metadata_json` is a new session's first metadata ("" for none).
  StatusOr<statepb::Session> OpenSession(const std::string& id, const std::string& on_behalf_of,
                                         const std::string& metadata_json = "");
  // `on_text` gets the reply as it is generated; false from it cancels the generation (the
  // partial reply is still appended, with finish reason CANCELLED). With tools it gets the
  // answer's text only (runtime/prompt/answer_text.h): a reply that is a tool call is not
  // streamed, and while its text is held back `on_text("")` asks whether to go on.
  StatusOr<TurnReply> Turn(const std::string& session_id, const std::string& user_text,
                           const std::function<bool(const std::string&)>& on_text);
  // The same, for a session the caller has just read (its next_seq is where the user message
  // goes; a session that moved on since fails the turn ABORTED). `max_tokens` below the
  // options' caps this reply (a token budget's remainder); 0 keeps the options'.
  // `before`: tool results that go in the transcript ahead of the user message (a paused
  // call's result that the user's next message settled: an approval that timed out).
  StatusOr<TurnReply> Turn(const statepb::Session& session, const std::string& user_text,
                           const std::function<bool(const std::string&)>& on_text,
                           int32_t max_tokens = 0, const std::vector<ToolResultEvent>& before = {});

  // The next step of a turn whose reply called tools: `results` are appended to the
  // transcript (durably, first), then the model goes on from them.
  StatusOr<TurnReply> Continue(const statepb::Session& session,
                               const std::vector<ToolResultEvent>& results,
                               const std::function<bool(const std::string&)>& on_text,
                               int32_t max_tokens = 0);

  // Frees the session's KV on the node daemon (a closed session takes no more turns).
  Status ReleaseDaemonSession(const statepb::Session& session);

  // Snapshots into the state sidecar every active session whose daemon KV holds its whole
  // transcript; the number saved. A session that cannot be saved is skipped (it will be
  // rebuilt), not an error; only a failure to list the sessions is.
  StatusOr<int> SaveSnapshots();

 private:
  // Sends the transcript through `through_seq` to a daemon session with nothing in its KV:
  // `fresh_handle` when the caller just opened one, else one opened (or emptied) here.
  // Appends `input` to the transcript, then generates the model's reply to it.
  StatusOr<TurnReply> Step(const statepb::Session& session,
                           const std::vector<statepb::Event>& input,
                           const std::function<bool(const std::string&)>& on_text,
                           int32_t max_tokens);
  StatusOr<GenerateResult> Rebuild(const statepb::Session& session, int64_t through_seq,
                                   std::string fresh_handle, int32_t max_tokens,
                                   const std::function<bool(const std::string&)>& on_text,
                                   TurnReply* reply);
  // A daemon session that holds nothing: opened, or closed and opened again if it existed.
  StatusOr<std::string> OpenEmpty(const statepb::Session& session);
  // The session's snapshot restored into the daemon, then the events after it through
  // `through_seq` sent; nullopt when there is no usable snapshot (or the context is full).
  std::optional<StatusOr<GenerateResult>> Restore(
      const statepb::Session& session, int64_t through_seq, int32_t max_tokens,
      const std::function<bool(const std::string&)>& on_text, TurnReply* reply);
  Status SaveSnapshot(const statepb::Session& session);
  nodepb::OpenSessionRequest OpenRequest(const statepb::Session& session) const;
  nodepb::GenerateRequest GenerateRequestFor(const std::string& handle, int32_t max_tokens) const;

  HarnessOptions options_;
  StateClient* state_;
  NodeClient* node_;
};

// The transcript's events up to `through_seq` that a prompt is built from: all of them but
// the user messages of turns that failed, which have no assistant event after them before
// a later turn's input (`first_input_seq` is this turn's first; past the end for none). Such
// a message got an error, not a reply: its client sends it again or moves on, and the model
// should neither read it twice nor answer it late. It stays in the transcript.
std::vector<statepb::Event> PromptEvents(const std::vector<statepb::Event>& events,
                                         int64_t first_input_seq, int64_t through_seq);

}  // namespace agentry::harness
