// train/corpus/triage_corpus.h — synthetic conversations of the ticket-triage agent
// (examples/triage-agent.yaml), to train Agentry's own small agent model from scratch and to
// evaluate it on a held-out set.
//
// A conversation is what the runtime would send the model: the system prompt
// (runtime::RenderSystemPrompt of the agent's instructions and tools), then user turns,
// assistant replies, tool calls (runtime::RenderToolCall) and tool results (role "tool",
// compact JSON). Each assistant message carries a Check saying what the evaluation expects
// of it: the right tool call, a key fact from the tool's result, a fact the user stated
// earlier, or a plain reply that calls no tool.
//
// The stream is random-access and reproducible everywhere: conversation `index` of
// (seed, split) is a pure function of those three values, drawn from a splitmix64 generator
// seeded by hashing them (never std:: distributions, whose output differs between standard
// libraries). The held-out split uses names, companies, cities, deadlines, numbers and user
// phrasings that the train split never contains (see triage_phrases.h and IsHeldOutNumber),
// with the same agent phrasings and ticket vocabulary.
//
//   Conversation c = GenerateConversation(/*seed=*/1, Split::kTrain, step * batch + i);
//   std::string text = engine::ApplyChatTemplate(engine::ChatFormat::kChatMl, c.messages,
//                                                /*add_assistant_prompt=*/false).text;
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "nodeagent/engine/chat_template.h"
#include "runtime/prompt/agent_prompt.h"

namespace agentry::train {

// Bumped whenever the generated text changes, so a model or tokenizer records which corpus
// it learned from.
inline constexpr int kCorpusVersion = 6;

// The longest a conversation may be once rendered with the ChatML template, system prompt
// included; longer candidates shed optional exchanges until they fit.
inline constexpr size_t kMaxRenderedBytes = 1600;

// The facts of answers that report an outcome rather than a value of the tool's result.
inline constexpr std::string_view kFactNotApproved = "not approved";      // Jira call denied
inline constexpr std::string_view kFactNoMatches = "no matching issues";  // Jira found nothing

enum class Split { kTrain, kHeldOut };

// The agent as the model sees it: examples/triage-agent.yaml's instructions and its tools
// (get_ticket as declared there; the MCP tool jira, allowed tool "search", as jira_search).
struct TriageAgent {
  std::string instructions;
  std::vector<runtime::ToolDecl> tools;
};
const TriageAgent& TriageAgentSpec();
// runtime::RenderSystemPrompt of TriageAgentSpec(): every conversation's first message.
const std::string& TriageSystemPrompt();

enum class CheckKind {
  kToolCall,  // the message is exactly this tool call
  kKeyFact,   // an answer after a tool result that must state `fact`
  kRecall,    // an answer that must repeat `fact`, which the user stated earlier
  kNoTool,    // a plain reply: it must not call a tool
};

// What the evaluation expects of one assistant message.
struct Check {
  size_t message = 0;  // index into Conversation::messages of that assistant message
  CheckKind kind = CheckKind::kNoTool;
  std::string tool;          // kToolCall: expected tool name
  nlohmann::json arguments;  // kToolCall: expected arguments
  std::string fact;          // kKeyFact / kRecall: a substring the message must contain
};

// What the generator drew for a conversation; not part of its text. Tests use it to check
// the split, and an evaluation can report results by phrasing.
struct Provenance {
  std::vector<std::string> templates;  // user phrasings as "list#index", e.g. "ask.status#3"
  std::vector<std::string> entities;   // people's names, companies, cities, deadlines
  std::vector<uint64_t> numbers;       // ticket ids, order numbers, Jira issue numbers
};

struct Conversation {
  std::string kind;                           // one of CorpusMix(split)'s kinds
  std::vector<engine::ChatMessage> messages;  // messages[0] is the system prompt
  std::vector<Check> checks;                  // one per assistant message, in order
  Provenance drawn;
};

// A kind of conversation and how much of the stream it makes up.
struct KindShare {
  std::string_view kind;
  int percent;
};
// ticket_lookup, missing_number, jira_search, recall, recall_lookup, small_talk, refusal;
// the percents add up to 100. Training draws recall more often than the held-out set.
std::span<const KindShare> CorpusMix(Split split);

// Conversation `index` of the stream for (seed, split): a pure function of its arguments,
// so training step s can read conversations by index without generating earlier ones.
Conversation GenerateConversation(uint64_t seed, Split split, uint64_t index);

// Conversations first .. first+count-1 rendered with the ChatML template (no trailing
// assistant prompt): the text the BPE tokenizer is trained on.
std::vector<std::string> RenderedTexts(uint64_t seed, Split split, uint64_t first, uint64_t count);

// Whether a number (ticket id, order number, Jira issue number) belongs to the held-out
// split; about one in five does. The same rule serves every kind of number, so no held-out
// number appears anywhere in the train split's text.
bool IsHeldOutNumber(uint64_t n);

}  // namespace agentry::train
