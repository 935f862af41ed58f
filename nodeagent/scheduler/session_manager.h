// nodeagent/scheduler/session_manager.h — the node daemon's sessions: pinning, hot KV between
// turns, LRU eviction and transparent restore, the prefix cache, snapshots.
//
//   SessionManager sessions(&models, inventory.devices, options, &registry);
//   StatusOr<SessionPlacement> s = sessions.Open({.agent = "ns/triage", .session_id = "c1",
//                                                 .model = "agent"});
//   sessions.Generate({.handle = s->handle, .messages = {{"user", "hi"}}},
//                     [](const GenerationDelta& d) { print(d.text); return true; });
//
// Pinning. A session is bound to one device for its whole life: the one its request names, else
// among the devices of the preferred kind (any kind without one) the one with the most free KV
// memory, then the fewest sessions. Every device is served by the CPU backend today
// (nodeagent/devices), so the choice decides accounting and placement, not where the
// arithmetic runs; one copy of each model's weights serves all sessions (ModelRegistry).
//
// Hot KV. A session keeps its context (KV cache) between turns and the tokens it holds. A
// turn in chat messages re-renders the session's whole transcript with the model's chat
// template and prefills only what follows the longest prefix the cache already holds (the
// generated reply's end-of-turn marker included), so turn N + 1 costs only its new tokens.
//
// Eviction. Each device has a KV budget (the contexts' allocated bytes). A session that
// needs room on a full device evicts the least recently used idle sessions there: their KV
// is serialized (KvCache::Serialize, checksummed) to the spill directory, or kept in memory
// without one, and the context freed (kept as the device's one spare, whose KV buffer the next
// context of that shape reuses); the next turn restores it first. The restored cache holds the
// same bytes, so the continuation is the same tokens as without the eviction.
//
// Prefill in aligned chunks. Prompts are evaluated in chunks that end at multiples of
// prefill_chunk positions, so how a position's keys and values are computed depends only on
// the tokens up to the end of its chunk, never on how the conversation was split into turns.
// That makes the prefix cache exact: a new session copies the whole chunks it shares with an
// idle session of the same agent and model (instructions and tool schemas come first) and
// computes the same bits as it would from scratch.
//
// Concurrency and continuous batching. Any number of Generate calls run at once, on different
// sessions (one at a time per session: FailedPrecondition otherwise). Their forward passes go
// through the backend's StepBatcher (step_batcher.h): every step is one batched pass over the
// next token of each session that is decoding and at most a chunk of prefill, so weights are
// read once per step for all sessions, a new session's prompt joins between two steps of the
// others, and a long prefill delays their next token by one chunk at most. Batching never
// changes a session's tokens: each gets the bits it would get alone.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log/log.h"
#include "common/metrics/registry.h"
#include "common/status.h"
#include "nodeagent/constrain/tool_call.h"
#include "nodeagent/devices/discovery.h"
#include "nodeagent/engine/context.h"
#include "nodeagent/engine/kv_cache.h"
#include "nodeagent/engine/sampler.h"
#include "nodeagent/engine/thread_pool.h"
#include "nodeagent/scheduler/model_registry.h"
#include "nodeagent/scheduler/step_batcher.h"

namespace agentry::scheduler {

struct SessionManagerOptions {
  int64_t context_length = 0;                      // per session; 0: the model's training context
  uint64_t kv_capacity_bytes = uint64_t{1} << 30;  // per device
  engine::KvCacheType cache_type = engine::KvCacheType::kF16;
  int threads = 1;                       // the CPU backend's thread pool
  int64_t prefill_chunk = 128;           // positions per prefill chunk (see above)
  std::string spill_dir;                 // where evicted sessions' KV goes; "" keeps it in memory
  int64_t max_new_input_tokens = 32768;  // one Generate's input, after rendering
  // How long a batch step waits for a decoding session that has not sent its next token yet.
  std::chrono::microseconds batch_wait{1000};
};

struct OpenSessionParams {
  std::string agent{};       // "namespace/name"
  std::string session_id{};  // unique per agent
  std::string model{};
  std::optional<devices::DeviceKind> preferred_kind{};
  std::string device_id{};  // "" or an exact device
  engine::SamplerParams sampling{.temperature = 0.0f};
  std::string on_behalf_of{};
};

struct SessionPlacement {
  std::string handle;
  devices::Device device;
  int64_t context_length = 0;
  bool existed = false;
  int64_t kv_tokens = 0;  // positions the session's KV holds
};

// Sampling fields a request sets; the rest keep the session's (or the engine's) values.
struct SamplingOverride {
  std::optional<float> temperature{}, top_p{}, min_p{}, repeat_penalty{};
  std::optional<int32_t> top_k{};
  std::optional<uint64_t> seed{};

  engine::SamplerParams Apply(engine::SamplerParams base) const;
};

// The tool-call format a reply may use: the tags around the call and the tools it may name.
struct ToolCallFormat {
  std::string open;   // "<tool_call>"
  std::string close;  // "</tool_call>"
  std::vector<constrain::ToolSchema> tools;
};

struct GenerateParams {
  std::string handle{};
  std::vector<engine::ChatMessage> messages{};  // appended to the transcript
  std::vector<int32_t> tokens{};                // or raw tokens appended after the KV
  SamplingOverride sampling{};
  std::vector<std::string> stop{};
  int32_t max_tokens = 0;  // 0: until end of turn or the context's end
  // When set, the generated text is one JSON value that satisfies this JSON schema
  // (nodeagent/constrain/json_schema.h says which keywords): every token is sampled under the
  // schema's token mask, and the end of the turn is allowed only once the value is whole. A
  // reply cut short by max_tokens or a stop string may end inside the value.
  std::string json_schema{};
  // When set (and json_schema is not), a reply that opens with `tool_call_open` is a tool
  // call: from the end of that tag on, every token is sampled under the call's grammar
  // (nodeagent/constrain/tool_call.h) and the reply ends when the call is whole. A reply
  // that opens otherwise is plain text, unconstrained.
  std::optional<ToolCallFormat> tool_calls{};
};

enum class FinishReason { kStop, kLength, kCancelled };

struct GenerationUsage {
  int64_t prompt_tokens = 0;  // input tokens this call evaluated
  int64_t cached_tokens = 0;  // tokens it reused: kept in the KV or copied by the prefix cache
  int64_t generated_tokens = 0;
  int64_t kv_tokens = 0;
  bool restored = false;
};

struct GenerationDelta {
  std::vector<int32_t> tokens;
  // Well-formed UTF-8: a character split across tokens waits for its last byte; bytes that
  // make no character become U+FFFD.
  std::string text;
};

struct GenerationResult {
  FinishReason finish = FinishReason::kStop;
  GenerationUsage usage;
  std::string text;        // the whole reply, as the deltas' text
  bool tool_call = false;  // the reply is a whole tool call, written under its grammar
};

// Returns false when the receiver is gone; the generation then ends as cancelled.
using DeltaSink = std::function<bool(const GenerationDelta&)>;

struct SessionInfo {
  std::string handle, agent, session_id, model, device_id;
  int64_t kv_tokens = 0;
  uint64_t kv_bytes = 0;  // allocated while resident; the snapshot's size while evicted
  std::string state;      // "idle", "generating", "evicted"
  double idle_seconds = 0;
};

struct DeviceUsage {
  devices::Device device;
  uint64_t kv_capacity_bytes = 0;
  uint64_t kv_used_bytes = 0;
  int sessions = 0;
};

class SessionManager {
 public:
  // `metrics` may be null (tests that do not look at them).
  SessionManager(ModelRegistry* models, std::vector<devices::Device> devices,
                 SessionManagerOptions options, metrics::Registry* metrics);
  ~SessionManager();

  StatusOr<SessionPlacement> Open(const OpenSessionParams& params);
  StatusOr<GenerationResult> Generate(const GenerateParams& params, const DeltaSink& sink);
  // True when a Generate was running (it ends as cancelled); NotFound for an unknown handle.
  StatusOr<bool> Cancel(const std::string& handle);
  Status Close(const std::string& handle);
  // The session's state as bytes (see session_snapshot.h); FailedPrecondition while it
  // generates.
  StatusOr<std::string> Snapshot(const std::string& handle);
  // Opens (or reopens) the session `params` names and replaces its state with a snapshot's;
  // InvalidArgument/DataLoss for bytes that are not a snapshot of this model, the session
  // unchanged.
  StatusOr<SessionPlacement> Restore(const OpenSessionParams& params, std::string_view bytes);

  std::vector<SessionInfo> ListSessions(const std::string& agent_filter) const;
  std::vector<DeviceUsage> ListDevices() const;
  // The tool-call grammars Generate compiled and remembers (GenerateParams::tool_calls).
  const constrain::ToolCallGrammarCache& tool_call_grammars() const { return tool_call_grammars_; }

  // Shutdown: new Open, Generate and Restore calls fail Unavailable from now on.
  void StopAccepting();
  // Waits until no Generate runs or the deadline passes, then cancels those still running and
  // waits for them to end. Returns how many were cancelled.
  int Drain(std::chrono::steady_clock::time_point deadline);

 private:
  struct Session;
  struct DeviceSlot;
  struct Metrics;

  std::shared_ptr<Session> Find(const std::string& handle) const;                // under mu_
  StatusOr<DeviceSlot*> Place(const OpenSessionParams& params, uint64_t bytes);  // under mu_
  // Each session's context length for `model` (the option, else the model's own), and an
  // empty context of that length.
  int64_t ContextLength(const ServedModel& model) const;
  std::unique_ptr<engine::Context> NewContext(const Session& s);  // under mu_
  // Frees s's context, keeping it as its device's spare (DeviceSlot::spare).
  void ReleaseContext(Session* s);  // under mu_
  // Frees room for `bytes` more on `slot` by evicting idle sessions, least recently used
  // first; ResourceExhausted when even that cannot.
  Status MakeRoom(DeviceSlot* slot, uint64_t bytes, const Session* keep);  // under mu_
  Status Evict(Session* s);                                                // under mu_
  Status MakeResident(Session* s, bool* restored);                         // under mu_
  // Copies the longest run of whole chunks `prompt` shares with an idle session of the same
  // agent and model into s's empty cache; returns the positions copied.
  int64_t ShareIdlePrefix(Session* s, const std::vector<int32_t>& prompt);  // under mu_
  // Evaluates prompt[from, end) after the cache's first `from` positions, in aligned chunks.
  Status Prefill(Session* s, const std::vector<int32_t>& prompt, int64_t from,
                 std::vector<float>* logits);
  void UpdateDeviceGauges(const DeviceSlot& slot);  // under mu_

  ModelRegistry* models_;
  const SessionManagerOptions options_;
  log::Logger log_{"nodeagent"};
  std::unique_ptr<Metrics> metrics_;

  constrain::ToolCallGrammarCache tool_call_grammars_;
  mutable std::mutex mu_;  // sessions_, slots_, every session's bookkeeping
  std::map<std::string, std::shared_ptr<Session>> sessions_;  // by handle
  std::vector<std::unique_ptr<DeviceSlot>> slots_;
  bool accepting_ = true;
  std::condition_variable idle_;  // a Generate ended
  int generating_ = 0;
  uint64_t next_handle_ = 1;

  // The CPU backend: one pool, its forward passes in batched steps.
  engine::ThreadPool pool_;
  StepBatcher batcher_;
};

}  // namespace agentry::scheduler
