#include "train/corpus/triage_corpus.h"

#include <cctype>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "train/corpus/triage_phrases.h"
#include <gtest/gtest.h>

#include "common/config/agent_spec.h"
#include "common/file.h"

namespace agentry::train {
namespace {

std::string Render(const Conversation& c) {
  return engine::ApplyChatTemplate(engine::ChatFormat::kChatMl, c.messages,
                                   /*add_assistant_prompt=*/false)
      .text;
}

// Everything a conversation holds, as one comparable string.
std::string Fingerprint(const Conversation& c) {
  std::string out = c.kind + "\n" + Render(c);
  for (const Check& k : c.checks) {
    out += "\n" + std::to_string(k.message) + "/" + std::to_string(static_cast<int>(k.kind)) + "/" +
           k.tool + "/" + k.arguments.dump() + "/" + k.fact;
  }
  for (const std::string& t : c.drawn.templates) out += "\nT" + t;
  for (const std::string& e : c.drawn.entities) out += "\nE" + e;
  for (uint64_t n : c.drawn.numbers) out += "\nN" + std::to_string(n);
  return out;
}

std::vector<Conversation> Generate(Split split, uint64_t count, uint64_t seed = 1) {
  std::vector<Conversation> out;
  out.reserve(count);
  for (uint64_t i = 0; i < count; ++i) out.push_back(GenerateConversation(seed, split, i));
  return out;
}

// Whether `word` occurs in `text` with no letter or digit right before or after it.
bool ContainsWord(const std::string& text, const std::string& word) {
  auto alnum = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) != 0; };
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const bool before = at > 0 && alnum(text[at - 1]);
    const bool after = at + word.size() < text.size() && alnum(text[at + word.size()]);
    if (!before && !after) return true;
  }
  return false;
}

// Whether `text` could be `phrasing` with its placeholders filled in.
bool MatchesPhrasing(std::string_view phrasing, std::string_view text) {
  std::vector<std::string_view> pieces;
  size_t at = 0;
  for (size_t open = phrasing.find('{'); open != std::string_view::npos;
       open = phrasing.find('{', at)) {
    pieces.push_back(phrasing.substr(at, open - at));
    at = phrasing.find('}', open) + 1;
  }
  pieces.push_back(phrasing.substr(at));
  if (pieces.size() == 1) return text == phrasing;
  if (text.substr(0, pieces.front().size()) != pieces.front()) return false;
  size_t pos = pieces.front().size();
  for (size_t i = 1; i + 1 < pieces.size(); ++i) {
    pos = text.find(pieces[i], pos);
    if (pos == std::string_view::npos) return false;
    pos += pieces[i].size();
  }
  const std::string_view last = pieces.back();
  return text.size() >= pos + last.size() && text.substr(text.size() - last.size()) == last;
}

TEST(TriageCorpusTest, SameArgumentsGiveTheSameConversation) {
  for (Split split : {Split::kTrain, Split::kHeldOut}) {
    for (uint64_t i = 0; i < 200; ++i) {
      EXPECT_EQ(Fingerprint(GenerateConversation(7, split, i)),
                Fingerprint(GenerateConversation(7, split, i)));
    }
  }
}

TEST(TriageCorpusTest, DifferentIndicesSeedsAndSplitsGiveDifferentConversations) {
  std::set<std::string> texts;
  std::set<std::string> with_tools;
  int tool_conversations = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    const Conversation c = GenerateConversation(1, Split::kTrain, i);
    texts.insert(Render(c));
    if (Render(c).find("<tool_call>") != std::string::npos) {
      ++tool_conversations;
      with_tools.insert(Render(c));
    }
  }
  // A one-turn greeting or refusal can repeat by chance (a few dozen such texts exist);
  // a conversation with a tool call carries random numbers and never does.
  EXPECT_GE(texts.size(), 970u);
  EXPECT_EQ(with_tools.size(), static_cast<size_t>(tool_conversations));
  EXPECT_NE(Render(GenerateConversation(1, Split::kTrain, 1)),
            Render(GenerateConversation(1, Split::kTrain, 2)));
  int same_seed = 0;
  int same_split = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    const std::string a = Render(GenerateConversation(1, Split::kTrain, i));
    same_seed += a == Render(GenerateConversation(2, Split::kTrain, i));
    same_split += a == Render(GenerateConversation(1, Split::kHeldOut, i));
  }
  EXPECT_LE(same_seed, 4);
  EXPECT_EQ(same_split, 0);  // the held-out split never uses a train phrasing
}

TEST(TriageCorpusTest, RandomAccessMatchesSequentialGeneration) {
  std::vector<std::string> sequential;
  for (uint64_t i = 0; i <= 5000; ++i) {
    sequential.push_back(Fingerprint(GenerateConversation(3, Split::kTrain, i)));
  }
  EXPECT_EQ(Fingerprint(GenerateConversation(3, Split::kTrain, 5000)), sequential[5000]);
  EXPECT_EQ(Fingerprint(GenerateConversation(3, Split::kTrain, 17)), sequential[17]);
  const std::vector<std::string> rendered = RenderedTexts(3, Split::kHeldOut, 4998, 3);
  ASSERT_EQ(rendered.size(), 3u);
  EXPECT_EQ(rendered[2], Render(GenerateConversation(3, Split::kHeldOut, 5000)));
  EXPECT_EQ(rendered[0], Render(GenerateConversation(3, Split::kHeldOut, 4998)));
}

TEST(TriageCorpusTest, ConversationsAreWellFormed) {
  for (Split split : {Split::kTrain, Split::kHeldOut}) {
    for (const Conversation& c : Generate(split, 3000)) {
      SCOPED_TRACE(Render(c));
      ASSERT_GE(c.messages.size(), 3u);
      EXPECT_EQ(c.messages[0].role, "system");
      EXPECT_EQ(c.messages[0].content, TriageSystemPrompt());
      EXPECT_EQ(c.messages.back().role, "assistant");
      int user_turns = 0;
      for (size_t i = 1; i < c.messages.size(); ++i) {
        const engine::ChatMessage& m = c.messages[i];
        const std::string& prev = c.messages[i - 1].role;
        if (m.role == "user") {
          ++user_turns;
          EXPECT_TRUE(prev == "system" || prev == "assistant") << i;
        } else if (m.role == "tool") {
          ASSERT_EQ(prev, "assistant") << i;
          EXPECT_TRUE(runtime::ParseToolCall(c.messages[i - 1].content).ok()) << i;
          const nlohmann::json result =
              nlohmann::json::parse(m.content, nullptr, /*allow_exceptions=*/false);
          EXPECT_TRUE(result.is_object()) << m.content;
          EXPECT_EQ(result.dump(), nlohmann::json::parse(m.content).dump())
              << "tool results are compact JSON";
        } else {
          ASSERT_EQ(m.role, "assistant") << i;
          EXPECT_NE(prev, "system") << i;
          // A tool call is followed by its result, a plain reply by the user or nothing.
          const bool call = runtime::ParseToolCall(m.content).ok();
          if (i + 1 < c.messages.size()) {
            EXPECT_EQ(c.messages[i + 1].role, call ? "tool" : "user") << i;
          } else {
            EXPECT_FALSE(call);
          }
        }
        if (m.role == "user" || (m.role == "assistant" && m.content.find("<tool_call>") != 0)) {
          // Every placeholder was filled.
          EXPECT_EQ(m.content.find_first_of("{}"), std::string::npos) << m.content;
          EXPECT_FALSE(m.content.empty());
        }
      }
      EXPECT_GE(user_turns, 1);
      EXPECT_LE(user_turns, 4);
    }
  }
}

TEST(TriageCorpusTest, EveryAssistantMessageHasOneValidCheck) {
  std::map<CheckKind, int> seen;
  for (Split split : {Split::kTrain, Split::kHeldOut}) {
    for (const Conversation& c : Generate(split, 3000)) {
      SCOPED_TRACE(Render(c));
      std::set<size_t> checked;
      for (const Check& k : c.checks) {
        ++seen[k.kind];
        ASSERT_LT(k.message, c.messages.size());
        const std::string& text = c.messages[k.message].content;
        ASSERT_EQ(c.messages[k.message].role, "assistant");
        EXPECT_TRUE(checked.insert(k.message).second) << "two checks on one message";
        StatusOr<runtime::ToolCall> call = runtime::ParseToolCall(text);
        switch (k.kind) {
          case CheckKind::kToolCall:
            ASSERT_TRUE(call.ok()) << call.status().message();
            EXPECT_EQ(call->name, k.tool);
            EXPECT_EQ(call->arguments, k.arguments);
            EXPECT_TRUE(k.tool == "get_ticket" || k.tool == "jira_search") << k.tool;
            break;
          case CheckKind::kKeyFact: {
            EXPECT_EQ(call.status().code(), StatusCode::kNotFound);
            ASSERT_FALSE(k.fact.empty());
            EXPECT_NE(text.find(k.fact), std::string::npos) << k.fact;
            // The fact comes from the latest tool result.
            size_t tool = k.message;
            while (tool > 0 && c.messages[tool].role != "tool") --tool;
            ASSERT_EQ(c.messages[tool].role, "tool");
            const std::string& result = c.messages[tool].content;
            if (k.fact == kFactNotApproved) {
              EXPECT_NE(result.find(R"("error":"denied")"), std::string::npos) << result;
            } else if (k.fact == kFactNoMatches) {
              EXPECT_EQ(result, R"({"issues":[]})");
            } else if (k.fact.ends_with(" team") || k.fact.ends_with(" priority")) {
              // "billing team" is the tool's "team":"billing".
              const size_t space = k.fact.rfind(' ');
              const std::string field =
                  "\"" + k.fact.substr(space + 1) + "\":\"" + k.fact.substr(0, space) + "\"";
              EXPECT_NE(result.find(field), std::string::npos) << field << " in " << result;
            } else {
              EXPECT_NE(result.find(k.fact), std::string::npos) << k.fact << " in " << result;
            }
            break;
          }
          case CheckKind::kRecall: {
            EXPECT_EQ(call.status().code(), StatusCode::kNotFound);
            ASSERT_FALSE(k.fact.empty());
            EXPECT_NE(text.find(k.fact), std::string::npos) << k.fact;
            bool stated = false;
            for (size_t i = 1; i < k.message; ++i) {
              stated |= c.messages[i].role == "user" &&
                        c.messages[i].content.find(k.fact) != std::string::npos;
            }
            EXPECT_TRUE(stated) << k.fact;
            // Asked in the user turn right before, which does not contain the answer.
            ASSERT_EQ(c.messages[k.message - 1].role, "user");
            EXPECT_EQ(c.messages[k.message - 1].content.find(k.fact), std::string::npos);
            break;
          }
          case CheckKind::kNoTool:
            EXPECT_EQ(call.status().code(), StatusCode::kNotFound);
            break;
        }
      }
      for (size_t i = 0; i < c.messages.size(); ++i) {
        if (c.messages[i].role == "assistant") {
          EXPECT_EQ(checked.count(i), 1u) << i;
        }
      }
    }
  }
  for (CheckKind kind :
       {CheckKind::kToolCall, CheckKind::kKeyFact, CheckKind::kRecall, CheckKind::kNoTool}) {
    EXPECT_GT(seen[kind], 300) << static_cast<int>(kind);
  }
}

TEST(TriageCorpusTest, ToolArgumentsComeFromWhatTheUserSaid) {
  int recall_lookups = 0;
  for (const Conversation& c : Generate(Split::kHeldOut, 3000)) {
    SCOPED_TRACE(Render(c));
    for (const Check& k : c.checks) {
      std::string said;  // the user's messages before this one
      for (size_t i = 1; i < k.message; ++i) {
        if (c.messages[i].role == "user") said += c.messages[i].content + "\n";
      }
      if (k.kind != CheckKind::kToolCall) continue;
      if (k.tool == "get_ticket") {
        ASSERT_TRUE(k.arguments["id"].is_number_unsigned() ||
                    k.arguments["id"].is_number_integer());
        EXPECT_TRUE(ContainsWord(said, k.arguments["id"].dump()));
      } else {
        // The query is the user's words, copied, from the message just before.
        const std::string query = k.arguments["query"].get<std::string>();
        EXPECT_NE(c.messages[k.message - 1].content.find(query), std::string::npos) << query;
      }
    }
    if (c.kind == "recall_lookup") {
      // "Look up my ticket" names no number: the call uses the one stated earlier.
      ++recall_lookups;
      size_t last_call = c.checks.size() - 1;
      while (last_call > 0 && c.checks[last_call].kind != CheckKind::kToolCall) --last_call;
      const Check& call = c.checks[last_call];
      ASSERT_EQ(call.tool, "get_ticket");
      const std::string& ask = c.messages[call.message - 1].content;
      EXPECT_EQ(ask.find_first_of("0123456789"), std::string::npos) << ask;
      bool stated = false;
      for (size_t i = 0; i < c.drawn.templates.size(); ++i) {
        stated |= c.drawn.templates[i].rfind("state.ticket#", 0) == 0;
      }
      EXPECT_TRUE(stated);
    }
  }
  EXPECT_GT(recall_lookups, 100);
}

TEST(TriageCorpusTest, TicketTeamFollowsTitleWords) {
  const std::map<std::string, std::vector<std::string>> kWords = {
      {"billing", {"refund", "invoice", "charged", "payment"}},
      {"identity", {"login", "log", "password", "sso", "two-factor"}},
      {"mobile", {"app"}},
      {"networking", {"vpn", "latency", "dns", "network"}},
      {"data", {"export", "report"}},
  };
  int tickets = 0;
  for (const Conversation& c : Generate(Split::kTrain, 2000)) {
    for (const engine::ChatMessage& m : c.messages) {
      if (m.role != "tool" || m.content.find("\"title\"") == std::string::npos) continue;
      ++tickets;
      const nlohmann::json t = nlohmann::json::parse(m.content);
      std::string title = t["title"].get<std::string>();
      for (char& ch : title) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::vector<std::string> matched;
      for (const auto& [team, words] : kWords) {
        for (const std::string& w : words) {
          if (ContainsWord(title, w)) {
            matched.push_back(team);
            break;
          }
        }
      }
      EXPECT_EQ(matched, std::vector<std::string>{t["team"].get<std::string>()}) << title;
    }
  }
  EXPECT_GT(tickets, 1000);
}

TEST(TriageCorpusTest, KindsFollowTheMix) {
  for (Split split : {Split::kTrain, Split::kHeldOut}) {
    int total = 0;
    for (const KindShare& share : CorpusMix(split)) total += share.percent;
    EXPECT_EQ(total, 100);
    std::map<std::string, int> counts;
    const int n = 4000;
    for (const Conversation& c : Generate(split, n, 11)) ++counts[c.kind];
    EXPECT_EQ(counts.size(), CorpusMix(split).size());
    for (const KindShare& share : CorpusMix(split)) {
      const double percent = 100.0 * counts[std::string(share.kind)] / n;
      EXPECT_NEAR(percent, share.percent, 3.0) << share.kind;
    }
  }
}

TEST(TriageCorpusTest, RenderedLengthStaysWithinBudget) {
  for (Split split : {Split::kTrain, Split::kHeldOut}) {
    size_t total = 0;
    size_t longest = 0;
    const std::vector<std::string> texts = RenderedTexts(5, split, 0, 3000);
    for (const std::string& t : texts) {
      total += t.size();
      longest = std::max(longest, t.size());
      EXPECT_LE(t.size(), kMaxRenderedBytes) << t;
    }
    const double mean = static_cast<double>(total) / texts.size();
    EXPECT_GE(mean, 700);
    EXPECT_LE(mean, 1300);
    std::printf("%s: mean %.0f bytes, longest %zu\n", split == Split::kTrain ? "train" : "held-out",
                mean, longest);
  }
}

TEST(TriageCorpusTest, HeldOutNamesAndNumbersNeverAppearInTrain) {
  const std::vector<Conversation> train = Generate(Split::kTrain, 2000);
  const std::vector<Conversation> held = Generate(Split::kHeldOut, 2000);
  std::set<std::string> train_entities;
  std::set<uint64_t> train_numbers;
  std::set<uint64_t> numbers_in_train_text;
  std::string train_text;
  for (const Conversation& c : train) {
    train_entities.insert(c.drawn.entities.begin(), c.drawn.entities.end());
    for (uint64_t n : c.drawn.numbers) {
      train_numbers.insert(n);
      EXPECT_FALSE(IsHeldOutNumber(n)) << n;
    }
    const std::string text = Render(c);
    train_text += text;
    for (size_t i = 0; i < text.size();) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      numbers_in_train_text.insert(std::stoull(text.substr(i, j - i)));
      i = j;
    }
  }
  std::set<std::string> held_entities;
  std::set<uint64_t> held_numbers;
  for (const Conversation& c : held) {
    const std::string text = Render(c);
    for (const std::string& e : c.drawn.entities) {
      held_entities.insert(e);
      EXPECT_TRUE(ContainsWord(text, e)) << e;
    }
    for (uint64_t n : c.drawn.numbers) {
      held_numbers.insert(n);
      EXPECT_TRUE(IsHeldOutNumber(n)) << n;
    }
  }
  EXPECT_GT(held_entities.size(), 40u);
  EXPECT_GT(held_numbers.size(), 1000u);
  for (const std::string& e : held_entities) {
    EXPECT_EQ(train_entities.count(e), 0u) << e;
    EXPECT_FALSE(ContainsWord(train_text, e)) << e;
  }
  for (uint64_t n : held_numbers) {
    EXPECT_EQ(train_numbers.count(n), 0u) << n;
    EXPECT_EQ(numbers_in_train_text.count(n), 0u) << n;
  }
  // The lists themselves are disjoint, so no seed or index can break this.
  auto disjoint = [](std::span<const std::string_view> a, std::span<const std::string_view> b) {
    for (std::string_view x : a) {
      for (std::string_view y : b) {
        if (x == y) return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(disjoint(phrases::kFirstNamesTrain, phrases::kFirstNamesHeldOut));
  EXPECT_TRUE(disjoint(phrases::kLastNamesTrain, phrases::kLastNamesHeldOut));
  EXPECT_TRUE(disjoint(phrases::kCompaniesTrain, phrases::kCompaniesHeldOut));
  EXPECT_TRUE(disjoint(phrases::kCitiesTrain, phrases::kCitiesHeldOut));
}

TEST(TriageCorpusTest, HeldOutPhrasingsNeverAppearInTrain) {
  std::set<std::string> train_templates;
  std::vector<std::string> train_user;
  for (const Conversation& c : Generate(Split::kTrain, 2000)) {
    train_templates.insert(c.drawn.templates.begin(), c.drawn.templates.end());
    for (const engine::ChatMessage& m : c.messages) {
      if (m.role == "user") train_user.push_back(m.content);
    }
  }
  std::set<std::string> held_templates;
  for (const Conversation& c : Generate(Split::kHeldOut, 3000)) {
    held_templates.insert(c.drawn.templates.begin(), c.drawn.templates.end());
  }
  for (const std::string& t : held_templates) EXPECT_EQ(train_templates.count(t), 0u) << t;

  size_t reserved = 0;
  for (const phrases::Phrasings& list : phrases::kAllUserPhrasings) {
    EXPECT_GE(list.texts.size(), 4u) << list.id;
    for (size_t i = 0; i < list.texts.size(); ++i) {
      const std::string id = std::string(list.id) + "#" + std::to_string(i);
      if (!phrases::IsHeldOutPhrasing(i)) {
        EXPECT_EQ(held_templates.count(id), 0u) << id;
        continue;
      }
      ++reserved;
      EXPECT_EQ(train_templates.count(id), 0u) << id;
      // Matched by text too, not only by id: no train message reads like this phrasing.
      for (const std::string& u : train_user) {
        EXPECT_FALSE(MatchesPhrasing(list.texts[i], u)) << list.texts[i] << " ~ " << u;
      }
    }
  }
  // The evaluation exercises (nearly) every reserved phrasing.
  EXPECT_GE(held_templates.size(), reserved * 95 / 100);
}

TEST(TriageCorpusTest, PhrasingMatcherFillsPlaceholders) {
  EXPECT_TRUE(MatchesPhrasing("Is ticket {id} still open?", "Is ticket 4821 still open?"));
  EXPECT_FALSE(MatchesPhrasing("Is ticket {id} still open?", "Is ticket 4821 open?"));
  EXPECT_TRUE(MatchesPhrasing("{id}", "4821"));
  EXPECT_TRUE(MatchesPhrasing("Hi!", "Hi!"));
  EXPECT_FALSE(MatchesPhrasing("Hi!", "Hi there!"));
  EXPECT_TRUE(ContainsWord("Ask Ines now", "Ines"));
  EXPECT_FALSE(ContainsWord("Linesman", "Ines"));
}

// The corpus teaches the agent that examples/triage-agent.yaml declares.
TEST(TriageAgentSpecTest, MatchesExampleManifest) {
  StatusOr<std::string> yaml = ReadFileToString(AGENTRY_TRIAGE_AGENT_YAML);
  ASSERT_TRUE(yaml.ok()) << yaml.status().message();
  StatusOr<config::ManagedAgent> agent = config::ParseManagedAgent(*yaml, "triage-agent.yaml");
  ASSERT_TRUE(agent.ok()) << agent.status().message();
  const TriageAgent& spec = TriageAgentSpec();
  EXPECT_EQ(spec.instructions, agent->spec.instructions);
  ASSERT_EQ(agent->spec.tools.size(), 2u);
  ASSERT_EQ(spec.tools.size(), 2u);

  const config::ToolSpec& get_ticket = agent->spec.tools[0];
  EXPECT_EQ(spec.tools[0].name, get_ticket.name);
  EXPECT_EQ(spec.tools[0].description, get_ticket.description);
  EXPECT_EQ(spec.tools[0].parameters, get_ticket.parameters);
  EXPECT_EQ(spec.tools[0].requires_approval, get_ticket.requires_approval);

  // The MCP server's "search" tool, seen by the model as <tool>_<mcp tool>.
  const config::ToolSpec& jira = agent->spec.tools[1];
  ASSERT_TRUE(jira.mcp.has_value());
  EXPECT_EQ(jira.mcp->allowed_tools, std::vector<std::string>{"search"});
  EXPECT_EQ(spec.tools[1].name, jira.name + "_" + jira.mcp->allowed_tools[0]);
  EXPECT_TRUE(jira.requires_approval);
  EXPECT_TRUE(spec.tools[1].requires_approval);
}

TEST(TriageAgentSpecTest, SystemPromptDeclaresBothTools) {
  EXPECT_EQ(TriageSystemPrompt(),
            "You triage support tickets. Look a ticket up before you answer questions about it,\n"
            "say which team should own it, and never invent ticket numbers.\n"
            "\n"
            "Tools:\n"
            "- get_ticket(id: integer): Fetch one support ticket by its numeric id.\n"
            "- jira_search(query: string): Search Jira issues. Needs approval.");
}

}  // namespace
}  // namespace agentry::train
