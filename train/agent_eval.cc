// train/agent_eval.cc — see agent_eval.h.
#include "train/agent_eval.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "train/corpus/triage_corpus.h"

#include "nodeagent/constrain/matcher.h"
#include "nodeagent/constrain/token_mask.h"
#include "nodeagent/engine/chat_template.h"
#include "nodeagent/engine/context.h"
#include "nodeagent/engine/gguf.h"
#include "nodeagent/engine/model.h"
#include "nodeagent/engine/sampler.h"
#include "nodeagent/engine/thread_pool.h"
#include "nodeagent/engine/tokenizer.h"
#include "runtime/prompt/agent_prompt.h"
#include "runtime/prompt/tool_call_grammar.h"

namespace agentry::train {
namespace {

using runtime::ToolCallGrammar;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// One assistant message, generated greedily after `prompt`. Reuses the KV cache for the
// longest prefix the context already holds.
class Generator {
 public:
  Generator(const engine::Model& model, const engine::Tokenizer& tokenizer,
            const constrain::Grammar& tool_grammar, engine::ThreadPool* pool)
      : tokenizer_(tokenizer),
        tool_grammar_(tool_grammar),
        masker_(tokenizer),
        context_(model, model.params().n_ctx_train, pool) {}

  StatusOr<std::string> Generate(const std::vector<int32_t>& prompt, int32_t max_tokens,
                                 int64_t* n_generated) {
    size_t common = 0;
    while (common < prompt.size() && common < cached_.size() && prompt[common] == cached_[common]) {
      ++common;
    }
    // Keep at least one token to evaluate, so the logits are those after the whole prompt.
    if (common == prompt.size()) --common;
    context_.kv_cache().Truncate(static_cast<int64_t>(common));
    cached_.resize(common);
    std::vector<int32_t> rest(prompt.begin() + static_cast<int64_t>(common), prompt.end());
    std::vector<float> logits;
    if (Status s = context_.Eval(rest, false, &logits); !s.ok()) return s;
    cached_.insert(cached_.end(), rest.begin(), rest.end());

    StatusOr<engine::Sampler> sampler = engine::Sampler::Create({.temperature = 0.0f});
    if (!sampler.ok()) return sampler.status();
    std::string text;
    std::unique_ptr<constrain::Matcher> matcher;
    sampler->SetMask([&](std::vector<uint8_t>* allowed) {
      if (matcher != nullptr) masker_.Mask(*matcher, allowed);
    });
    for (int32_t i = 0; i < max_tokens; ++i) {
      StatusOr<int32_t> next = sampler->Sample(logits.data(), tokenizer_.n_vocab());
      if (!next.ok()) return next.status();
      if (tokenizer_.IsEndOfGeneration(*next)) break;
      ++*n_generated;
      const std::string piece = tokenizer_.Piece(*next);
      text += piece;
      if (matcher != nullptr) {
        if (!matcher->AdvanceAll(piece)) return InternalError("the mask let through " + piece);
        if (matcher->IsComplete() && !matcher->CanContinue()) break;
      } else if (text.starts_with(runtime::kToolCallOpen)) {
        // The model opened a tool call: from here on, decode under the tools' schemas.
        matcher = std::make_unique<constrain::Matcher>(tool_grammar_);
        const std::string_view after_open =
            std::string_view{text}.substr(runtime::kToolCallOpen.size());
        if (!matcher->AdvanceAll(after_open)) {
          break;  // the token that completed the tag already left the grammar
        }
      }
      if (Status s = context_.Eval({*next}, false, &logits); !s.ok()) return s;
      cached_.push_back(*next);
    }
    return text;
  }

 private:
  const engine::Tokenizer& tokenizer_;
  const constrain::Grammar& tool_grammar_;
  constrain::TokenMasker masker_;
  engine::Context context_;
  std::vector<int32_t> cached_;  // the tokens whose K and V the context holds
};

const char* KindName(CheckKind kind) {
  switch (kind) {
    case CheckKind::kToolCall:
      return "tool";
    case CheckKind::kKeyFact:
      return "key_fact";
    case CheckKind::kRecall:
      return "recall";
    case CheckKind::kNoTool:
      return "no_tool";
  }
  return "?";
}

}  // namespace

StatusOr<AgentEvalReport> EvaluateAgent(const AgentEvalOptions& options) {
  if (options.conversations <= 0) return InvalidArgumentError("conversations: must be positive");
  StatusOr<std::unique_ptr<engine::GgufFile>> file = engine::GgufFile::Open(options.model);
  if (!file.ok()) return file.status();
  StatusOr<engine::Tokenizer> tokenizer = engine::Tokenizer::FromGguf(**file);
  if (!tokenizer.ok()) return tokenizer.status();
  StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load(std::move(*file));
  if (!model.ok()) return model.status();
  const TriageAgent& agent = TriageAgentSpec();
  StatusOr<constrain::Grammar> grammar = ToolCallGrammar(agent.tools);
  if (!grammar.ok()) return grammar.status();
  engine::ThreadPool pool(options.threads);
  Generator generator(**model, *tokenizer, *grammar, &pool);

  AgentEvalReport report;
  const auto start = std::chrono::steady_clock::now();
  for (int32_t i = 0; i < options.conversations; ++i) {
    const Conversation conv =
        GenerateConversation(options.seed, Split::kHeldOut, static_cast<uint64_t>(i));
    for (const Check& check : conv.checks) {
      const std::vector<engine::ChatMessage> history(
          conv.messages.begin(), conv.messages.begin() + static_cast<int64_t>(check.message));
      const engine::ChatPrompt prompt =
          engine::ApplyChatTemplate(engine::ChatFormat::kChatMl, history, true);
      const std::vector<int32_t> tokens =
          tokenizer->Encode(prompt.text, false, true, prompt.content);
      if (static_cast<int64_t>(tokens.size()) + options.max_tokens >
          (*model)->params().n_ctx_train) {
        continue;  // does not fit the model's context; the corpus keeps conversations short
      }
      StatusOr<std::string> text =
          generator.Generate(tokens, options.max_tokens, &report.generated_tokens);
      if (!text.ok()) return text.status();
      AgentEvalCase c;
      c.kind = KindName(check.kind);
      c.before = history.back().role + ": " + history.back().content;
      c.generated = *text;
      StatusOr<runtime::ToolCall> call = runtime::ParseToolCall(*text);
      switch (check.kind) {
        case CheckKind::kToolCall: {
          c.expected = runtime::RenderToolCall(check.tool, check.arguments);
          const bool right_tool = call.ok() && call->name == check.tool;
          const bool right_args = right_tool && call->arguments == check.arguments;
          report.tool_choice.total++;
          report.arguments.total++;
          report.tool_choice.passed += right_tool ? 1 : 0;
          report.arguments.passed += right_args ? 1 : 0;
          c.passed = right_args;
          break;
        }
        case CheckKind::kKeyFact:
        case CheckKind::kRecall: {
          c.expected = "an answer stating \"" + check.fact + "\"";
          c.passed = !call.ok() && Lower(*text).find(Lower(check.fact)) != std::string::npos;
          Figure& f = check.kind == CheckKind::kKeyFact ? report.key_fact : report.recall;
          f.total++;
          f.passed += c.passed ? 1 : 0;
          break;
        }
        case CheckKind::kNoTool:
          c.expected = "a reply without a tool call";
          c.passed = call.status().code() == StatusCode::kNotFound;
          report.no_tool.total++;
          report.no_tool.passed += c.passed ? 1 : 0;
          break;
      }
      if (options.on_case) options.on_case(c);
    }
    ++report.conversations;
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

std::string FormatReport(const AgentEvalReport& r) {
  std::string out;
  auto line = [&](const char* name, const Figure& f, double target) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%-12s %6.1f %%  (%lld/%lld)%s\n", name, 100.0 * f.rate(),
                  static_cast<long long>(f.passed), static_cast<long long>(f.total),
                  target > 0 ? (f.rate() >= target ? "  target met" : "  BELOW TARGET") : "");
    out += buf;
  };
  char head[160];
  std::snprintf(head, sizeof(head),
                "held-out conversations: %lld, %lld tokens generated in %.1f s\n",
                static_cast<long long>(r.conversations), static_cast<long long>(r.generated_tokens),
                r.seconds);
  out += head;
  line("tool choice", r.tool_choice, 0.90);
  line("arguments", r.arguments, 0.85);
  line("key fact", r.key_fact, 0.80);
  line("recall", r.recall, 0.80);
  line("no tool", r.no_tool, 0.0);
  return out;
}

nlohmann::json ReportJson(const AgentEvalReport& r) {
  auto fig = [](const Figure& f) {
    return nlohmann::json{{"passed", f.passed}, {"total", f.total}, {"rate", f.rate()}};
  };
  return {{"conversations", r.conversations},
          {"generated_tokens", r.generated_tokens},
          {"seconds", r.seconds},
          {"tool_choice", fig(r.tool_choice)},
          {"arguments", fig(r.arguments)},
          {"key_fact", fig(r.key_fact)},
          {"recall", fig(r.recall)},
          {"no_tool", fig(r.no_tool)}};
}

}  // namespace agentry::train
