#include "cli/run.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <vector>

#include "common/unicode/unicode.h"
#include "kernels/cpu/kernels.h"
#include "nodeagent/engine/chat_template.h"
#include "nodeagent/engine/context.h"
#include "nodeagent/engine/gguf_writer.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int32_t ThreadsOrDefault(int32_t threads) {
  if (threads > 0) return threads;
  const int64_t cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? static_cast<int32_t>(cores) : 1;
}

// Peak resident set and current private (anonymous) resident memory, in bytes, from
// /proc/self/status; -1 where the kernel does not say.
struct MemoryUse {
  int64_t peak_rss = -1;
  int64_t rss_anon = -1;
};

MemoryUse ReadMemoryUse() {
  MemoryUse m;
  std::ifstream in("/proc/self/status");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  // Lines look like "VmHWM:     12345 kB"; others are skipped whole.
  while (in >> key) {
    if (key == "VmHWM:" || key == "RssAnon:") {
      if (!(in >> kib >> unit)) break;
      (key == "VmHWM:" ? m.peak_rss : m.rss_anon) = kib * 1024;
    }
    in.ignore(1 << 16, '\n');
  }
  return m;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "agentry: %s\n", status.message().c_str());
  return 1;
}

// --cache-type, read before the model is loaded so a typo fails at once.
StatusOr<engine::KvCacheType> CacheType(const std::string& name) {
  StatusOr<engine::KvCacheType> type = engine::ParseKvCacheType(name);
  if (!type.ok()) return InvalidArgumentError("--cache-type: " + type.status().message());
  return type;
}

// Whether the model's heads suit the cache type (a Q8_0 cache needs heads of 32k values).
Status CheckCacheType(const engine::Model& model, engine::KvCacheType type) {
  Status s = engine::KvCache::CheckType(model.params(), type);
  if (!s.ok()) {
    return InvalidArgumentError(std::string("--cache-type ") + engine::KvCacheTypeName(type) +
                                ": " + s.message());
  }
  return s;
}

// Maps and checks the model, with a progress line: a large file takes a moment to map.
StatusOr<std::unique_ptr<engine::Model>> LoadModel(const std::string& path) {
  std::fprintf(stderr, "loading %s ...", path.c_str());
  std::fflush(stderr);
  const auto start = Clock::now();
  AGENTRY_ASSIGN_OR_RETURN(std::unique_ptr<engine::GgufFile> file, engine::GgufFile::Open(path));
  const double mib = static_cast<double>(file->file_size()) / (1 << 20);
  AGENTRY_ASSIGN_OR_RETURN(std::unique_ptr<engine::Model> model,
                           engine::Model::Load(std::move(file)));
  const engine::ModelParams& p = model->params();
  std::fprintf(stderr,
               "\rloaded %s: %s, %.1f MiB, %lld layers, n_embd %lld, vocab %lld, kernels %s "
               "(%.0f ms)\n",
               path.c_str(), p.arch.c_str(), mib, static_cast<long long>(p.n_layer),
               static_cast<long long>(p.n_embd), static_cast<long long>(p.n_vocab),
               kernels::Kernels().isa, Seconds(start) * 1000);
  return model;
}

// The prompt as the model should see it: with --chat, the user's text as one user turn (after
// an optional system message) in the model's chat format, ready for the assistant's reply.
StatusOr<engine::ChatPrompt> PromptText(const RunOptions& options, const engine::GgufFile& file) {
  if (!options.chat) {
    if (!options.chat_template.empty() || !options.system.empty()) {
      return InvalidArgumentError("--chat-template and --system need --chat");
    }
    return engine::ChatPrompt{options.prompt, {{0, options.prompt.size()}}};
  }
  std::string source = options.chat_template;
  if (source.empty()) {
    StatusOr<std::string_view> from_file = file.GetString("tokenizer.chat_template");
    if (!from_file.ok()) {
      return InvalidArgumentError(file.name() +
                                  ": no tokenizer.chat_template; name a format with "
                                  "--chat-template (chatml, llama3, llama2, zephyr, ...)");
    }
    source = std::string(*from_file);
  }
  AGENTRY_ASSIGN_OR_RETURN(engine::ChatFormat format, engine::DetectChatFormat(source));
  std::vector<engine::ChatMessage> messages;
  if (!options.system.empty()) messages.push_back({"system", options.system});
  messages.push_back({"user", options.prompt});
  return engine::ApplyChatTemplate(format, messages, /*add_assistant_prompt=*/true);
}

}  // namespace

int RunGenerate(const RunOptions& options) {
  if (options.n_predict < 0) return Fail(InvalidArgumentError("-n: must be zero or more"));
  if (options.ctx < 1) return Fail(InvalidArgumentError("-c: must be positive"));
  StatusOr<engine::Sampler> sampler = engine::Sampler::Create(options.sampler);
  if (!sampler.ok()) return Fail(sampler.status());
  StatusOr<engine::KvCacheType> cache_type = CacheType(options.cache_type);
  if (!cache_type.ok()) return Fail(cache_type.status());
  StatusOr<std::unique_ptr<engine::Model>> model = LoadModel(options.model);
  if (!model.ok()) return Fail(model.status());
  if (Status s = CheckCacheType(**model, *cache_type); !s.ok()) return Fail(s);
  StatusOr<engine::Tokenizer> tokenizer = engine::Tokenizer::FromGguf((*model)->file());
  if (!tokenizer.ok()) return Fail(tokenizer.status());

  // User text must be valid UTF-8. Only the chat template's own markers become special
  // tokens: the user's text is literal, so "<|im_end|>" typed by a user stays text.
  if (Status s = unicode::CheckUtf8(options.prompt); !s.ok()) return Fail(s.WithPrefix("-p"));
  if (Status s = unicode::CheckUtf8(options.system); !s.ok()) return Fail(s.WithPrefix("--system"));
  StatusOr<engine::ChatPrompt> text = PromptText(options, (*model)->file());
  if (!text.ok()) return Fail(text.status());
  const std::vector<int32_t> prompt = tokenizer->Encode(text->text, tokenizer->add_bos_default(),
                                                        /*parse_special=*/true, text->content);
  if (static_cast<int64_t>(prompt.size()) + options.n_predict > options.ctx) {
    return Fail(OutOfRangeError("the prompt (" + std::to_string(prompt.size()) + " tokens) and " +
                                std::to_string(options.n_predict) +
                                " new tokens do not fit in the context of " +
                                std::to_string(options.ctx) + " (raise -c)"));
  }
  engine::ThreadPool pool(ThreadsOrDefault(options.threads));
  engine::Context ctx(**model, options.ctx, &pool, *cache_type);
  std::vector<float> logits;
  const auto prefill_start = Clock::now();
  if (Status s = ctx.Eval(prompt, false, &logits); !s.ok()) return Fail(s);
  const double prefill_s = Seconds(prefill_start);
  for (int32_t t : prompt) sampler->Accept(t);

  std::fputs(text->text.c_str(), stdout);
  std::fflush(stdout);
  const int64_t n_vocab = (*model)->params().n_vocab;
  int generated = 0;
  const auto decode_start = Clock::now();
  while (generated < options.n_predict) {
    StatusOr<int32_t> next = sampler->Sample(logits.data(), n_vocab);
    if (!next.ok()) return Fail(next.status());
    if (tokenizer->IsEndOfGeneration(*next)) break;
    sampler->Accept(*next);
    std::fputs(tokenizer->Piece(*next).c_str(), stdout);
    std::fflush(stdout);
    ++generated;
    if (generated == options.n_predict) break;
    if (Status s = ctx.Eval({*next}, false, &logits); !s.ok()) return Fail(s);
  }
  const double decode_s = Seconds(decode_start);
  std::fputc('\n', stdout);
  std::fflush(stdout);  // the text ends before the timing line on stderr starts
  std::fprintf(
      stderr,
      "prompt %zu tokens in %.1f ms (%.1f t/s); generated %d tokens (%.1f t/s); %d threads\n",
      prompt.size(), prefill_s * 1000, prompt.size() / prefill_s, generated,
      generated > 0 ? generated / decode_s : 0.0, pool.size());
  return 0;
}

int RunBench(const BenchOptions& options) {
  if (options.n_prompt < 1 || options.n_gen < 1 || options.repetitions < 1) {
    return Fail(InvalidArgumentError("-p, -n and -r must be positive"));
  }
  StatusOr<engine::KvCacheType> cache_type = CacheType(options.cache_type);
  if (!cache_type.ok()) return Fail(cache_type.status());
  StatusOr<std::unique_ptr<engine::Model>> model = LoadModel(options.model);
  if (!model.ok()) return Fail(model.status());
  if (Status s = CheckCacheType(**model, *cache_type); !s.ok()) return Fail(s);
  engine::ThreadPool pool(ThreadsOrDefault(options.threads));
  const int64_t n_vocab = (*model)->params().n_vocab;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> prompt(options.n_prompt);
  for (int32_t& t : prompt) t = token(rng);

  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::vector<float> logits;
  // As llama-bench: a fresh KV cache for each run and one untimed warm-up run.
  std::vector<double> pp, tg;
  uint64_t kv_bytes = 0;
  int64_t max_anon = -1;
  for (int r = 0; r <= options.repetitions; ++r) {
    engine::Context ctx(**model, options.n_prompt, &pool, *cache_type);
    kv_bytes = std::max<uint64_t>(kv_bytes, ctx.kv_cache().bytes());
    const auto start = Clock::now();
    if (Status s = ctx.Eval(prompt, false, &logits); !s.ok()) return Fail(s);
    if (r > 0) pp.push_back(options.n_prompt / Seconds(start));
  }
  for (int r = 0; r <= options.repetitions; ++r) {
    engine::Context ctx(**model, options.n_gen, &pool, *cache_type);
    const auto start = Clock::now();
    for (int i = 0; i < options.n_gen; ++i) {
      if (Status s = ctx.Eval({prompt[i % prompt.size()]}, false, &logits); !s.ok()) return Fail(s);
    }
    if (r > 0) tg.push_back(options.n_gen / Seconds(start));
    // Sampled while the decode context is still alive: private memory is current, not peak.
    max_anon = std::max(max_anon, ReadMemoryUse().rss_anon);
  }
  std::printf("model %s | threads %d | kernels %s | KV cache %s\n", options.model.c_str(),
              pool.size(), kernels::Kernels().isa, engine::KvCacheTypeName(*cache_type));
  std::printf("pp%d: %.2f tokens/s (median of %d)\n", options.n_prompt, median(pp),
              options.repetitions);
  std::printf("tg%d: %.2f tokens/s (median of %d)\n", options.n_gen, median(tg),
              options.repetitions);
  // The promise: weights stay mapped (no private copy), so private memory is the KV cache
  // plus working buffers, and all resident memory at most file + KV + 64 MiB.
  MemoryUse mem = ReadMemoryUse();
  mem.rss_anon = std::max(mem.rss_anon, max_anon);
  const double mib = 1 << 20;
  const uint64_t slack = uint64_t{64} << 20;
  const uint64_t file = (*model)->file().file_size();
  std::printf(
      "memory: peak RSS %.1f MiB (bound file + KV + 64 MiB = %.1f MiB: %s); private %.1f "
      "MiB (bound KV + 64 MiB = %.1f MiB: %s)\n",
      mem.peak_rss / mib, (file + kv_bytes + slack) / mib,
      mem.peak_rss <= static_cast<int64_t>(file + kv_bytes + slack) ? "within" : "EXCEEDED",
      mem.rss_anon / mib, (kv_bytes + slack) / mib,
      mem.rss_anon <= static_cast<int64_t>(kv_bytes + slack) ? "within" : "EXCEEDED");
  return 0;
}

int RunMakeTestModel(const TestModelOptions& options) {
  engine::TestModelSpec spec = options.spec;
  static const std::pair<const char*, engine::GgmlType> kTypes[] = {
      {"f32", engine::GgmlType::kF32},   {"f16", engine::GgmlType::kF16},
      {"bf16", engine::GgmlType::kBF16}, {"q8_0", engine::GgmlType::kQ8_0},
      {"q4_0", engine::GgmlType::kQ4_0}, {"q4_1", engine::GgmlType::kQ4_1},
      {"q5_0", engine::GgmlType::kQ5_0}, {"q5_1", engine::GgmlType::kQ5_1}};
  const auto* chosen = std::find_if(std::begin(kTypes), std::end(kTypes),
                                    [&](const auto& t) { return options.type == t.first; });
  if (chosen == std::end(kTypes)) {
    return Fail(
        InvalidArgumentError("--type: want f32, f16, bf16, q8_0, q4_0, q4_1, q5_0 or q5_1, got \"" +
                             options.type + "\""));
  }
  spec.type = chosen->second;
  std::unique_ptr<engine::GgufFile> vocab;
  if (!options.vocab.empty()) {
    StatusOr<std::unique_ptr<engine::GgufFile>> v = engine::GgufFile::Open(options.vocab);
    if (!v.ok()) return Fail(v.status());
    vocab = std::move(v).value();
    spec.vocab = vocab.get();
  }
  StatusOr<std::string> bytes = engine::BuildTestModel(spec);
  if (!bytes.ok()) return Fail(bytes.status());
  if (Status s = engine::WriteFileAtomically(options.output, *bytes); !s.ok()) return Fail(s);
  std::fprintf(stderr, "wrote %s (%.1f MiB)\n", options.output.c_str(),
               static_cast<double>(bytes->size()) / (1 << 20));
  return 0;
}

}  // namespace agentry::cli
