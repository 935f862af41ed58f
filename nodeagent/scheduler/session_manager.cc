// nodeagent/scheduler/session_manager.cc — see session_manager.h.
#include "nodeagent/scheduler/session_manager.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/file.h"
#include "common/unicode/unicode.h"
#include "nodeagent/constrain/json_schema.h"
#include "nodeagent/constrain/reply_constraint.h"
#include "nodeagent/scheduler/session_snapshot.h"

namespace agentry::scheduler {

using Clock = std::chrono::steady_clock;

struct SessionManager::DeviceSlot {
  devices::Device device;
  uint64_t capacity = 0;
  uint64_t used = 0;  // resident sessions' KV
  int sessions = 0;   // pinned here, resident or not
  // The context an evicted or closed session gave up, kept so that the next one of the same
  // model and shape (a restore, typically, right after the eviction that made its room) reuses
  // its KV buffer instead of faulting in fresh pages: 8 MB took 25 ms more that way on this
  // project's VM. One per device, outside the budget, so a device holds at most its budget
  // plus one session's KV.
  std::shared_ptr<const ServedModel> spare_model;
  std::unique_ptr<engine::Context> spare;
};

struct SessionManager::Session {
  std::string handle, agent, session_id, on_behalf_of;
  std::shared_ptr<const ServedModel> model;
  DeviceSlot* slot = nullptr;
  engine::SamplerParams sampling;
  int64_t n_ctx = 0;
  uint64_t kv_bytes = 0;                     // what the context allocates
  std::unique_ptr<engine::Context> context;  // null while evicted
  std::string spilled_kv;                    // evicted, without a spill directory
  std::string spill_path;                    // evicted, to this file
  uint64_t spilled_bytes = 0;
  bool raw_tokens = false;
  std::vector<engine::ChatMessage> transcript;
  std::vector<int32_t> tokens;  // what the KV holds
  // Raw-token sessions: the reply's last token (or its end-of-generation token), generated but
  // not evaluated; the next turn evaluates it before its own tokens.
  std::vector<int32_t> pending;
  std::atomic<int64_t> kv_positions{0};  // tokens.size(), for ListSessions while generating
  // Chat sessions: the text those tokens stand for (rendered prompts and the pieces of the
  // replies), and where each token ends in it; -1 inside a prompt, whose tokens end together.
  std::string kv_text;
  std::vector<int64_t> text_end;
  int64_t exact_prefix = 0;  // positions computed in whole aligned chunks from 0
  bool generating = false;
  std::atomic<bool> cancel{false};
  Clock::time_point last_used = Clock::now();
};

// Families named after vLLM's where one exists (prompt_tokens_total, generation_tokens_total,
// time_to_first_token_seconds, inter_token_latency_seconds, kv_cache_usage_ratio,
// prefix_cache_queries/hits), under agentry_nodeagent_, so existing dashboards map.
struct SessionManager::Metrics {
  explicit Metrics(metrics::Registry* r)
      : prompt_tokens(r->AddCounter("agentry_nodeagent_prompt_tokens_total",
                                    "Prompt tokens of Generate calls (rendered input).",
                                    {"model"})),
        generation_tokens(r->AddCounter("agentry_nodeagent_generation_tokens_total",
                                        "Tokens generated.", {"model"})),
        ttft(r->AddHistogram("agentry_nodeagent_time_to_first_token_seconds",
                             "Time from a Generate call to its first generated token.", {"model"},
                             {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
        itl(r->AddHistogram("agentry_nodeagent_inter_token_latency_seconds",
                            "Time between consecutive generated tokens of one call.", {"model"},
                            {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1})),
        sessions(r->AddGauge("agentry_nodeagent_sessions", "Open sessions by state.",
                             {"device", "state"})),
        kv_used(r->AddGauge("agentry_nodeagent_kv_cache_used_bytes",
                            "KV cache bytes of resident sessions.", {"device"})),
        kv_capacity(r->AddGauge("agentry_nodeagent_kv_cache_capacity_bytes", "KV cache budget.",
                                {"device"})),
        kv_usage(r->AddGauge("agentry_nodeagent_kv_cache_usage_ratio",
                             "KV cache bytes used over the budget (0 to 1).", {"device"})),
        evictions(r->AddCounter("agentry_nodeagent_evictions_total",
                                "Idle sessions whose KV was spilled to make room.", {"device"})),
        restores(r->AddCounter("agentry_nodeagent_restores_total",
                               "Evicted sessions restored for their next turn.", {"device"})),
        prefix_queries(r->AddCounter(
            "agentry_nodeagent_prefix_cache_queries_total",
            "Prompt tokens of sessions' first turns, looked up in the prefix cache.", {"model"})),
        prefix_hits(r->AddCounter("agentry_nodeagent_prefix_cache_hits_total",
                                  "Of those, tokens whose KV was copied instead of computed.",
                                  {"model"})),
        device_info(r->AddGauge("agentry_nodeagent_device_info",
                                "1 per device; the labels say what it is and what serves it.",
                                {"device", "kind", "model", "backend"})) {}

  metrics::Family<metrics::Counter>& prompt_tokens;
  metrics::Family<metrics::Counter>& generation_tokens;
  metrics::Family<metrics::Histogram>& ttft;
  metrics::Family<metrics::Histogram>& itl;
  metrics::Family<metrics::Gauge>& sessions;
  metrics::Family<metrics::Gauge>& kv_used;
  metrics::Family<metrics::Gauge>& kv_capacity;
  metrics::Family<metrics::Gauge>& kv_usage;
  metrics::Family<metrics::Counter>& evictions;
  metrics::Family<metrics::Counter>& restores;
  metrics::Family<metrics::Counter>& prefix_queries;
  metrics::Family<metrics::Counter>& prefix_hits;
  metrics::Family<metrics::Gauge>& device_info;
};

namespace {

// The length of the longest prefix of `s` that does not end inside a UTF-8 sequence that
// further bytes could still complete.
size_t WholeUtf8Prefix(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    const auto c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    // A byte that starts no sequence (length 0) will never complete: nothing to wait for.
    return unicode::Utf8LengthFromLead(c) <= back ? n : n - back;
  }
  return n;
}

// `bytes` as well-formed UTF-8: what a model generates is bytes (byte tokens can split a
// character, or make no character at all); each byte that is not part of a well-formed
// sequence becomes U+FFFD, as llama.cpp's server does.
std::string ValidUtf8(std::string_view bytes) {
  std::string out;
  for (size_t at = 0; at < bytes.size();)
    unicode::AppendUtf8(unicode::DecodeUtf8Lossy(bytes, &at), &out);
  return out;
}

// How many bytes at the end of `text` could begin one of the stop strings.
size_t StopOverlap(std::string_view text, const std::vector<std::string>& stop) {
  size_t keep = 0;
  for (const std::string& s : stop) {
    for (size_t k = std::min(s.size() - 1, text.size()); k > keep; --k) {
      if (text.substr(text.size() - k) == std::string_view{s}.substr(0, k)) {
        keep = k;
        break;
      }
    }
  }
  return keep;
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) return InternalError(tmp + ": cannot write the evicted session's KV");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return InternalError(path + ": " + ec.message());
  return OkStatus();
}

const char* StateName(bool generating, bool resident) {
  return generating ? "generating" : resident ? "idle" : "evicted";
}

}  // namespace

engine::SamplerParams SamplingOverride::Apply(engine::SamplerParams base) const {
  if (temperature.has_value()) base.temperature = *temperature;
  if (top_k.has_value()) base.top_k = *top_k;
  if (top_p.has_value()) base.top_p = *top_p;
  if (min_p.has_value()) base.min_p = *min_p;
  if (repeat_penalty.has_value()) base.repeat_penalty = *repeat_penalty;
  if (seed.has_value()) base.seed = *seed;
  return base;
}

SessionManager::SessionManager(ModelRegistry* models, std::vector<devices::Device> devices,
                               SessionManagerOptions options, metrics::Registry* metrics)
    : models_(models),
      options_(std::move(options)),
      pool_(std::max(1, options_.threads)),
      batcher_(&pool_,
               {.max_prefill_tokens = options_.prefill_chunk, .max_wait = options_.batch_wait},
               metrics) {
  if (metrics != nullptr) metrics_ = std::make_unique<Metrics>(metrics);
  for (devices::Device& d : devices) {
    auto slot = std::make_unique<DeviceSlot>();
    slot->device = std::move(d);
    slot->capacity = options_.kv_capacity_bytes;
    if (metrics_ != nullptr) {
      metrics_->device_info
          .WithLabels({slot->device.id, std::string(devices::DeviceKindName(slot->device.kind)),
                       slot->device.model, slot->device.backend})
          .Set(1);
    }
    UpdateDeviceGauges(*slot);
    slots_.push_back(std::move(slot));
  }
}

SessionManager::~SessionManager() {
  StopAccepting();
  Drain(Clock::now());
  for (auto& [handle, s] : sessions_) {
    if (!s->spill_path.empty()) std::filesystem::remove(s->spill_path);
  }
}

void SessionManager::UpdateDeviceGauges(const DeviceSlot& slot) {
  if (metrics_ == nullptr) return;
  const std::string& id = slot.device.id;
  metrics_->kv_used.WithLabels({id}).Set(static_cast<double>(slot.used));
  metrics_->kv_capacity.WithLabels({id}).Set(static_cast<double>(slot.capacity));
  metrics_->kv_usage.WithLabels({id}).Set(
      slot.capacity > 0 ? static_cast<double>(slot.used) / static_cast<double>(slot.capacity) : 0);
  std::map<std::string_view, int> counts = {{"idle", 0}, {"generating", 0}, {"evicted", 0}};
  for (const auto& [h, s] : sessions_) {
    if (s->slot == &slot) ++counts[StateName(s->generating, s->context != nullptr)];
  }
  for (const auto& [state, n] : counts) {
    metrics_->sessions.WithLabels({id, std::string(state)}).Set(n);
  }
}

std::shared_ptr<SessionManager::Session> SessionManager::Find(const std::string& handle) const {
  auto it = sessions_.find(handle);
  return it == sessions_.end() ? nullptr : it->second;
}

StatusOr<SessionManager::DeviceSlot*> SessionManager::Place(const OpenSessionParams& params,
                                                            uint64_t bytes) {
  std::vector<DeviceSlot*> candidates;
  for (auto& slot : slots_) {
    if (!params.device_id.empty()
            ? slot->device.id == params.device_id
            : !params.preferred_kind.has_value() || slot->device.kind == *params.preferred_kind) {
      candidates.push_back(slot.get());
    }
  }
  if (candidates.empty()) {
    std::string have;
    for (auto& slot : slots_) have += (have.empty() ? "" : ", ") + slot->device.id;
    return NotFoundError(
        (params.device_id.empty()
             ? "no device of kind " + std::string(devices::DeviceKindName(*params.preferred_kind))
             : "no device " + params.device_id) +
        " on this node (devices: " + have + ")");
  }
  // Most free KV memory, then fewest sessions.
  std::stable_sort(candidates.begin(), candidates.end(), [](DeviceSlot* a, DeviceSlot* b) {
    const int64_t fa = static_cast<int64_t>(a->capacity - std::min(a->capacity, a->used));
    const int64_t fb = static_cast<int64_t>(b->capacity - std::min(b->capacity, b->used));
    return fa != fb ? fa > fb : a->sessions < b->sessions;
  });
  DeviceSlot* slot = candidates.front();
  AGENTRY_RETURN_IF_ERROR(MakeRoom(slot, bytes, nullptr));
  return slot;
}

Status SessionManager::MakeRoom(DeviceSlot* slot, uint64_t bytes, const Session* keep) {
  if (bytes > slot->capacity) {
    return ResourceExhaustedError("a session's KV cache (" + std::to_string(bytes) +
                                  " bytes) exceeds device " + slot->device.id + "'s KV budget (" +
                                  std::to_string(slot->capacity) +
                                  " bytes); lower the context length or raise --kv-memory-mib");
  }
  while (slot->used + bytes > slot->capacity) {
    Session* victim = nullptr;
    for (auto& [h, s] : sessions_) {
      if (s->slot != slot || s.get() == keep || s->generating || s->context == nullptr) continue;
      if (victim == nullptr || s->last_used < victim->last_used) victim = s.get();
    }
    if (victim == nullptr) {
      return ResourceExhaustedError("device " + slot->device.id + ": KV budget of " +
                                    std::to_string(slot->capacity) +
                                    " bytes is held by sessions that are generating");
    }
    AGENTRY_RETURN_IF_ERROR(Evict(victim));
  }
  return OkStatus();
}

Status SessionManager::Evict(Session* s) {
  std::string kv = s->context->kv_cache().Serialize();
  s->spilled_bytes = kv.size();
  if (!options_.spill_dir.empty()) {
    const std::string path = options_.spill_dir + "/" + s->handle + ".agkv";
    AGENTRY_RETURN_IF_ERROR(WriteFileAtomically(path, kv));
    s->spill_path = path;
  } else {
    s->spilled_kv = std::move(kv);
  }
  ReleaseContext(s);
  s->slot->used -= s->kv_bytes;
  if (metrics_ != nullptr) metrics_->evictions.WithLabels({s->slot->device.id}).Increment();
  log_.Info("evicted an idle session to make room",
            {{"session", s->handle},
             {"agent", s->agent},
             {"session_id", s->session_id},
             {"device", s->slot->device.id},
             {"kv_bytes", static_cast<int64_t>(s->spilled_bytes)},
             {"to", s->spill_path.empty() ? std::string("memory") : s->spill_path}});
  UpdateDeviceGauges(*s->slot);
  return OkStatus();
}

Status SessionManager::MakeResident(Session* s, bool* restored) {
  *restored = false;
  if (s->context != nullptr) return OkStatus();
  AGENTRY_RETURN_IF_ERROR(MakeRoom(s->slot, s->kv_bytes, s));
  std::unique_ptr<engine::Context> context = NewContext(*s);
  std::string bytes;
  if (!s->spill_path.empty()) {
    AGENTRY_ASSIGN_OR_RETURN(bytes, ReadFileToString(s->spill_path));
  } else {
    bytes = std::move(s->spilled_kv);
  }
  if (Status st = context->kv_cache().Restore(bytes); !st.ok()) {
    s->spilled_kv = std::move(bytes);  // keep what we have; the error names what is wrong
    return st.WithPrefix("session " + s->handle + ": restoring its evicted KV");
  }
  if (!s->spill_path.empty()) std::filesystem::remove(s->spill_path);
  s->spill_path.clear();
  s->spilled_kv.clear();
  s->context = std::move(context);
  s->slot->used += s->kv_bytes;
  *restored = true;
  if (metrics_ != nullptr) metrics_->restores.WithLabels({s->slot->device.id}).Increment();
  UpdateDeviceGauges(*s->slot);
  return OkStatus();
}

int64_t SessionManager::ContextLength(const ServedModel& model) const {
  return options_.context_length > 0 ? options_.context_length : model.model->params().n_ctx_train;
}

void SessionManager::ReleaseContext(Session* s) {
  s->slot->spare_model = s->model;
  s->slot->spare = std::move(s->context);
}

std::unique_ptr<engine::Context> SessionManager::NewContext(const Session& s) {
  DeviceSlot& slot = *s.slot;
  if (slot.spare != nullptr && slot.spare_model == s.model &&
      slot.spare->kv_cache().n_ctx() == s.n_ctx &&
      slot.spare->kv_cache().type() == options_.cache_type) {
    std::unique_ptr<engine::Context> context = std::move(slot.spare);
    slot.spare_model.reset();
    context->kv_cache().Truncate(0);
    return context;
  }
  return std::make_unique<engine::Context>(*s.model->model, s.n_ctx, &pool_, options_.cache_type);
}

StatusOr<SessionPlacement> SessionManager::Open(const OpenSessionParams& params) {
  if (params.agent.empty()) return InvalidArgumentError("agent: empty");
  if (params.session_id.empty()) return InvalidArgumentError("session_id: empty");
  AGENTRY_RETURN_IF_ERROR(engine::ValidateSamplerParams(params.sampling));
  AGENTRY_ASSIGN_OR_RETURN(std::shared_ptr<const ServedModel> model, models_->Get(params.model));
  AGENTRY_RETURN_IF_ERROR(engine::KvCache::CheckType(model->model->params(), options_.cache_type));
  const int64_t n_ctx = ContextLength(*model);
  const uint64_t kv_bytes =
      engine::KvCache(model->model->params(), n_ctx, options_.cache_type).bytes();

  std::lock_guard<std::mutex> lock(mu_);
  if (!accepting_) return UnavailableError("the node daemon is shutting down");
  for (auto& [h, s] : sessions_) {
    if (s->agent != params.agent || s->session_id != params.session_id) continue;
    if (s->model->name != params.model) {
      return FailedPreconditionError("session " + params.agent + "/" + params.session_id +
                                     " is open with model " + s->model->name + ", not " +
                                     params.model);
    }
    return SessionPlacement{s->handle, s->slot->device, s->n_ctx, true,
                            static_cast<int64_t>(s->tokens.size())};
  }
  AGENTRY_ASSIGN_OR_RETURN(DeviceSlot * slot, Place(params, kv_bytes));
  auto s = std::make_shared<Session>();
  s->handle = "s" + std::to_string(next_handle_++);
  s->agent = params.agent;
  s->session_id = params.session_id;
  s->on_behalf_of = params.on_behalf_of;
  s->model = model;
  s->slot = slot;
  s->sampling = params.sampling;
  s->n_ctx = n_ctx;
  s->kv_bytes = kv_bytes;
  s->context = NewContext(*s);
  slot->used += kv_bytes;
  slot->sessions++;
  sessions_[s->handle] = s;
  UpdateDeviceGauges(*slot);
  log_.Info("opened a session", {{"session", s->handle},
                                 {"agent", s->agent},
                                 {"session_id", s->session_id},
                                 {"on_behalf_of", s->on_behalf_of},
                                 {"device", slot->device.id},
                                 {"backend", slot->device.backend},
                                 {"model", model->name}});
  return SessionPlacement{s->handle, slot->device, n_ctx, false, 0};
}

int64_t SessionManager::ShareIdlePrefix(Session* s, const std::vector<int32_t>& prompt) {
  const int64_t chunk = options_.prefill_chunk;
  // Keep one token to evaluate, so the logits after the prompt are computed.
  const auto limit = static_cast<int64_t>(prompt.size()) - 1;
  const Session* best = nullptr;
  int64_t best_len = 0;
  for (auto& [h, o] : sessions_) {
    if (o.get() == s || o->agent != s->agent || o->model != s->model || o->generating ||
        o->context == nullptr) {
      continue;
    }
    const int64_t bound =
        std::min({o->exact_prefix, limit, static_cast<int64_t>(o->tokens.size())});
    int64_t common = 0;
    while (common < bound && o->tokens[common] == prompt[common]) ++common;
    const int64_t whole = common / chunk * chunk;
    if (whole > best_len) {
      best = o.get();
      best_len = whole;
    }
  }
  if (best == nullptr) return 0;
  if (!s->context->kv_cache().CopyPrefixFrom(best->context->kv_cache(), best_len).ok()) return 0;
  s->tokens.assign(prompt.begin(), prompt.begin() + best_len);
  s->kv_positions = best_len;
  s->exact_prefix = best_len;
  return best_len;
}

Status SessionManager::Prefill(Session* s, const std::vector<int32_t>& prompt, int64_t from,
                               std::vector<float>* logits) {
  const int64_t chunk = options_.prefill_chunk;
  const auto end = static_cast<int64_t>(prompt.size());
  for (int64_t pos = from; pos < end;) {
    if (s->cancel.load()) return CancelledError("cancelled during prefill");
    const int64_t chunk_end = std::min(end, (pos / chunk + 1) * chunk);
    const std::vector<int32_t> piece(prompt.begin() + pos, prompt.begin() + chunk_end);
    AGENTRY_RETURN_IF_ERROR(batcher_.Eval(s->context.get(), piece, logits));
    if (pos == s->exact_prefix && pos % chunk == 0 && chunk_end - pos == chunk) {
      s->exact_prefix = chunk_end;
    }
    s->tokens.insert(s->tokens.end(), piece.begin(), piece.end());
    s->kv_positions = static_cast<int64_t>(s->tokens.size());
    pos = chunk_end;
  }
  return OkStatus();
}

StatusOr<GenerationResult> SessionManager::Generate(const GenerateParams& params,
                                                    const DeltaSink& sink) {
  const auto start = Clock::now();
  if (!params.messages.empty() && !params.tokens.empty()) {
    return InvalidArgumentError("messages and tokens: give one or the other");
  }
  if (params.max_tokens < 0) return InvalidArgumentError("max_tokens: negative");
  for (const std::string& stop : params.stop) {
    if (stop.empty()) return InvalidArgumentError("stop: an empty string");
  }

  {
    const engine::SamplerParams sampling = params.sampling.Apply({});
    AGENTRY_RETURN_IF_ERROR(engine::ValidateSamplerParams(sampling).WithPrefix("sampling"));
  }
  constrain::ReplyConstraint constraint;
  if (!params.json_schema.empty()) {
    if (params.tool_calls.has_value()) {
      return InvalidArgumentError("json_schema and tool_calls: give one or the other");
    }
    const nlohmann::json parsed = nlohmann::json::parse(params.json_schema, nullptr, false);
    if (parsed.is_discarded()) return InvalidArgumentError("json_schema: not valid JSON");
    AGENTRY_ASSIGN_OR_RETURN(constrain::Grammar schema,
                             constrain::CompileJsonSchema(parsed, "json_schema"));
    constraint = constrain::ReplyConstraint::Whole(schema);
  } else if (params.tool_calls.has_value()) {
    const ToolCallFormat& format = *params.tool_calls;
    if (format.open.empty()) return InvalidArgumentError("tool_calls.open: must not be empty");
    StatusOr<constrain::Grammar> call = tool_call_grammars_.Get(format.tools, format.close);
    if (!call.ok()) return InvalidArgumentError("tool_calls." + call.status().message());
    constraint = constrain::ReplyConstraint::ToolCall(format.open, *call);
  }
  std::shared_ptr<Session> s;
  std::vector<int32_t> prompt;
  std::vector<int64_t> text_end;  // chat sessions: where the prompt's tokens end in kv_text
  std::string kv_text;
  GenerationResult result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_) return UnavailableError("the node daemon is shutting down");
    s = Find(params.handle);
    if (s == nullptr) return NotFoundError("session " + params.handle + ": not open");
    if (s->generating) {
      return FailedPreconditionError("session " + params.handle + ": already generating");
    }
    const ServedModel& model = *s->model;
    for (int32_t t : params.tokens) {
      if (t < 0 || t >= model.tokenizer.n_vocab()) {
        return InvalidArgumentError("tokens: id " + std::to_string(t) +
                                    " is outside the vocabulary of " +
                                    std::to_string(model.tokenizer.n_vocab()));
      }
    }
    std::vector<engine::ChatMessage> transcript = s->transcript;
    int64_t common = 0;  // tokens of the KV kept
    if (!params.messages.empty()) {
      if (s->raw_tokens && !s->tokens.empty()) {
        return FailedPreconditionError("session " + params.handle +
                                       " takes raw tokens (its first turn did); send tokens");
      }
      if (!model.chat_format.has_value()) {
        return FailedPreconditionError("model " + model.name +
                                       " has no chat template; send tokens, not messages");
      }
      for (const engine::ChatMessage& m : params.messages) {
        if (m.role.empty()) return InvalidArgumentError("messages: a message without a role");
        transcript.push_back(m);
      }
      // The whole conversation rendered; the KV keeps the tokens whose text it still begins
      // with (the replies' own tokens, not a re-tokenization of them), and only the text
      // after them is tokenized and evaluated.
      const engine::ChatPrompt text =
          engine::ApplyChatTemplate(*model.chat_format, transcript, /*add_assistant_prompt=*/true);
      size_t same = 0;
      while (same < std::min(text.text.size(), s->kv_text.size()) &&
             text.text[same] == s->kv_text[same]) {
        ++same;
      }
      size_t from = 0;
      for (int64_t i = 0; i < static_cast<int64_t>(s->text_end.size()); ++i) {
        if (s->text_end[i] < 0) continue;
        if (static_cast<size_t>(s->text_end[i]) > same) break;
        common = i + 1;
        from = static_cast<size_t>(s->text_end[i]);
      }
      std::vector<engine::TextSpan> literal;
      for (const engine::TextSpan& span : text.content) {
        const size_t end = span.offset + span.length;
        if (end <= from) continue;
        const size_t begin = std::max(span.offset, from);
        literal.push_back({begin - from, end - begin});
      }
      const std::vector<int32_t> added = model.tokenizer.Encode(
          std::string_view{text.text}.substr(from),
          common == 0 && model.tokenizer.add_bos_default(), /*parse_special=*/true, literal);
      if (added.empty()) return InvalidArgumentError("messages: nothing to evaluate");
      prompt.assign(s->tokens.begin(), s->tokens.begin() + common);
      prompt.insert(prompt.end(), added.begin(), added.end());
      text_end.assign(s->text_end.begin(), s->text_end.begin() + common);
      text_end.resize(prompt.size(), -1);
      text_end.back() = static_cast<int64_t>(text.text.size());
      kv_text = text.text;
    } else {
      if (params.tokens.empty()) return InvalidArgumentError("messages or tokens: both empty");
      if (!s->transcript.empty()) {
        return FailedPreconditionError("session " + params.handle +
                                       " takes chat messages (its first turn did); send messages");
      }
      common = static_cast<int64_t>(s->tokens.size());
      prompt = s->tokens;
      prompt.insert(prompt.end(), s->pending.begin(), s->pending.end());
      prompt.insert(prompt.end(), params.tokens.begin(), params.tokens.end());
    }
    if (static_cast<int64_t>(prompt.size()) >= s->n_ctx) {
      return OutOfRangeError("session " + params.handle + ": the conversation (" +
                             std::to_string(prompt.size()) +
                             " tokens) does not fit its context of " + std::to_string(s->n_ctx));
    }
    if (static_cast<int64_t>(prompt.size()) - common > options_.max_new_input_tokens) {
      return InvalidArgumentError("the new input (" + std::to_string(prompt.size() - common) +
                                  " tokens) exceeds the limit of " +
                                  std::to_string(options_.max_new_input_tokens));
    }
    AGENTRY_RETURN_IF_ERROR(MakeResident(s.get(), &result.usage.restored));
    s->context->kv_cache().Truncate(common);
    s->tokens.resize(common);
    s->kv_positions = common;
    s->exact_prefix = std::min(s->exact_prefix, common);
    int64_t shared = 0;
    if (common == 0) {
      shared = ShareIdlePrefix(s.get(), prompt);
      if (metrics_ != nullptr) {
        metrics_->prefix_queries.WithLabels({model.name})
            .Increment(static_cast<double>(prompt.size()));
        metrics_->prefix_hits.WithLabels({model.name}).Increment(static_cast<double>(shared));
      }
    }
    if (!params.messages.empty()) {
      s->transcript = std::move(transcript);
      s->kv_text = std::move(kv_text);
      s->text_end.resize(common);  // the prompt's are added once it is evaluated
    }
    s->raw_tokens = params.messages.empty();
    s->pending.clear();  // now part of `prompt`
    s->generating = true;
    s->cancel = false;
    ++generating_;
    UpdateDeviceGauges(*s->slot);
    result.usage.prompt_tokens = static_cast<int64_t>(prompt.size()) - common - shared;
    result.usage.cached_tokens = common + shared;
  }

  // From here the session is ours alone (generating); the lock is taken again to finish.
  const ServedModel& model = *s->model;
  const bool chat = !params.messages.empty();
  std::string reply;
  std::vector<int32_t> generated;
  const Status status = [&]() -> Status {
    const StepBatcher::Member member(&batcher_);  // the steps wait for this session's tokens
    std::vector<float> logits;
    AGENTRY_RETURN_IF_ERROR(
        Prefill(s.get(), prompt, static_cast<int64_t>(s->tokens.size()), &logits));
    if (chat) s->text_end = text_end;
    if (metrics_ != nullptr) {
      metrics_->prompt_tokens.WithLabels({model.name})
          .Increment(static_cast<double>(result.usage.prompt_tokens));
    }
    AGENTRY_ASSIGN_OR_RETURN(engine::Sampler sampler,
                             engine::Sampler::Create(params.sampling.Apply(s->sampling)));
    for (int32_t t : s->tokens) sampler.Accept(t);
    // Under a constraint in force, the sampler draws only tokens whose bytes its grammar can
    // take (or the end of the turn, once the value or call is whole).
    sampler.SetMask(
        [&](std::vector<uint8_t>* allowed) { constraint.Mask(model.Masker(), allowed); });
    const int64_t room = s->n_ctx - static_cast<int64_t>(s->tokens.size());
    const int64_t limit = params.max_tokens > 0 ? std::min<int64_t>(params.max_tokens, room) : room;
    // A generated token goes into the KV (and, for chat, its piece into kv_text).
    const auto evaluate = [&](int32_t token) -> Status {
      AGENTRY_RETURN_IF_ERROR(batcher_.Eval(s->context.get(), {&token, 1}, &logits));
      s->tokens.push_back(token);
      s->kv_positions = static_cast<int64_t>(s->tokens.size());
      if (chat) {
        s->kv_text += model.tokenizer.Piece(token);
        s->text_end.push_back(static_cast<int64_t>(s->kv_text.size()));
      }
      return OkStatus();
    };
    size_t sent = 0;  // bytes of `reply` sent
    auto last = Clock::now();
    result.finish = FinishReason::kLength;
    const auto send = [&](size_t upto, std::vector<int32_t> tokens) {
      GenerationDelta d;
      d.tokens = std::move(tokens);
      d.text = ValidUtf8(std::string_view{reply}.substr(sent, upto - sent));
      sent = upto;
      return sink(d);
    };
    for (int64_t i = 0; i < limit; ++i) {
      if (s->cancel.load()) return CancelledError("cancelled");
      AGENTRY_ASSIGN_OR_RETURN(int32_t next,
                               sampler.Sample(logits.data(), model.tokenizer.n_vocab()));
      const auto now = Clock::now();
      if (metrics_ != nullptr) {
        const double since = std::chrono::duration<double>(now - (i == 0 ? start : last)).count();
        (i == 0 ? metrics_->ttft : metrics_->itl).WithLabels({model.name}).Observe(since);
        metrics_->generation_tokens.WithLabels({model.name}).Increment();
      }
      last = now;
      if (model.tokenizer.IsEndOfGeneration(next)) {
        if (!chat) s->pending = {next};
        result.finish = FinishReason::kStop;
        break;
      }
      constrain::ReplyConstraint::Take took = constraint.TakePiece(model.tokenizer.Piece(next));
      if (took == constrain::ReplyConstraint::Take::kResample) {
        AGENTRY_ASSIGN_OR_RETURN(next, sampler.Sample(logits.data(), model.tokenizer.n_vocab()));
        took = constraint.TakePiece(model.tokenizer.Piece(next));
      }
      if (took != constrain::ReplyConstraint::Take::kTaken) {
        return InternalError("the token mask let through token " + std::to_string(next));
      }
      sampler.Accept(next);
      generated.push_back(next);
      ++result.usage.generated_tokens;
      reply += model.tokenizer.Piece(next);
      bool stopped = false;
      for (const std::string& stop : params.stop) {
        const size_t at = reply.find(stop, sent > stop.size() ? sent - stop.size() : 0);
        if (at != std::string::npos) {
          reply.resize(at);
          stopped = true;
        }
      }
      // A whole tool call (or value) that nothing may follow ends the reply here, a step
      // before the end-of-turn token the mask would force.
      if (!stopped && constraint.Finished()) {
        result.tool_call = constraint.InToolCall();
        AGENTRY_RETURN_IF_ERROR(evaluate(next));
        if (!send(reply.size(), {next})) return CancelledError("the client went away");
        result.finish = FinishReason::kStop;
        break;
      }
      if (stopped) {
        // The KV keeps the tokens through the stop string; the transcript ends before it,
        // and the next turn's render cuts the KV back to where they agree.
        AGENTRY_RETURN_IF_ERROR(evaluate(next));
        result.finish = FinishReason::kStop;
        break;
      }
      const size_t safe = WholeUtf8Prefix(
          std::string_view{reply}.substr(0, reply.size() - StopOverlap(reply, params.stop)));
      if (!send(std::max(safe, sent), {next})) return CancelledError("the client went away");
      if (i + 1 == limit) {
        if (!chat) s->pending = {next};
        break;
      }
      AGENTRY_RETURN_IF_ERROR(evaluate(next));
    }
    if (sent < reply.size() && !send(reply.size(), {}))
      return CancelledError("the client went away");
    return OkStatus();
  }();

  std::lock_guard<std::mutex> lock(mu_);
  if (chat) {
    // A prefill cut short leaves tokens whose text is not known to end anywhere: -1.
    s->text_end.resize(s->tokens.size(), -1);
    if (status.ok() || status.code() == StatusCode::kCancelled) {
      s->transcript.push_back({"assistant", reply});
    }
  }
  s->generating = false;
  s->last_used = Clock::now();
  --generating_;
  UpdateDeviceGauges(*s->slot);
  idle_.notify_all();
  if (!status.ok() && status.code() != StatusCode::kCancelled) return status;
  if (!status.ok()) result.finish = FinishReason::kCancelled;
  result.text = ValidUtf8(reply);
  result.usage.kv_tokens = static_cast<int64_t>(s->tokens.size());
  return result;
}

StatusOr<bool> SessionManager::Cancel(const std::string& handle) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Session> s = Find(handle);
  if (s == nullptr) return NotFoundError("session " + handle + ": not open");
  if (!s->generating) return false;
  s->cancel = true;
  return true;
}

Status SessionManager::Close(const std::string& handle) {
  std::unique_lock<std::mutex> lock(mu_);
  std::shared_ptr<Session> s = Find(handle);
  if (s == nullptr) return NotFoundError("session " + handle + ": not open");
  s->cancel = true;
  idle_.wait(lock, [&] { return !s->generating; });
  if (sessions_.erase(handle) == 0) return OkStatus();  // closed meanwhile by another call
  if (s->context != nullptr) {
    s->slot->used -= s->kv_bytes;
    ReleaseContext(s.get());
  }
  if (!s->spill_path.empty()) std::filesystem::remove(s->spill_path);
  s->slot->sessions--;
  UpdateDeviceGauges(*s->slot);
  log_.Info("closed a session",
            {{"session", s->handle}, {"agent", s->agent}, {"session_id", s->session_id}});
  return OkStatus();
}

StatusOr<std::string> SessionManager::Snapshot(const std::string& handle) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Session> s = Find(handle);
  if (s == nullptr) return NotFoundError("session " + handle + ": not open");
  if (s->generating) return FailedPreconditionError("session " + handle + ": generating");
  SessionState state;
  state.model = s->model->name;
  state.raw_tokens = s->raw_tokens;
  state.transcript = s->transcript;
  state.tokens = s->tokens;
  state.pending = s->pending;
  state.kv_text = s->kv_text;
  state.text_end = s->text_end;
  state.exact_prefix = s->exact_prefix;
  if (s->context != nullptr) {
    state.kv = s->context->kv_cache().Serialize();
  } else if (!s->spill_path.empty()) {
    AGENTRY_ASSIGN_OR_RETURN(state.kv, ReadFileToString(s->spill_path));
  } else {
    state.kv = s->spilled_kv;
  }
  return EncodeSessionState(state);
}

StatusOr<SessionPlacement> SessionManager::Restore(const OpenSessionParams& params,
                                                   std::string_view bytes) {
  AGENTRY_ASSIGN_OR_RETURN(SessionState state, DecodeSessionState(bytes));
  if (state.model != params.model) {
    return InvalidArgumentError("snapshot: made with model " + state.model + ", not " +
                                params.model);
  }
  // The snapshot's KV is read into a scratch cache before any session is opened or changed,
  // so a bad snapshot leaves no trace.
  AGENTRY_ASSIGN_OR_RETURN(std::shared_ptr<const ServedModel> model, models_->Get(params.model));
  engine::KvCache scratch(model->model->params(), ContextLength(*model), options_.cache_type);
  if (Status st = scratch.Restore(state.kv); !st.ok()) return st.WithPrefix("snapshot");
  if (scratch.size() != static_cast<int64_t>(state.tokens.size())) {
    return InvalidArgumentError("snapshot: the KV holds " + std::to_string(scratch.size()) +
                                " positions but the token list " +
                                std::to_string(state.tokens.size()));
  }
  AGENTRY_ASSIGN_OR_RETURN(SessionPlacement placement, Open(params));
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Session> s = Find(placement.handle);
  if (s == nullptr) return NotFoundError("session " + placement.handle + ": closed meanwhile");
  if (s->generating) return FailedPreconditionError("session " + s->handle + ": generating");
  bool restored = false;
  AGENTRY_RETURN_IF_ERROR(MakeResident(s.get(), &restored));
  AGENTRY_RETURN_IF_ERROR(s->context->kv_cache().CopyPrefixFrom(scratch, scratch.size()));
  s->raw_tokens = state.raw_tokens;
  s->transcript = std::move(state.transcript);
  s->tokens = std::move(state.tokens);
  s->kv_positions = static_cast<int64_t>(s->tokens.size());
  s->pending = std::move(state.pending);
  s->kv_text = std::move(state.kv_text);
  s->text_end = std::move(state.text_end);
  s->exact_prefix = state.exact_prefix;
  s->last_used = Clock::now();
  placement.kv_tokens = s->kv_positions;
  return placement;
}

std::vector<SessionInfo> SessionManager::ListSessions(const std::string& agent_filter) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SessionInfo> out;
  const auto now = Clock::now();
  for (const auto& [h, s] : sessions_) {
    if (!agent_filter.empty() && s->agent != agent_filter) continue;
    SessionInfo info;
    info.handle = s->handle;
    info.agent = s->agent;
    info.session_id = s->session_id;
    info.model = s->model->name;
    info.device_id = s->slot->device.id;
    info.kv_tokens = s->kv_positions.load();
    info.kv_bytes = s->context != nullptr ? s->kv_bytes : s->spilled_bytes;
    info.state = StateName(s->generating, s->context != nullptr);
    info.idle_seconds =
        s->generating ? 0 : std::chrono::duration<double>(now - s->last_used).count();
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<DeviceUsage> SessionManager::ListDevices() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DeviceUsage> out;
  for (const auto& slot : slots_) {
    out.push_back({slot->device, slot->capacity, slot->used, slot->sessions});
  }
  return out;
}

void SessionManager::StopAccepting() {
  std::lock_guard<std::mutex> lock(mu_);
  accepting_ = false;
}

int SessionManager::Drain(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (idle_.wait_until(lock, deadline, [&] { return generating_ == 0; })) return 0;
  int cancelled = 0;
  for (auto& [h, s] : sessions_) {
    if (s->generating) {
      s->cancel = true;
      ++cancelled;
    }
  }
  idle_.wait(lock, [&] { return generating_ == 0; });
  return cancelled;
}

}  // namespace agentry::scheduler
