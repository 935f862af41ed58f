// train/trainer.cc — see trainer.h.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>

#include "train/batcher.h"
#include "train/bpe/bpe_trainer.h"
#include "train/corpus/triage_corpus.h"
#include "train/export.h"
#include "train/loss_plot.h"
#include "train/transformer.h"

#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/gguf_writer.h"
#include "nodeagent/engine/thread_pool.h"
#include "nodeagent/engine/tokenizer.h"

namespace agentry::train {
namespace {

const std::vector<std::string>& SpecialTokens() {
  static const std::vector<std::string> kSpecial = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  return kSpecial;
}

StatusOr<BpeVocab> LearnTokenizer(const TrainOptions& o) {
  const std::vector<std::string> texts =
      RenderedTexts(o.seed, Split::kTrain, 0, static_cast<uint64_t>(o.tokenizer_conversations));
  BpeOptions bpe;
  bpe.vocab_size = o.vocab_size;
  bpe.special_tokens = SpecialTokens();
  StatusOr<BpeVocab> vocab = TrainBpe(texts, bpe);
  if (!vocab.ok()) return vocab.status().WithPrefix("tokenizer: ");
  return vocab;
}

std::string VocabGguf(const BpeVocab& vocab) {
  engine::GgufWriter w;
  w.SetString("general.architecture", "llama");
  WriteTokenizerMetadata(vocab, kChatMlTemplate, &w);
  return w.Serialize();
}

// The vocabulary back from its GGUF form (tokens, types, merges, pre).
StatusOr<BpeVocab> VocabFromGguf(const engine::GgufFile& file) {
  StatusOr<const std::vector<std::string_view>*> tokens =
      file.GetStringArray("tokenizer.ggml.tokens");
  StatusOr<std::vector<int64_t>> types = file.GetIntArray("tokenizer.ggml.token_type");
  StatusOr<const std::vector<std::string_view>*> merges =
      file.GetStringArray("tokenizer.ggml.merges");
  StatusOr<std::string_view> pre = file.GetString("tokenizer.ggml.pre");
  if (!tokens.ok() || !types.ok() || !merges.ok() || !pre.ok()) {
    return DataLossError("checkpoint tokenizer lacks tokens, types, merges or pre");
  }
  BpeVocab v;
  for (std::string_view t : **tokens) v.tokens.emplace_back(t);
  for (int64_t t : *types) v.types.push_back(static_cast<engine::TokenType>(t));
  for (std::string_view m : **merges) v.merges.emplace_back(m);
  v.pre = std::string(*pre);
  return v;
}

}  // namespace

nlohmann::json TrainOptions::ToJson() const {
  return {
      {"model",
       {{"dim", model.dim},
        {"layers", model.layers},
        {"heads", model.heads},
        {"kv_heads", model.kv_heads},
        {"ff", model.ff},
        {"ctx", model.ctx},
        {"rope_base", model.rope_base},
        {"rms_eps", model.rms_eps}}},
      {"optimizer",
       {{"lr", optimizer.lr},
        {"min_lr_ratio", optimizer.min_lr_ratio},
        {"warmup_steps", optimizer.warmup_steps},
        {"beta1", optimizer.beta1},
        {"beta2", optimizer.beta2},
        {"eps", optimizer.eps},
        {"weight_decay", optimizer.weight_decay},
        {"clip_norm", optimizer.clip_norm}}},
      {"seed", seed},
      {"vocab_size", vocab_size},
      {"tokenizer_conversations", tokenizer_conversations},
      {"corpus_size", corpus_size},
      {"corpus_version", kCorpusVersion},
      {"batch_tokens", batch_tokens},
      {"steps", steps},
      {"eval_tokens", eval_tokens},
  };
}

Status TrainOptions::Validate() const {
  if (out_dir.empty()) return InvalidArgumentError("out_dir: an output directory is required");
  if (steps <= 0) return InvalidArgumentError("steps: must be positive");
  if (corpus_size == 0 || tokenizer_conversations <= 0) {
    return InvalidArgumentError(
        "corpus: the corpus is empty (corpus_size and "
        "tokenizer_conversations must be positive)");
  }
  if (batch_tokens < 64) return InvalidArgumentError("batch_tokens: must be at least 64");
  if (threads < 1) return InvalidArgumentError("threads: must be at least 1");
  if (!(optimizer.lr > 0.0f) || !std::isfinite(optimizer.lr)) {
    return InvalidArgumentError("lr: must be a positive number");
  }
  if (checkpoint_every <= 0 || eval_every <= 0) {
    return InvalidArgumentError("checkpoint_every and eval_every: must be positive");
  }
  ModelConfig m = model;
  m.vocab = vocab_size;
  return m.Validate();
}

StatusOr<TrainResult> Train(const TrainOptions& options,
                            const std::function<void(const TrainProgress&)>& progress) {
  if (Status s = options.Validate(); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::create_directories(options.out_dir, ec);
  if (ec)
    return InvalidArgumentError("out_dir: cannot create " + options.out_dir + ": " + ec.message());
  const std::string checkpoint_path = options.out_dir + "/checkpoint.bin";
  const nlohmann::json run = options.ToJson();

  // Resume, or start: the tokenizer first, since the model's vocabulary is its size.
  Checkpoint ck;
  bool resumed = false;
  if (StatusOr<Checkpoint> loaded = LoadCheckpoint(checkpoint_path); loaded.ok()) {
    if (loaded->options != run) {
      return FailedPreconditionError(
          checkpoint_path + " belongs to a run with other options (" + loaded->options.dump() +
          "); use the same options to resume it, or another output directory");
    }
    ck = std::move(*loaded);
    resumed = true;
  } else if (loaded.status().code() != StatusCode::kNotFound) {
    return loaded.status();
  } else {
    StatusOr<BpeVocab> vocab = LearnTokenizer(options);
    if (!vocab.ok()) return vocab.status();
    ck.options = run;
    ck.vocab_gguf = VocabGguf(*vocab);
  }
  StatusOr<std::unique_ptr<engine::GgufFile>> vocab_file =
      engine::GgufFile::FromBuffer(ck.vocab_gguf, "tokenizer");
  if (!vocab_file.ok()) return vocab_file.status();
  StatusOr<engine::Tokenizer> tokenizer = engine::Tokenizer::FromGguf(**vocab_file);
  if (!tokenizer.ok()) return tokenizer.status();
  StatusOr<BpeVocab> vocab = VocabFromGguf(**vocab_file);
  if (!vocab.ok()) return vocab.status();

  ModelConfig config = options.model;
  config.vocab = tokenizer->n_vocab();
  if (Status s = config.Validate(); !s.ok()) return s;
  const ParameterLayout layout = ParameterLayout::For(config);
  OptimizerConfig opt_config = options.optimizer;
  opt_config.total_steps = options.steps;
  AdamW optimizer(layout, opt_config);
  if (resumed) {
    if (static_cast<int64_t>(ck.params.size()) != layout.total()) {
      return DataLossError(checkpoint_path + ": holds " + std::to_string(ck.params.size()) +
                           " parameters, the model has " + std::to_string(layout.total()));
    }
    optimizer.m() = ck.m;
    optimizer.v() = ck.v;
  } else {
    ck.params = InitialParameters(config, options.seed);
  }

  engine::ThreadPool pool(options.threads);
  Transformer model(config, &pool);
  Batcher batcher(*tokenizer, options.seed, Split::kTrain, options.corpus_size,
                  options.batch_tokens, config.ctx);
  Batcher eval_batcher(*tokenizer, options.seed, Split::kHeldOut, 1u << 30, options.eval_tokens,
                       config.ctx);
  uint64_t eval_cursor = 0;
  const Batch eval_batch = eval_batcher.Next(&eval_cursor);
  std::vector<float> grads(ck.params.size());

  // The step of the checkpoint on disk, or -1 before the first save of a new run.
  int64_t saved_step = resumed ? ck.step : -1;
  auto save = [&]() {
    ck.m = optimizer.m();
    ck.v = optimizer.v();
    Status s = SaveCheckpoint(checkpoint_path, ck);
    if (s.ok()) saved_step = ck.step;
    return s;
  };
  // Why a diverging run stopped, and what it leaves behind.
  auto diverged = [&](const std::string& what) {
    const std::string kept = saved_step < 0
                                 ? "no checkpoint was written yet"
                                 : "the last good checkpoint (step " + std::to_string(saved_step) +
                                       ") is kept in " + checkpoint_path;
    return FailedPreconditionError(what + " at step " + std::to_string(ck.step + 1) + "; " + kept +
                                   " — lower --lr and start a new output directory");
  };
  const auto start = std::chrono::steady_clock::now();
  const double seconds_before = ck.seconds;
  int64_t tokens_this_run = 0;
  const int64_t first_step = ck.step;
  TrainResult result;
  while (ck.step < options.steps) {
    if (options.stop != nullptr && options.stop->load()) {
      result.stopped = true;
      break;
    }
    const Batch batch = batcher.Next(&ck.cursor);
    const double loss = model.Step(batch, ck.params.data(), grads.data());
    if (!std::isfinite(loss)) return diverged("the loss became " + std::to_string(loss));
    const double norm = optimizer.Update(ck.step, ck.params.data(), grads.data());
    if (!std::isfinite(norm)) return diverged("the gradient became non-finite");
    tokens_this_run += batch.size();
    ++ck.step;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ck.seconds = seconds_before + elapsed;
    LossPoint point{ck.step, loss, -1.0, LearningRate(opt_config, ck.step - 1), ck.seconds};
    if (ck.step % options.eval_every == 0 || ck.step == options.steps) {
      point.eval_loss = model.Step(eval_batch, ck.params.data(), nullptr);
    }
    ck.history.push_back(point);
    if (ck.step % options.checkpoint_every == 0 || ck.step == options.steps) {
      if (Status s = save(); !s.ok()) return s;
    }
    if (progress) {
      TrainProgress p;
      p.step = ck.step;
      p.steps = options.steps;
      p.loss = loss;
      p.eval_loss = point.eval_loss;
      p.lr = point.lr;
      p.tokens_per_second = static_cast<double>(tokens_this_run) / std::max(elapsed, 1e-9);
      p.eta_seconds = elapsed / static_cast<double>(ck.step - first_step) *
                      static_cast<double>(options.steps - ck.step);
      p.resumed = resumed;
      progress(p);
    }
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.steps = ck.step;
  result.seconds = ck.seconds;
  result.tokens_per_second = static_cast<double>(tokens_this_run) / std::max(elapsed, 1e-9);
  result.parameters = layout.total();
  result.vocab = config.vocab;
  if (!ck.history.empty()) {
    result.loss = ck.history.back().loss;
    for (const LossPoint& p : ck.history) {
      if (p.eval_loss >= 0) result.eval_loss = p.eval_loss;
    }
  }
  if (result.stopped) {
    if (Status s = save(); !s.ok()) return s;
    return result;
  }
  result.f32_path = options.out_dir + "/model-f32.gguf";
  result.q8_0_path = options.out_dir + "/model-q8_0.gguf";
  for (const auto& [type, path] : {std::pair{engine::GgmlType::kF32, result.f32_path},
                                   std::pair{engine::GgmlType::kQ8_0, result.q8_0_path}}) {
    StatusOr<std::string> bytes = ExportGguf(config, ck.params, *vocab, type, "agentry-triage");
    if (!bytes.ok()) return bytes.status();
    if (Status s = engine::WriteFileAtomically(path, *bytes); !s.ok()) return s;
  }
  if (Status s = engine::WriteFileAtomically(options.out_dir + "/loss.csv", LossCsv(ck.history));
      !s.ok())
    return s;
  if (Status s = engine::WriteFileAtomically(
          options.out_dir + "/loss.svg", LossSvg(ck.history, "agentry train: triage agent model"));
      !s.ok()) {
    return s;
  }
  return result;
}

}  // namespace agentry::train
