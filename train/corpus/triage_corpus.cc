// train/corpus/triage_corpus.cc — see triage_corpus.h; the words live in triage_phrases.h.
//
// A conversation is built as a list of segments, one exchange each (a greeting, a ticket
// lookup, a Jira search, a fact the user states, ...). The exchanges a kind is about are
// required; the ones around them are optional and are dropped, last first, when the
// rendered conversation would exceed kMaxRenderedBytes. Every draw comes from one splitmix64
// stream, so the same (seed, split, index) always yields the same bytes.
#include "train/corpus/triage_corpus.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "train/corpus/triage_phrases.h"

namespace agentry::train {
namespace {

namespace ph = phrases;

using Words = std::span<const std::string_view>;

// The splitmix64 output function: a bijective 64-bit mix.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// splitmix64: small, fast, and the same sequence on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    const uint64_t out = Mix(state_);
    state_ += 0x9e3779b97f4a7c15ULL;
    return out;
  }
  // Uniform in [0, n). The modulo bias is below n / 2^64: irrelevant for lists. n == 0 would
  // mean an empty list in triage_phrases.h (or one with no phrasing for a split), a bug the
  // tests rule out.
  uint64_t Below(uint64_t n) {
    if (n == 0) {
      std::fprintf(stderr, "triage corpus: a draw from an empty list\n");
      std::abort();
    }
    return Next() % n;
  }
  // True with probability percent / 100.
  bool Percent(int percent) { return Below(100) < static_cast<uint64_t>(percent); }
  // An index drawn with the given weights.
  size_t Weighted(std::initializer_list<int> weights) {
    int total = 0;
    for (int w : weights) total += w;
    int draw = static_cast<int>(Below(static_cast<uint64_t>(total)));
    size_t i = 0;
    for (int w : weights) {
      if (draw < w) return i;
      draw -= w;
      ++i;
    }
    return weights.size() - 1;
  }
  std::string_view Pick(Words words) { return words[Below(words.size())]; }

 private:
  uint64_t state_;
};

// Placeholder values for a phrasing: {"id", "4821"}, {"team", "billing"}, ...
using Vars = std::vector<std::pair<std::string_view, std::string>>;

// `text` with each "{key}" replaced by its value. A key without a value is a bug in
// triage_phrases.h or here, never a property of the input, so it aborts.
std::string Fill(std::string_view text, const Vars& vars) {
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t open = text.find('{', at);
    if (open == std::string_view::npos) {
      out.append(text.substr(at));
      break;
    }
    out.append(text.substr(at, open - at));
    const size_t close = text.find('}', open);
    const std::string* value = nullptr;
    if (close != std::string_view::npos) {
      const std::string_view key = text.substr(open + 1, close - open - 1);
      for (const auto& [name, v] : vars) {
        if (name == key) value = &v;
      }
    }
    if (value == nullptr) {
      std::fprintf(stderr, "triage corpus: no value for a placeholder in \"%.*s\"\n",
                   static_cast<int>(text.size()), text.data());
      std::abort();
    }
    out += *value;
    at = close + 1;
  }
  return out;
}

std::string Capitalized(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

// What a ticket question asks for; the answer states it (and always the owning team).
enum class Field { kStatus, kTeam, kPriority, kAbout, kReporter, kSummary };
constexpr int kFieldCount = 6;

struct Ticket {
  uint64_t id = 0;
  bool found = true;
  std::string title, status, priority, team, reporter;
};

Vars TicketVars(const Ticket& t) {
  return {{"id", std::to_string(t.id)}, {"title", t.title}, {"status", t.status},
          {"priority", t.priority},     {"team", t.team},   {"reporter", t.reporter}};
}

// get_ticket's result: the fields in the order a ticket API would list them.
std::string TicketResult(const Ticket& t) {
  nlohmann::ordered_json j;
  if (!t.found) {
    j["error"] = "not found";
    j["message"] = "No ticket has id " + std::to_string(t.id) + ".";
    return j.dump();
  }
  j["id"] = t.id;
  j["title"] = t.title;
  j["status"] = t.status;
  j["priority"] = t.priority;
  j["team"] = t.team;
  j["reporter"] = t.reporter;
  return j.dump();
}

const ph::Phrasings& AskList(Field f) {
  switch (f) {
    case Field::kStatus:
      return ph::kAskStatus;
    case Field::kTeam:
      return ph::kAskTeam;
    case Field::kPriority:
      return ph::kAskPriority;
    case Field::kAbout:
      return ph::kAskAbout;
    case Field::kReporter:
      return ph::kAskReporter;
    case Field::kSummary:
      break;
  }
  return ph::kAskSummary;
}

Words AnswerList(Field f) {
  switch (f) {
    case Field::kStatus:
      return ph::kSayStatus;
    case Field::kTeam:
      return ph::kSayTeam;
    case Field::kPriority:
      return ph::kSayPriority;
    case Field::kAbout:
      return ph::kSayAbout;
    case Field::kReporter:
      return ph::kSayReporter;
    case Field::kSummary:
      break;
  }
  return ph::kSaySummary;
}

// The substring an answer about `f` must contain. Team and priority carry their noun so a
// stray "high" or "data" elsewhere in a reply cannot pass for the fact.
std::string FieldFact(const Ticket& t, Field f) {
  switch (f) {
    case Field::kStatus:
      return t.status;
    case Field::kPriority:
      return t.priority + " priority";
    case Field::kAbout:
      return t.title;
    case Field::kReporter:
      return t.reporter;
    case Field::kTeam:
    case Field::kSummary:
      break;
  }
  return t.team + " team";
}

// One exchange (or a few that belong together) of a conversation under construction.
struct Segment {
  std::vector<engine::ChatMessage> messages;
  std::vector<Check> checks;  // Check::message indexes `messages`
  Provenance drawn;
  bool optional = false;  // may be dropped to fit kMaxRenderedBytes
  bool dropped = false;
};

// A fact the user stated that a later question can ask back.
struct Askable {
  const ph::Phrasings* question;
  Words answer;
  std::string value;
  Vars vars;
};

enum class Fact { kName, kTeam, kDevice, kTicket, kOrder, kDeadline, kCity, kCompany };
constexpr int kFactCount = 8;

// The held-out set's mix of kinds. Training draws recall more often still: copying an unseen
// name from an earlier turn is the hardest thing the model learns, and the one it learns last
// (docs/agent-model.md). Both lists have the kinds in the same order (Run's switch).
constexpr KindShare kMix[] = {
    {"ticket_lookup", 24}, {"missing_number", 9}, {"jira_search", 16}, {"recall", 26},
    {"recall_lookup", 6},  {"small_talk", 8},     {"refusal", 11},
};
constexpr KindShare kTrainingMix[] = {
    {"ticket_lookup", 21}, {"missing_number", 8}, {"jira_search", 14}, {"recall", 32},
    {"recall_lookup", 8},  {"small_talk", 7},     {"refusal", 10},
};

// The share of training names, cities and companies that are made up rather than drawn
// from the lists.
constexpr int kMadeUpPercent = 75;

// Whether `text` contains `phrase` as whole words.
bool ContainsPhrase(std::string_view text, std::string_view phrase) {
  auto alnum = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) != 0; };
  for (size_t at = text.find(phrase); at != std::string_view::npos;
       at = text.find(phrase, at + 1)) {
    const bool before = at > 0 && alnum(text[at - 1]);
    const bool after = at + phrase.size() < text.size() && alnum(text[at + phrase.size()]);
    if (!before && !after) return true;
  }
  return false;
}

class Generator {
 public:
  Generator(uint64_t seed, Split split, uint64_t index)
      : rng_(Mix(Mix(Mix(seed) ^ (split == Split::kHeldOut ? 0x68656c64ULL : 0x747261696eULL)) ^
                 index)),
        split_(split) {}

  Conversation Run() {
    const KindShare* mix = split_ == Split::kTrain ? kTrainingMix : kMix;
    size_t pick = 0;
    {
      int draw = static_cast<int>(rng_.Below(100));
      while (draw >= mix[pick].percent) draw -= mix[pick++].percent;
    }
    const std::string_view kind = mix[pick].kind;
    switch (pick) {
      case 0:
        TicketLookupKind();
        break;
      case 1:
        MissingNumberKind();
        break;
      case 2:
        JiraKind();
        break;
      case 3:
        RecallKind();
        break;
      case 4:
        RecallLookupKind();
        break;
      case 5:
        SmallTalkKind();
        break;
      default:
        RefusalKind();
        break;
    }
    for (;;) {
      Conversation conv = Assemble(kind);
      const size_t bytes =
          engine::ApplyChatTemplate(engine::ChatFormat::kChatMl, conv.messages, false).text.size();
      if (bytes <= kMaxRenderedBytes) return conv;
      Segment* last_optional = nullptr;
      for (Segment& s : segments_) {
        if (s.optional && !s.dropped) last_optional = &s;
      }
      if (last_optional == nullptr) return conv;  // the required part alone; tests bound it
      last_optional->dropped = true;
    }
  }

 private:
  bool held_out() const { return split_ == Split::kHeldOut; }
  Segment& seg() { return segments_.back(); }

  // ---- Draws ----

  // A phrasing of `list` allowed in this split, filled in.
  std::string User(const ph::Phrasings& list, const Vars& vars) {
    size_t allowed = 0;
    for (size_t i = 0; i < list.texts.size(); ++i)
      allowed += ph::IsHeldOutPhrasing(i) == held_out();
    size_t k = rng_.Below(allowed);
    size_t i = 0;
    for (;; ++i) {
      if (ph::IsHeldOutPhrasing(i) != held_out()) continue;
      if (k-- == 0) break;
    }
    seg().drawn.templates.push_back(std::string(list.id) + "#" + std::to_string(i));
    return Fill(list.texts[i], vars);
  }

  std::string Say(Words list, const Vars& vars) { return Fill(rng_.Pick(list), vars); }

  // A number of min..max digits (uniform digit count) from this split's side of the
  // partition.
  uint64_t Number(int min_digits, int max_digits) {
    for (;;) {
      const int digits = min_digits + static_cast<int>(rng_.Below(max_digits - min_digits + 1));
      uint64_t low = 1;
      for (int d = 1; d < digits; ++d) low *= 10;
      const uint64_t n = low + rng_.Below(9 * low);
      if (IsHeldOutNumber(n) == held_out()) {
        seg().drawn.numbers.push_back(n);
        return n;
      }
    }
  }

  // A ticket id of 3-5 digits (mostly 4), not yet used in this conversation.
  uint64_t NewTicketId() {
    for (;;) {
      const size_t digits = 3 + rng_.Weighted({20, 50, 30});
      const uint64_t id = Number(static_cast<int>(digits), static_cast<int>(digits));
      bool used = false;
      for (uint64_t u : ticket_ids_) used = used || u == id;
      if (!used) {
        ticket_ids_.push_back(id);
        return id;
      }
    }
  }

  // A name or city: from this split's list, or, for most training draws, a made-up word.
  // With only lists to learn from, a small model memorises the names and guesses among them;
  // made-up words cannot be guessed, so it learns to copy what the user said, which is what
  // carries over to the unseen names of the held-out split.
  std::string Entity(Words train, Words held) {
    return Drawn(held_out() || !rng_.Percent(kMadeUpPercent) ? std::string(Pick(train, held))
                                                             : MadeUpWord(held));
  }
  // A company: a list entry or, like Entity, mostly made up: one or two made-up words and a
  // training company's last word ("Brakou Labs", "Zidra Tessun Foods"), or two made-up
  // words. Names of three words too, so a model does not learn that a company ends after two.
  std::string Company() {
    if (held_out() || !rng_.Percent(kMadeUpPercent)) {
      return Drawn(std::string(Pick(ph::kCompaniesTrain, ph::kCompaniesHeldOut)));
    }
    std::string name = MadeUpWord(ph::kCompaniesHeldOut);
    switch (rng_.Weighted({45, 30, 25})) {
      case 0:
        break;
      case 1:
        name += " " + MadeUpWord(ph::kCompaniesHeldOut);
        break;
      default:
        return Drawn(name + " " + MadeUpWord(ph::kCompaniesHeldOut));
    }
    std::string_view tail = rng_.Pick(ph::kCompaniesTrain);
    return Drawn(name + " " + std::string(tail.substr(tail.rfind(' ') + 1)));
  }
  // A word no list holds, in the shape of a name: 1-3 syllables drawn from inventories wide
  // enough (about 11 bits a syllable) that a model cannot predict the letters, only copy
  // them. Never one of the held-out words, so the split stays clean.
  std::string MadeUpWord(Words held) {
    static constexpr std::string_view kOnsets[] = {
        "",   "b",  "c",  "d",  "f",  "g",  "h",  "j",  "k",  "l",  "m",  "n",  "p",
        "r",  "s",  "t",  "v",  "w",  "y",  "z",  "br", "dr", "kr", "st", "tr", "sh",
        "th", "ch", "gr", "pl", "bl", "fr", "kw", "sl", "zh", "ts", "gw", "mb", "nd"};
    static constexpr std::string_view kVowels[] = {"a",  "e",  "i",  "o",  "u",  "y",  "ai", "ei",
                                                   "ou", "ia", "oa", "ee", "oo", "au", "ie", "ue"};
    static constexpr std::string_view kCodas[] = {"",  "",  "",  "",   "n",  "r", "l",  "s",
                                                  "k", "m", "t", "nd", "rt", "x", "ng", "sk"};
    for (;;) {
      std::string w;
      const int syllables = 1 + static_cast<int>(rng_.Weighted({25, 55, 20}));
      for (int i = 0; i < syllables; ++i) {
        w += kOnsets[rng_.Below(std::size(kOnsets))];
        w += kVowels[rng_.Below(std::size(kVowels))];
        if (i + 1 < syllables && rng_.Percent(20)) w += kCodas[rng_.Below(std::size(kCodas))];
      }
      w += kCodas[rng_.Below(std::size(kCodas))];
      if (w.size() < 3) continue;
      w[0] = static_cast<char>(w[0] - 'a' + 'A');
      bool taken = false;
      for (std::string_view h : held) taken = taken || h == w;
      if (!taken) return w;
    }
  }
  // A deadline. Held out: a phrase from the held-out list. Training: composed from parts
  // ("Thursday evening", "March 3", "the end of the month"), so there are too many to
  // memorise and, as with names, the model learns to copy the user's words. A composition
  // that would contain a held-out phrase is drawn again.
  std::string Deadline() {
    if (held_out()) return Drawn(std::string(rng_.Pick(ph::kDeadlinesHeldOut)));
    for (;;) {
      std::string d;
      switch (rng_.Below(4)) {
        case 0:
          d = rng_.Pick(ph::kDeadlineDays);
          if (rng_.Percent(60)) d += " " + std::string(rng_.Pick(ph::kDeadlineTimesOfDay));
          break;
        case 1:
          d = "next " + std::string(rng_.Pick(ph::kDeadlineDays));
          break;
        case 2:
          d = std::string(rng_.Pick(ph::kDeadlineMonths)) + " " +
              std::to_string(1 + rng_.Below(28));
          break;
        default:
          d = "the end of " + std::string(rng_.Pick(ph::kDeadlineEnds));
          break;
      }
      bool clash = false;
      for (std::string_view h : ph::kDeadlinesHeldOut) {
        clash = clash || ContainsPhrase(d, h);
      }
      if (!clash) return Drawn(std::move(d));
    }
  }
  std::string_view Pick(Words train, Words held) { return rng_.Pick(held_out() ? held : train); }
  // Records an entity drawn into this segment (the tests check the splits never share one).
  std::string Drawn(std::string e) {
    seg().drawn.entities.push_back(e);
    return e;
  }
  std::string FirstName() { return Entity(ph::kFirstNamesTrain, ph::kFirstNamesHeldOut); }
  std::string FullName() {
    std::string first = FirstName();
    return first + " " + Entity(ph::kLastNamesTrain, ph::kLastNamesHeldOut);
  }

  // A ticket with id `id`; when `may_be_missing`, one in twenty does not exist.
  Ticket NewTicket(uint64_t id, bool may_be_missing) {
    Ticket t;
    t.id = id;
    t.found = !(may_be_missing && rng_.Percent(5));
    if (!t.found) return t;
    const size_t team = rng_.Below(std::size(ph::kTicketTeams));
    t.team = ph::kTicketTeams[team];
    t.title = rng_.Pick(ph::kTitlesByTeam[team]);
    t.status = rng_.Pick(ph::kStatuses);
    t.priority = rng_.Pick(ph::kPriorities);
    t.reporter = FullName();
    return t;
  }

  // ---- Building segments ----

  void Begin(bool optional) {
    segments_.emplace_back();
    seg().optional = optional;
  }
  void UserSays(std::string text) { seg().messages.push_back({"user", std::move(text)}); }
  void ToolReturns(std::string json) { seg().messages.push_back({"tool", std::move(json)}); }
  void AssistantSays(std::string text, Check check) {
    check.message = seg().messages.size();
    seg().messages.push_back({"assistant", std::move(text)});
    seg().checks.push_back(std::move(check));
  }
  static Check NoTool() { return Check{0, CheckKind::kNoTool, "", nullptr, ""}; }
  static Check KeyFact(std::string fact) {
    return Check{0, CheckKind::kKeyFact, "", nullptr, std::move(fact)};
  }

  // The assistant calls `tool` with `args`; the check expects exactly that call.
  void Call(std::string_view tool, const nlohmann::json& args) {
    AssistantSays(runtime::RenderToolCall(tool, args),
                  Check{0, CheckKind::kToolCall, std::string(tool), args, ""});
  }

  // get_ticket, its result, and the answer about `field`.
  void CallAndAnswer(const Ticket& t, Field field) {
    Call("get_ticket", {{"id", t.id}});
    ToolReturns(TicketResult(t));
    if (!t.found) {
      AssistantSays(Say(ph::kSayNotFound, TicketVars(t)), KeyFact("not found"));
    } else {
      AssistantSays(Say(AnswerList(field), TicketVars(t)), KeyFact(FieldFact(t, field)));
    }
  }

  // A question about a numbered ticket, answered after a lookup; with `*left` user turns
  // still to fill above 1, sometimes a follow-up answered from the same result.
  void Lookup(bool optional, int* left) {
    Begin(optional);
    const Ticket t = NewTicket(NewTicketId(), true);
    const auto field = static_cast<Field>(rng_.Below(kFieldCount));
    UserSays(User(AskList(field), {{"id", std::to_string(t.id)}}));
    CallAndAnswer(t, field);
    --*left;
    if (*left > 0 && t.found && rng_.Percent(35)) {
      Field follow = field;
      while (follow == field) follow = static_cast<Field>(rng_.Below(kFieldCount - 1));
      struct Follow {
        const ph::Phrasings* ask;
        Words say;
      };
      static constexpr Follow kFollow[] = {
          {&ph::kFollowStatus, ph::kSayFollowStatus},     {&ph::kFollowTeam, ph::kSayFollowTeam},
          {&ph::kFollowPriority, ph::kSayFollowPriority}, {&ph::kFollowAbout, ph::kSayFollowAbout},
          {&ph::kFollowReporter, ph::kSayFollowReporter},
      };
      const Follow& f = kFollow[static_cast<size_t>(follow)];
      UserSays(User(*f.ask, {}));
      AssistantSays(Say(f.say, TicketVars(t)), KeyFact(FieldFact(t, follow)));
      --*left;
    }
  }

  // "My ticket" with no number given yet: the agent asks for it, then looks it up.
  void MissingNumber() {
    Begin(false);
    const bool latest = rng_.Percent(30);
    Field field = Field::kSummary;
    const ph::Phrasings* ask = &ph::kLatest;
    if (!latest) {
      const size_t which = rng_.Below(3);
      ask = which == 0 ? &ph::kMyStatus : which == 1 ? &ph::kMyTeam : &ph::kMySummary;
      field = which == 0 ? Field::kStatus : which == 1 ? Field::kTeam : Field::kSummary;
    }
    UserSays(User(*ask, {}));
    AssistantSays(Say(latest ? Words(ph::kSayAskNumberLatest) : Words(ph::kSayAskNumber), {}),
                  NoTool());
    const Ticket t = NewTicket(NewTicketId(), true);
    UserSays(User(ph::kGiveNumber, {{"id", std::to_string(t.id)}}));
    CallAndAnswer(t, field);
  }

  // A Jira search: found issues, none, or a call the approver denied.
  void Jira(bool optional) {
    Begin(optional);
    const size_t team = rng_.Below(std::size(ph::kTicketTeams));
    const std::string query(rng_.Pick(ph::kQueriesByTeam[team]));
    UserSays(User(ph::kAskJira, {{"query", query}}));
    Call("jira_search", {{"query", query}});
    const size_t outcome = rng_.Weighted({55, 20, 25});
    if (outcome == 0) {
      const int n = rng_.Percent(65) ? 1 : 2;
      nlohmann::json issues = nlohmann::json::array();
      Vars vars;
      uint64_t first_number = 0;
      std::string_view first_ending;
      for (int i = 0; i < n; ++i) {
        uint64_t number = Number(3, 4);
        while (i == 1 && number == first_number) number = Number(3, 4);
        std::string_view ending = rng_.Pick(ph::kJiraSummaryEndings);
        while (i == 1 && ending == first_ending) ending = rng_.Pick(ph::kJiraSummaryEndings);
        first_number = number;
        first_ending = ending;
        std::string key = std::string(ph::kJiraProjects[team]) + "-" + std::to_string(number);
        std::string summary = Capitalized(query) + " " + std::string(ending);
        issues.push_back({{"key", key}, {"summary", summary}});
        vars.emplace_back(i == 0 ? "key" : "key2", std::move(key));
        vars.emplace_back(i == 0 ? "summary" : "summary2", std::move(summary));
      }
      ToolReturns(nlohmann::json{{"issues", issues}}.dump());
      std::string fact = vars[0].second;
      AssistantSays(Say(n == 1 ? Words(ph::kSayJiraOne) : Words(ph::kSayJiraTwo), vars),
                    KeyFact(std::move(fact)));
    } else if (outcome == 1) {
      ToolReturns(R"({"issues":[]})");
      AssistantSays(Say(ph::kSayJiraNone, {{"query", query}}),
                    KeyFact(std::string(kFactNoMatches)));
    } else {
      ToolReturns(R"({"error":"denied","message":"The approver declined this call."})");
      AssistantSays(Say(ph::kSayJiraDenied, {{"query", query}}),
                    KeyFact(std::string(kFactNotApproved)));
    }
  }

  // One user line and the agent's plain reply.
  void Talk(const ph::Phrasings& ask, Words say, bool optional) {
    Begin(optional);
    UserSays(User(ask, {}));
    AssistantSays(Say(say, {}), NoTool());
  }
  void Greet(bool optional) { Talk(ph::kGreet, ph::kSayGreet, optional); }
  void Goodbye() {
    if (rng_.Percent(70)) {
      Talk(ph::kThanks, ph::kSayThanks, true);
    } else {
      Talk(ph::kBye, ph::kSayBye, true);
    }
  }

  // An out-of-scope request (category 0-5) and a polite refusal.
  void Refusal(size_t category, bool optional) {
    struct Refuse {
      const ph::Phrasings* ask;
      Words say;
    };
    static constexpr Refuse kRefuse[] = {
        {&ph::kFlight, ph::kSayRefuseFlight},   {&ph::kPoem, ph::kSayRefusePoem},
        {&ph::kWeather, ph::kSayRefuseWeather}, {&ph::kPassword, ph::kSayRefusePassword},
        {&ph::kInvent, ph::kSayRefuseInvent},   {&ph::kOther, ph::kSayRefuseOther},
    };
    Begin(optional);
    const Refuse& r = kRefuse[category];
    Vars vars;
    if (r.ask == &ph::kFlight || r.ask == &ph::kWeather) {
      vars.emplace_back("city", Entity(ph::kCitiesTrain, ph::kCitiesHeldOut));
    }
    if (r.ask == &ph::kPoem) vars.emplace_back("topic", rng_.Pick(ph::kPoemTopics));
    UserSays(User(*r.ask, vars));
    AssistantSays(Say(r.say, {}), NoTool());
  }

  // The user states `fact`; the agent acknowledges it. Appends what can be asked back.
  // `with_team` lets a name come with the user's team in one sentence.
  void Statement(Fact fact, bool with_team, std::vector<Askable>* askables, uint64_t* ticket_id) {
    Begin(false);
    Vars vars;
    const ph::Phrasings* state = nullptr;
    Words ack;
    auto ask = [&](const ph::Phrasings& q, Words answer, std::string_view key) {
      for (const auto& [name, value] : vars) {
        if (name == key) askables->push_back({&q, answer, value, {{key, value}}});
      }
    };
    switch (fact) {
      case Fact::kName:
        vars.emplace_back("name", rng_.Percent(50) ? FullName() : FirstName());
        ask(ph::kRecallName, ph::kSayRecallName, "name");
        if (with_team) {
          vars.emplace_back("team", rng_.Pick(ph::kUserTeams));
          ask(ph::kRecallTeam, ph::kSayRecallTeam, "team");
          state = &ph::kStateNameTeam;
          ack = ph::kSayAckNameTeam;
        } else {
          state = &ph::kStateName;
          ack = ph::kSayAckName;
        }
        break;
      case Fact::kTeam:
        vars.emplace_back("team", rng_.Pick(ph::kUserTeams));
        ask(ph::kRecallTeam, ph::kSayRecallTeam, "team");
        state = &ph::kStateTeam;
        ack = ph::kSayAckTeam;
        break;
      case Fact::kDevice: {
        const ph::Laptop& laptop = ph::kLaptops[rng_.Below(std::size(ph::kLaptops))];
        vars.emplace_back("device", laptop.name);
        vars.emplace_back("os", rng_.Pick(laptop.mac ? Words(ph::kMacOses) : Words(ph::kPcOses)));
        ask(ph::kRecallDevice, ph::kSayRecallDevice, "device");
        ask(ph::kRecallOs, ph::kSayRecallOs, "os");
        state = &ph::kStateDevice;
        ack = ph::kSayAckDevice;
        break;
      }
      case Fact::kTicket:
        *ticket_id = NewTicketId();
        vars.emplace_back("id", std::to_string(*ticket_id));
        ask(ph::kRecallTicket, ph::kSayRecallTicket, "id");
        state = &ph::kStateTicket;
        ack = ph::kSayAckTicket;
        break;
      case Fact::kOrder:
        vars.emplace_back("order", std::to_string(Number(5, 6)));
        ask(ph::kRecallOrder, ph::kSayRecallOrder, "order");
        state = &ph::kStateOrder;
        ack = ph::kSayAckOrder;
        break;
      case Fact::kDeadline:
        vars.emplace_back("deadline", Deadline());
        ask(ph::kRecallDeadline, ph::kSayRecallDeadline, "deadline");
        state = &ph::kStateDeadline;
        ack = ph::kSayAckDeadline;
        break;
      case Fact::kCity:
        vars.emplace_back("city", Entity(ph::kCitiesTrain, ph::kCitiesHeldOut));
        ask(ph::kRecallCity, ph::kSayRecallCity, "city");
        state = &ph::kStateCity;
        ack = ph::kSayAckCity;
        break;
      case Fact::kCompany:
        vars.emplace_back("company", Company());
        ask(ph::kRecallCompany, ph::kSayRecallCompany, "company");
        state = &ph::kStateCompany;
        ack = ph::kSayAckCompany;
        break;
    }
    UserSays(User(*state, vars));
    AssistantSays(Say(ack, vars), NoTool());
  }

  // An exchange between a stated fact and the question about it. No ticket lookups when a
  // ticket number was stated: "which ticket did I mention?" would become ambiguous.
  void Distractor(bool allow_lookup) {
    const size_t which = rng_.Weighted({allow_lookup ? 45 : 0, 25, 30});
    int left = 1;
    if (which == 0) {
      Lookup(true, &left);
    } else if (which == 1) {
      Jira(true);
    } else if (rng_.Percent(50)) {
      Talk(ph::kHow, ph::kSayHow, true);
    } else {
      Talk(ph::kCapabilities, ph::kSayCapabilities, true);
    }
  }

  // Fills the remaining user turns after the main exchange: more lookups or searches, and
  // sometimes a thanks or goodbye to end on.
  void Tail(int left) {
    while (left > 0) {
      if (left == 1 && rng_.Percent(45)) {
        Goodbye();
        return;
      }
      if (rng_.Percent(60)) {
        Lookup(true, &left);
      } else {
        Jira(true);
        --left;
      }
    }
  }

  // User turns for a conversation: 1 + an index drawn with `weights`.
  int Turns(std::initializer_list<int> weights) {
    return 1 + static_cast<int>(rng_.Weighted(weights));
  }

  // ---- Kinds ----

  void TicketLookupKind() {
    int left = Turns({40, 30, 20, 10});
    if (left >= 2 && rng_.Percent(30)) {
      Greet(true);
      --left;
    }
    Lookup(false, &left);
    Tail(left);
  }

  void MissingNumberKind() {
    int left = 1 + Turns({50, 35, 15});
    if (left >= 3 && rng_.Percent(40)) {
      Greet(true);
      --left;
    }
    MissingNumber();
    Tail(left - 2);
  }

  void JiraKind() {
    int left = Turns({45, 30, 17, 8});
    if (left >= 2 && rng_.Percent(25)) {
      Greet(true);
      --left;
    }
    Jira(false);
    Tail(left - 1);
  }

  // Facts stated first, other exchanges in between, then a question about one of them.
  void RecallKind() {
    const int statements = rng_.Percent(30) ? 2 : 1;
    const int distractors = std::min(static_cast<int>(rng_.Below(3)), 3 - statements);
    std::array<Fact, 2> facts{};
    facts[0] = static_cast<Fact>(rng_.Below(kFactCount));
    facts[1] = facts[0];
    while (facts[1] == facts[0]) facts[1] = static_cast<Fact>(rng_.Below(kFactCount));
    const bool with_team = statements == 1 && rng_.Percent(25);
    std::vector<Askable> askables;
    uint64_t ticket_id = 0;
    bool ticket_stated = false;
    // Items after the first statement: the second statement (if any) and the distractors,
    // in a random order.
    int second_at = statements == 2 ? static_cast<int>(rng_.Below(distractors + 1)) : -1;
    for (int i = 0; i < statements; ++i) ticket_stated |= facts[i] == Fact::kTicket;
    Statement(facts[0], with_team, &askables, &ticket_id);
    for (int i = 0; i <= distractors; ++i) {
      if (i == second_at) Statement(facts[1], false, &askables, &ticket_id);
      if (i < distractors) Distractor(!ticket_stated);
    }
    Begin(false);
    const Askable& a = askables[rng_.Below(askables.size())];
    UserSays(User(*a.question, {}));
    AssistantSays(Say(a.answer, a.vars), Check{0, CheckKind::kRecall, "", nullptr, a.value});
  }

  // A ticket number stated early, then "look up my ticket": the call must use that number.
  void RecallLookupKind() {
    std::vector<Askable> askables;
    uint64_t id = 0;
    int left = 4;
    if (rng_.Percent(25)) {
      static constexpr Fact kOthers[] = {Fact::kName,     Fact::kTeam, Fact::kDevice, Fact::kOrder,
                                         Fact::kDeadline, Fact::kCity, Fact::kCompany};
      Statement(kOthers[rng_.Below(std::size(kOthers))], false, &askables, &id);
      --left;
    } else if (rng_.Percent(20)) {
      Greet(true);
      --left;
    }
    Statement(Fact::kTicket, false, &askables, &id);
    --left;
    if (rng_.Percent(50)) {
      Distractor(true);
      --left;
    }
    Begin(false);
    const size_t which = rng_.Below(3);
    const ph::Phrasings& ask = which == 0   ? ph::kMyStatus
                               : which == 1 ? ph::kMyTeam
                                            : ph::kMySummary;
    const Field field = which == 0 ? Field::kStatus : which == 1 ? Field::kTeam : Field::kSummary;
    UserSays(User(ask, {}));
    const Ticket t = NewTicket(id, /*may_be_missing=*/false);  // the user's own ticket exists
    seg().drawn.numbers.push_back(id);
    CallAndAnswer(t, field);
    --left;
    if (left > 0 && rng_.Percent(30)) Goodbye();
  }

  void SmallTalkKind() {
    int left = Turns({35, 35, 20, 10});
    struct Chat {
      const ph::Phrasings* ask;
      Words say;
    };
    std::vector<Chat> unused = {{&ph::kHow, ph::kSayHow},
                                {&ph::kCapabilities, ph::kSayCapabilities},
                                {&ph::kWho, ph::kSayWho}};
    bool first = true;
    if (rng_.Percent(65)) {
      Greet(false);
      first = false;
      --left;
    }
    while (left > 0) {
      if (!first && left == 1 && rng_.Percent(40)) {
        Goodbye();
        return;
      }
      if (!first && rng_.Percent(25)) {
        Lookup(true, &left);
        continue;
      }
      const size_t i = rng_.Below(unused.size());
      Talk(*unused[i].ask, unused[i].say, !first);
      unused.erase(unused.begin() + static_cast<std::ptrdiff_t>(i));
      first = false;
      --left;
      if (unused.empty()) {
        Tail(left);
        return;
      }
    }
  }

  void RefusalKind() {
    int left = Turns({40, 30, 20, 10});
    if (left >= 2 && rng_.Percent(20)) {
      Greet(true);
      --left;
    }
    const size_t category = rng_.Below(6);
    Refusal(category, false);
    --left;
    while (left > 0) {
      if (left == 1 && rng_.Percent(40)) {
        Goodbye();
        return;
      }
      if (rng_.Percent(50)) {
        Lookup(true, &left);
      } else {
        Refusal((category + 1 + rng_.Below(5)) % 6, true);
        --left;
      }
    }
  }

  Conversation Assemble(std::string_view kind) const {
    Conversation conv;
    conv.kind = std::string(kind);
    conv.messages.push_back({"system", TriageSystemPrompt()});
    for (const Segment& s : segments_) {
      if (s.dropped) continue;
      const size_t offset = conv.messages.size();
      conv.messages.insert(conv.messages.end(), s.messages.begin(), s.messages.end());
      for (Check c : s.checks) {
        c.message += offset;
        conv.checks.push_back(std::move(c));
      }
      auto append = [](auto* to, const auto& from) {
        to->insert(to->end(), from.begin(), from.end());
      };
      append(&conv.drawn.templates, s.drawn.templates);
      append(&conv.drawn.entities, s.drawn.entities);
      append(&conv.drawn.numbers, s.drawn.numbers);
    }
    return conv;
  }

  Rng rng_;
  Split split_;
  std::vector<Segment> segments_;
  std::vector<uint64_t> ticket_ids_;  // ids used so far, so two tickets never share one
};

}  // namespace

const TriageAgent& TriageAgentSpec() {
  // Leaked on purpose: no destructor runs at exit while another static may still read it.
  static const TriageAgent* agent = new TriageAgent{
      "You triage support tickets. Look a ticket up before you answer questions about it,\n"
      "say which team should own it, and never invent ticket numbers.\n",
      {
          runtime::ToolDecl{
              "get_ticket",
              "Fetch one support ticket by its numeric id.",
              {{"type", "object"},
               {"properties",
                {{"id", {{"type", "integer"}, {"description", "The ticket number"}}}}},
               {"required", {"id"}}},
              false},
          runtime::ToolDecl{
              "jira_search",
              "Search Jira issues.",
              {{"type", "object"},
               {"properties", {{"query", {{"type", "string"}, {"description", "Search words"}}}}},
               {"required", {"query"}}},
              true},
      }};
  return *agent;
}

const std::string& TriageSystemPrompt() {
  static const std::string* prompt = new std::string(
      runtime::RenderSystemPrompt(TriageAgentSpec().instructions, TriageAgentSpec().tools));
  return *prompt;
}

std::span<const KindShare> CorpusMix(Split split) {
  return split == Split::kTrain ? std::span<const KindShare>(kTrainingMix) : kMix;
}

bool IsHeldOutNumber(uint64_t n) { return Mix(n ^ 0x6a09e667f3bcc909ULL) % 5 == 0; }

Conversation GenerateConversation(uint64_t seed, Split split, uint64_t index) {
  return Generator(seed, split, index).Run();
}

std::vector<std::string> RenderedTexts(uint64_t seed, Split split, uint64_t first, uint64_t count) {
  std::vector<std::string> texts;
  texts.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    const Conversation c = GenerateConversation(seed, split, first + i);
    texts.push_back(engine::ApplyChatTemplate(engine::ChatFormat::kChatMl, c.messages,
                                              /*add_assistant_prompt=*/false)
                        .text);
  }
  return texts;
}

}  // namespace agentry::train
