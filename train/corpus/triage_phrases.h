// train/corpus/triage_phrases.h — the words the triage corpus is made of: what users say,
// what the agent answers, and the names, numbers' neighbours and ticket titles in between.
//
// Kept apart from the generator (triage_corpus.cc) so the text can be read and edited as
// text, and so tests can check the held-out split against it.
//
// User phrasings come in `Phrasings` lists; every fourth one (index % 4 == 3) is reserved
// for the held-out split, so the evaluation asks in words the model never trained on. Each
// list has at least four entries, and the held-out ones reuse the train ones' vocabulary in
// a new order (a 1M-parameter model can generalise across word order, not to new words).
// Names, companies, cities and deadlines come in disjoint train / held-out lists. The
// agent's own phrasings (`kSay...`) are shared: they are the model's style, not a test.
//
// Placeholders are "{key}"; triage_corpus.cc fills them (Fill aborts on an unknown key).
#pragma once

#include <span>
#include <string_view>

namespace agentry::train::phrases {

// A list of user phrasings; entries with index % 4 == 3 belong to the held-out split.
struct Phrasings {
  std::string_view id;  // names the list in Provenance::templates ("ask.status#3")
  std::span<const std::string_view> texts;
};

// True when entry `index` of a Phrasings list is reserved for the held-out split.
constexpr bool IsHeldOutPhrasing(size_t index) { return index % 4 == 3; }

// ---- Asking about a ticket by number ({id}) ----

inline constexpr std::string_view kAskStatusTexts[] = {
    "What's the status of ticket {id}?",
    "Is ticket {id} still open?",
    "Can you check the status of ticket #{id}?",
    "What's the current status of ticket number {id}?",
    "Any update on ticket {id}?",
    "status of {id}?",
    "Has ticket {id} been resolved yet?",
    "Can you check where ticket #{id} stands?",
    "Could you check on ticket number {id} for me?",
    "Where are we with ticket {id}?",
    "What's going on with #{id}?",
    "Is there any update on ticket number {id}?",
};
inline constexpr std::string_view kAskTeamTexts[] = {
    "Which team should own ticket {id}?",
    "Who should handle ticket #{id}?",
    "Which team does ticket {id} belong to?",
    "Can you tell me which team should own ticket {id}?",
    "Route ticket {id} for me: which team?",
    "Triage ticket {id}, please.",
    "Where should ticket number {id} go?",
    "Who should own #{id}?",
    "Which team is responsible for ticket {id}?",
    "Can you triage #{id}?",
    "Please route ticket {id} to the right team.",
    "Which team should handle ticket number {id}?",
};
inline constexpr std::string_view kAskPriorityTexts[] = {
    "What priority is ticket {id}?",         "How urgent is ticket #{id}?",
    "Is ticket {id} high priority?",         "Can you check the priority of ticket number {id}?",
    "What's the priority on {id}?",          "How important is ticket {id}?",
    "Tell me the priority of ticket #{id}.", "Is #{id} urgent?",
};
inline constexpr std::string_view kAskAboutTexts[] = {
    "What is ticket {id} about?",
    "What's ticket #{id} about?",
    "Can you tell me what ticket {id} is about?",
    "What's the problem in ticket number {id}?",
    "What's the issue in ticket {id}?",
    "Describe ticket {id} for me.",
    "What does ticket #{id} say?",
    "Can you tell me the issue in #{id}?",
};
inline constexpr std::string_view kAskReporterTexts[] = {
    "Who reported ticket {id}?",
    "Who opened ticket #{id}?",
    "Who filed ticket {id}?",
    "Can you tell me who reported ticket number {id}?",
    "Who's the reporter on ticket {id}?",
    "Who submitted #{id}?",
    "Which customer opened ticket {id}?",
    "Who filed #{id}?",
};
inline constexpr std::string_view kAskSummaryTexts[] = {
    "Can you look up ticket {id}?",
    "Summarize ticket #{id} for me.",
    "Give me a summary of ticket {id}.",
    "Can you pull up ticket number {id}?",
    "Look up ticket {id}, please.",
    "Tell me about ticket {id}.",
    "I need the details of ticket #{id}.",
    "Please look up #{id} and summarize it.",
    "Check ticket {id}.",
    "What can you tell me about ticket number {id}?",
    "Quick summary of {id}?",
    "Could you check ticket {id} for me?",
};
inline constexpr Phrasings kAskStatus{"ask.status", kAskStatusTexts};
inline constexpr Phrasings kAskTeam{"ask.team", kAskTeamTexts};
inline constexpr Phrasings kAskPriority{"ask.priority", kAskPriorityTexts};
inline constexpr Phrasings kAskAbout{"ask.about", kAskAboutTexts};
inline constexpr Phrasings kAskReporter{"ask.reporter", kAskReporterTexts};
inline constexpr Phrasings kAskSummary{"ask.summary", kAskSummaryTexts};

// ---- Follow-up questions about the ticket just looked up (answered from its result) ----

inline constexpr std::string_view kFollowStatusTexts[] = {
    "And what's its status?",
    "Is it still open?",
    "What's the status on it?",
    "And is it still open?",
};
inline constexpr std::string_view kFollowTeamTexts[] = {
    "Which team should own it?",
    "Who should handle it?",
    "And which team does it belong to?",
    "Which team should handle it?",
};
inline constexpr std::string_view kFollowPriorityTexts[] = {
    "What priority is it?",
    "How urgent is it?",
    "And what's its priority?",
    "Is it urgent?",
};
inline constexpr std::string_view kFollowReporterTexts[] = {
    "Who reported it?",
    "Who opened it?",
    "And who filed it?",
    "Who's the reporter?",
};
inline constexpr std::string_view kFollowAboutTexts[] = {
    "What is it about?",
    "What's the issue?",
    "And what's it about?",
    "What's the problem?",
};
inline constexpr Phrasings kFollowStatus{"follow.status", kFollowStatusTexts};
inline constexpr Phrasings kFollowTeam{"follow.team", kFollowTeamTexts};
inline constexpr Phrasings kFollowPriority{"follow.priority", kFollowPriorityTexts};
inline constexpr Phrasings kFollowReporter{"follow.reporter", kFollowReporterTexts};
inline constexpr Phrasings kFollowAbout{"follow.about", kFollowAboutTexts};

// ---- "My ticket" without a number: the agent must ask for it, unless the user gave it
// earlier in the conversation (then it looks that one up) ----

inline constexpr std::string_view kMyStatusTexts[] = {
    "What's the status of my ticket?",  "Is my ticket still open?",
    "Any update on my ticket?",         "Can you check where my ticket stands?",
    "Has my ticket been resolved yet?", "Can you check the status of my ticket?",
    "Where are we with my ticket?",     "Is there any update on my ticket?",
};
inline constexpr std::string_view kMyTeamTexts[] = {
    "Which team should own my ticket?",
    "Who should handle my ticket?",
    "Can you triage my ticket?",
    "Which team does my ticket belong to?",
    "Please route my ticket to the right team.",
    "Where should my ticket go?",
    "Which team is responsible for my ticket?",
    "Who should own my ticket?",
};
inline constexpr std::string_view kMySummaryTexts[] = {
    "Can you check my ticket?",        "Look up my ticket, please.",
    "Can you look up my ticket?",      "Could you pull up my ticket?",
    "Tell me about my ticket.",        "I need help with my ticket.",
    "What's going on with my ticket?", "Can you give me a summary of my ticket?",
};
// Only ever asked without a number: there is no "latest" the agent could know.
inline constexpr std::string_view kLatestTexts[] = {
    "What's the status of the latest ticket?", "Which team should own the newest ticket?",
    "Can you look up the latest ticket?",      "Tell me about the most recent ticket.",
    "Check the newest ticket for me.",         "Summarize the latest ticket.",
    "Can you triage the newest ticket?",       "What's the latest ticket about?",
};
inline constexpr Phrasings kMyStatus{"my.status", kMyStatusTexts};
inline constexpr Phrasings kMyTeam{"my.team", kMyTeamTexts};
inline constexpr Phrasings kMySummary{"my.summary", kMySummaryTexts};
inline constexpr Phrasings kLatest{"latest", kLatestTexts};

// The user's reply when asked for the number.
inline constexpr std::string_view kGiveNumberTexts[] = {
    "It's {id}.",
    "{id}",
    "Ticket {id}.",
    "Sorry, it's ticket #{id}.",
    "The number is {id}.",
    "#{id}",
    "It's ticket number {id}.",
    "Oh, it's ticket {id}.",
    // Training-only (indices 8-10, corpus v5): the held-out replies open with "Sorry," and
    // "Oh,", which opened no training sentence at all.
    "Sorry, the number is {id}.",
    "Oh, number {id}.",
    "Oh sorry, #{id}.",
};
inline constexpr Phrasings kGiveNumber{"give.number", kGiveNumberTexts};

// ---- Jira ({query}) ----

inline constexpr std::string_view kAskJiraTexts[] = {
    "Search Jira for {query}.",
    "Can you search Jira for {query}?",
    "Is there a Jira issue about {query}?",
    "Could you check Jira for {query}?",
    "Look in Jira for {query}, please.",
    "Find Jira issues about {query}.",
    "Are there any Jira issues on {query}?",
    "Search Jira for anything about {query}, please.",
    "Check Jira for {query}.",
    "Any known Jira issues about {query}?",
    "Please search Jira: {query}",
    "Is there any Jira issue for {query}?",
};
inline constexpr Phrasings kAskJira{"ask.jira", kAskJiraTexts};

// ---- Facts about the user, and the questions that recall them ----

inline constexpr std::string_view kStateNameTexts[] = {
    "Hi, I'm {name}.",        "My name is {name}.",
    "Hello, this is {name}.", "Hi there, my name is {name}.",
    "{name} here.",           "I'm {name}, by the way.",
    "Hey, it's {name}.",      "Hello! I'm {name}.",
};
inline constexpr std::string_view kStateNameTeamTexts[] = {
    "Hi, I'm {name} from the {team} team.",
    "This is {name}, I'm on the {team} team.",
    "I'm {name} and I work on the {team} team.",
    "Hello, {name} here from the {team} team.",
};
inline constexpr std::string_view kStateTeamTexts[] = {
    "I'm on the {team} team.",
    "I work on the {team} team.",
    "FYI, my team is {team}.",
    "I'm part of the {team} team, by the way.",
    "Our team is {team}.",
    "I belong to the {team} team.",
    "Just so you know, I'm on {team}.",
    "My team is the {team} team.",
};
inline constexpr std::string_view kStateDeviceTexts[] = {
    "I'm on a {device} running {os}.",
    "My laptop is a {device} with {os}.",
    "I use a {device} with {os}.",
    "I'm working on a {device} running {os}.",
    "FYI, my machine is a {device} on {os}.",
    "I have a {device} running {os}.",
    "My work laptop is a {device} with {os}.",
    "I use a {device}, and it runs {os}.",
};
inline constexpr std::string_view kStateTicketTexts[] = {
    "My ticket number is {id}, by the way.", "Just so you know, my ticket is #{id}.",
    "For reference, my ticket is {id}.",     "The ticket I care about is number {id}.",
    "I opened ticket {id} last week.",       "My ticket is {id}.",
    "Remember my ticket number: {id}.",      "FYI, my ticket is number {id}.",
};
inline constexpr std::string_view kStateOrderTexts[] = {
    "My order number is {order}.",
    "For reference, my order is {order}.",
    "I placed order {order}.",
    "My order number is #{order}, by the way.",
    "The order in question is {order}.",
    "Just so you know, my order is {order}.",
    "Order {order} is the one I'm asking about.",
    "FYI, it's about order number {order}.",
};
inline constexpr std::string_view kStateDeadlineTexts[] = {
    "I need this fixed by {deadline}.",
    "My deadline is {deadline}.",
    "This has to be sorted by {deadline}.",
    "I need an answer by {deadline}.",
    "We need it resolved by {deadline}.",
    "Our deadline is {deadline}.",
    "Please keep in mind my deadline is {deadline}.",
    "Just so you know, I need this fixed by {deadline}.",
};
inline constexpr std::string_view kStateCityTexts[] = {
    "I work out of the {city} office.",
    "I'm based in our {city} office.",
    "My office is in {city}.",
    "I work from the {city} office.",
    "I sit in the {city} office.",
    "FYI, I'm at the {city} office.",
    "Just so you know, I'm based in {city}.",
    "My office is the {city} one.",
};
inline constexpr std::string_view kStateCompanyTexts[] = {
    "I work at {company}.",           "I'm with {company}.",
    "My company is {company}.",       "I work for {company}, by the way.",
    "I'm writing from {company}.",    "Our company is {company}.",
    "I'm a customer from {company}.", "Just so you know, I'm with {company}.",
};
inline constexpr Phrasings kStateName{"state.name", kStateNameTexts};
inline constexpr Phrasings kStateNameTeam{"state.name_team", kStateNameTeamTexts};
inline constexpr Phrasings kStateTeam{"state.team", kStateTeamTexts};
inline constexpr Phrasings kStateDevice{"state.device", kStateDeviceTexts};
inline constexpr Phrasings kStateTicket{"state.ticket", kStateTicketTexts};
inline constexpr Phrasings kStateOrder{"state.order", kStateOrderTexts};
inline constexpr Phrasings kStateDeadline{"state.deadline", kStateDeadlineTexts};
inline constexpr Phrasings kStateCity{"state.city", kStateCityTexts};
inline constexpr Phrasings kStateCompany{"state.company", kStateCompanyTexts};

// Recall questions. Entries 8-10 of each list (corpus v5) are training phrasings that give
// every opening of a held-out question ("Do you know ...", index 3) a training question with
// the same opening, so the held-out questions test unseen sentences, not an opening that no
// training question of the kind ever used.
inline constexpr std::string_view kRecallNameTexts[] = {
    "What's my name?",
    "Do you remember my name?",
    "What did I say my name was?",
    "Do you know what my name is?",
    "Who am I?",
    "What name did I give you?",
    "Do you know my name?",
    "What's my name again?",
    "Do you recall my name?",
    "Remind me, what's my name?",
    "Can you tell me my name?",
};
inline constexpr std::string_view kRecallTeamTexts[] = {
    "Which team did I say I'm on?",   "What team am I on?",        "Do you remember my team?",
    "Do you know which team I'm on?", "Which team do I work on?",  "What's my team again?",
    "What team did I mention?",       "Which team am I on again?", "Do you know my team?",
    "Remind me, which team am I on?", "Can you tell me my team?",
};
inline constexpr std::string_view kRecallDeviceTexts[] = {
    "What laptop did I say I have?", "Which laptop am I using?",
    "Do you remember my laptop?",    "Do you know what laptop I use?",
    "What machine do I have?",       "What laptop do I use?",
    "Which laptop did I mention?",   "What's my laptop again?",
    "Do you know my laptop model?",  "Remind me, which laptop do I have?",
    "Can you tell me my laptop?",
};
inline constexpr std::string_view kRecallOsTexts[] = {
    "Which OS am I running?",
    "What operating system did I say I use?",
    "Do you remember my OS?",
    "Do you know which OS I'm on?",
    "What OS is my laptop on?",
    "Which operating system do I have?",
    "What OS did I mention?",
    "What's my OS again?",
    "Do you know my OS?",
    "Remind me, which OS do I run?",
    "Can you tell me my operating system?",
};
inline constexpr std::string_view kRecallTicketTexts[] = {
    "Which ticket did I mention?",        "What was my ticket number?",
    "Do you remember my ticket number?",  "Do you know which ticket is mine?",
    "What ticket number did I give you?", "Which ticket is mine?",
    "What's my ticket number again?",     "Which ticket did I say was mine?",
    "Do you know my ticket number?",      "Remind me of my ticket number.",
    "Can you tell me my ticket number?",
};
inline constexpr std::string_view kRecallOrderTexts[] = {
    "What was my order number?",        "Do you remember my order number?",
    "Which order did I mention?",       "Do you know which order is mine?",
    "What's my order number again?",    "What order number did I give you?",
    "Which order was I asking about?",  "Which order did I say was mine?",
    "Do you know my order number?",     "Remind me of my order number.",
    "Can you tell me my order number?",
};
inline constexpr std::string_view kRecallDeadlineTexts[] = {
    "When did I say my deadline is?", "What's my deadline?",
    "Do you remember my deadline?",   "Do you know when I need this by?",
    "When do I need this by?",        "What deadline did I mention?",
    "By when did I say I need it?",   "What's my deadline again?",
    "Do you know my deadline?",       "Remind me of my deadline.",
    "Can you tell me my deadline?",
};
inline constexpr std::string_view kRecallCityTexts[] = {
    "Which office do I work from?", "What city did I say my office is in?",
    "Do you remember my office?",   "Do you know which office I'm in?",
    "Where's my office?",           "Which office did I mention?",
    "What city am I in?",           "Which office am I in again?",
    "Do you know my office?",       "Remind me where my office is.",
    "Can you tell me my city?",
};
inline constexpr std::string_view kRecallCompanyTexts[] = {
    "Which company did I say I work for?",
    "Where do I work?",
    "Do you remember my company?",
    "Do you know which company I'm with?",
    "What's my company?",
    "What company did I mention?",
    "Who do I work for?",
    "What's my company again?",
    "Do you know my company?",
    "Remind me where I work.",
    "Can you tell me my company?",
};
inline constexpr Phrasings kRecallName{"recall.name", kRecallNameTexts};
inline constexpr Phrasings kRecallTeam{"recall.team", kRecallTeamTexts};
inline constexpr Phrasings kRecallDevice{"recall.device", kRecallDeviceTexts};
inline constexpr Phrasings kRecallOs{"recall.os", kRecallOsTexts};
inline constexpr Phrasings kRecallTicket{"recall.ticket", kRecallTicketTexts};
inline constexpr Phrasings kRecallOrder{"recall.order", kRecallOrderTexts};
inline constexpr Phrasings kRecallDeadline{"recall.deadline", kRecallDeadlineTexts};
inline constexpr Phrasings kRecallCity{"recall.city", kRecallCityTexts};
inline constexpr Phrasings kRecallCompany{"recall.company", kRecallCompanyTexts};

// ---- Small talk ----

inline constexpr std::string_view kGreetTexts[] = {
    "Hi!",
    "Hello.",
    "Good morning!",
    "Hi there, good morning.",
    "Hi there.",
    "Hello, anyone there?",
    "Good afternoon.",
    "Hello there!",
};
inline constexpr std::string_view kHowTexts[] = {
    "How are you?",          "How's it going?",       "How are you doing today?",
    "How's it going today?", "How's your day going?", "All good with you?",
    "How are things today?", "How are you doing?",
};
inline constexpr std::string_view kCapabilitiesTexts[] = {
    "What can you do?",         "What do you help with?",
    "What are you able to do?", "What can you help me with?",
    "How can you help me?",     "What kind of things can you help with?",
    "What are you for?",        "What kind of things can you do?",
};
inline constexpr std::string_view kWhoTexts[] = {
    "Who are you?",
    "Are you a bot?",
    "What are you?",
    "Who is this, a bot?",
    "Is this a person or a bot?",
    "Who is this?",
    "Are you human?",
    "Are you a person?",
};
inline constexpr std::string_view kThanksTexts[] = {
    "Thanks!",
    "Thank you.",
    "Thanks, that helps.",
    "Great, thank you!",
    "Perfect, thank you.",
    "Cheers!",
    "Thanks for checking.",
    "That helps, thanks!",
};
inline constexpr std::string_view kByeTexts[] = {
    "Bye!",           "That's all, thanks.", "Goodbye.",         "That's all for now, bye!",
    "See you later.", "I'm done, thanks.",   "Have a good day!", "All done, goodbye.",
};
inline constexpr Phrasings kGreet{"talk.greet", kGreetTexts};
inline constexpr Phrasings kHow{"talk.how", kHowTexts};
inline constexpr Phrasings kCapabilities{"talk.capabilities", kCapabilitiesTexts};
inline constexpr Phrasings kWho{"talk.who", kWhoTexts};
inline constexpr Phrasings kThanks{"talk.thanks", kThanksTexts};
inline constexpr Phrasings kBye{"talk.bye", kByeTexts};

// ---- Out of scope ({city}, {topic}) ----

inline constexpr std::string_view kFlightTexts[] = {
    "Can you book me a flight to {city}?",
    "Book a flight to {city} for Friday.",
    "I need a plane ticket to {city}.",
    "Could you book a flight to {city} for me?",
    "Please book my trip to {city}.",
    "Find me a cheap flight to {city}.",
    "Can you reserve a flight to {city} for me?",
    "I need a flight to {city}, can you book it?",
};
inline constexpr std::string_view kPoemTexts[] = {
    "Write a poem about {topic}.",        "Can you write me a short poem about {topic}?",
    "Compose a haiku about {topic}.",     "Could you write a poem about {topic}?",
    "I'd love a limerick about {topic}.", "Write a song about {topic}.",
    "Give me a poem about {topic}.",      "Can you write a short song about {topic}?",
};
inline constexpr std::string_view kWeatherTexts[] = {
    "What's the weather in {city}?",
    "Will it rain in {city} tomorrow?",
    "How hot is it in {city} today?",
    "Could you tell me the weather in {city}?",
    "Is it sunny in {city}?",
    "What's the forecast for {city}?",
    "Do I need an umbrella in {city} today?",
    "Will it be sunny in {city} tomorrow?",
};
inline constexpr std::string_view kPasswordTexts[] = {
    "Reset my password for me.",
    "Can you reset my password?",
    "Please change my password.",
    "Could you reset the password on my account?",
    "I forgot my password, reset it please.",
    "Unlock my account and reset my password.",
    "Can you set a new password for me?",
    "Please reset my account password.",
};
inline constexpr std::string_view kInventTexts[] = {
    "Just make up a ticket number for me.",
    "Invent a ticket number so I can test.",
    "Give me any ticket number.",
    "Could you make up a ticket number?",
    "Pick a random ticket number and look it up.",
    "Create a fake ticket number for my demo.",
    "Make up a ticket and tell me its status.",
    "Just invent a ticket number, any will do.",
};
inline constexpr std::string_view kOtherTexts[] = {
    "Tell me a joke.",
    "Translate this email into French.",
    "Can you order lunch for the team?",
    "Can you write some Python code for me?",
    "Who won the game last night?",
    "Help me write a cover letter.",
    "What's a good recipe for dinner?",
    "Could you tell me a joke?",
};
inline constexpr Phrasings kFlight{"refuse.flight", kFlightTexts};
inline constexpr Phrasings kPoem{"refuse.poem", kPoemTexts};
inline constexpr Phrasings kWeather{"refuse.weather", kWeatherTexts};
inline constexpr Phrasings kPassword{"refuse.password", kPasswordTexts};
inline constexpr Phrasings kInvent{"refuse.invent", kInventTexts};
inline constexpr Phrasings kOther{"refuse.other", kOtherTexts};

// Every user phrasing list, for tests that check the split.
inline constexpr Phrasings kAllUserPhrasings[] = {
    kAskStatus,
    kAskTeam,
    kAskPriority,
    kAskAbout,
    kAskReporter,
    kAskSummary,
    kFollowStatus,
    kFollowTeam,
    kFollowPriority,
    kFollowReporter,
    kFollowAbout,
    kMyStatus,
    kMyTeam,
    kMySummary,
    kLatest,
    kGiveNumber,
    kAskJira,
    kStateName,
    kStateNameTeam,
    kStateTeam,
    kStateDevice,
    kStateTicket,
    kStateOrder,
    kStateDeadline,
    kStateCity,
    kStateCompany,
    kRecallName,
    kRecallTeam,
    kRecallDevice,
    kRecallOs,
    kRecallTicket,
    kRecallOrder,
    kRecallDeadline,
    kRecallCity,
    kRecallCompany,
    kGreet,
    kHow,
    kCapabilities,
    kWho,
    kThanks,
    kBye,
    kFlight,
    kPoem,
    kWeather,
    kPassword,
    kInvent,
    kOther,
};

// ---- The agent's answers (shared by both splits) ----
// Every ticket answer names the owning team: the instructions ask for it.

inline constexpr std::string_view kSayStatus[] = {
    "Ticket {id} ({title}) is {status}. The {team} team should own it.",
    "Ticket {id} is {status}. It's about \"{title}\", so it belongs with the {team} team.",
    "It's {status}: ticket {id}, \"{title}\", with {priority} priority. The {team} team should "
    "own it.",
};
inline constexpr std::string_view kSayTeam[] = {
    "The {team} team should own ticket {id}: it's about \"{title}\".",
    "Ticket {id} ({title}) belongs with the {team} team.",
    "Ticket {id} is about \"{title}\", so the {team} team should own it.",
};
inline constexpr std::string_view kSayPriority[] = {
    "Ticket {id} ({title}) has {priority} priority; the {team} team should own it.",
    "It's {priority} priority. Ticket {id} is about \"{title}\" and is {status}; the {team} team "
    "should own it.",
};
inline constexpr std::string_view kSayAbout[] = {
    "Ticket {id} is about \"{title}\". It's {status}, and the {team} team should own it.",
    "Ticket {id}: {title}. The {team} team should own it; it's currently {status}.",
};
inline constexpr std::string_view kSayReporter[] = {
    "{reporter} reported ticket {id} ({title}). The {team} team should own it.",
    "Ticket {id} was reported by {reporter}. It's about \"{title}\" and belongs with the {team} "
    "team.",
};
inline constexpr std::string_view kSaySummary[] = {
    "Ticket {id} ({title}) is {status} with {priority} priority, reported by {reporter}. The "
    "{team} team should own it.",
    "Here's ticket {id}: \"{title}\", {status}, {priority} priority, reported by {reporter}. It "
    "belongs with the {team} team.",
};
inline constexpr std::string_view kSayNotFound[] = {
    "Ticket {id} was not found. Could you double-check the number?",
    "I looked, but ticket {id} was not found. Is the number right?",
};

// Follow-ups, answered from the ticket already in the conversation.
inline constexpr std::string_view kSayFollowStatus[] = {"It's {status}.",
                                                        "Ticket {id} is {status}."};
inline constexpr std::string_view kSayFollowTeam[] = {"The {team} team should own it.",
                                                      "It belongs with the {team} team."};
inline constexpr std::string_view kSayFollowPriority[] = {"It has {priority} priority.",
                                                          "Ticket {id} is {priority} priority."};
inline constexpr std::string_view kSayFollowReporter[] = {"It was reported by {reporter}.",
                                                          "{reporter} reported it."};
inline constexpr std::string_view kSayFollowAbout[] = {"It's about \"{title}\".",
                                                       "Ticket {id} is about \"{title}\"."};

inline constexpr std::string_view kSayAskNumber[] = {
    "Sure! Which ticket number should I look up?",
    "Happy to help. What's the ticket number?",
    "I can check that. Which ticket number is it?",
};
inline constexpr std::string_view kSayAskNumberLatest[] = {
    "I can't tell which ticket is the latest, and I won't guess a number. Which ticket number "
    "should I look up?",
    "I don't know which ticket is the newest, and I never invent ticket numbers. What's the "
    "ticket number?",
};

inline constexpr std::string_view kSayJiraOne[] = {
    "I found one Jira issue: {key}, \"{summary}\".",
    "Jira has one match: {key} ({summary}).",
};
inline constexpr std::string_view kSayJiraTwo[] = {
    "I found 2 Jira issues: {key} ({summary}) and {key2} ({summary2}).",
    "Jira has two matches: {key}, \"{summary}\", and {key2}, \"{summary2}\".",
};
inline constexpr std::string_view kSayJiraNone[] = {
    "I searched Jira for \"{query}\" and found no matching issues.",
    "There are no matching issues in Jira for \"{query}\".",
};
inline constexpr std::string_view kSayJiraDenied[] = {
    "The Jira search for \"{query}\" was not approved, so I did not run it.",
    "That search was not approved, so I did not run it. I can still look up a ticket if you give "
    "me its number.",
};

inline constexpr std::string_view kSayAckName[] = {
    "Nice to meet you, {name}! How can I help with your tickets?",
    "Hi {name}! What can I do for you today?",
};
inline constexpr std::string_view kSayAckNameTeam[] = {
    "Nice to meet you, {name}! Noted that you're on the {team} team. How can I help?",
    "Hi {name}! Got it, you're on the {team} team. What can I do for you?",
};
inline constexpr std::string_view kSayAckTeam[] = {
    "Thanks, noted that you're on the {team} team.",
    "Got it: you're on the {team} team. How can I help?",
};
inline constexpr std::string_view kSayAckDevice[] = {
    "Noted: you use a {device} running {os}.",
    "Thanks, I'll keep in mind you're on a {device} with {os}.",
};
inline constexpr std::string_view kSayAckTicket[] = {
    "Noted: your ticket is {id}. Just ask and I'll look it up.",
    "Got it, ticket {id}. Let me know what you'd like to know about it.",
};
inline constexpr std::string_view kSayAckOrder[] = {
    "Noted, your order number is {order}.",
    "Got it: order {order}. How can I help?",
};
inline constexpr std::string_view kSayAckDeadline[] = {
    "Understood, you need it by {deadline}.",
    "Noted: your deadline is {deadline}.",
};
inline constexpr std::string_view kSayAckCity[] = {
    "Noted, you work from the {city} office.",
    "Thanks! I'll remember you're in the {city} office.",
};
inline constexpr std::string_view kSayAckCompany[] = {
    "Thanks, noted that you work at {company}.",
    "Got it: you're with {company}. How can I help?",
};

inline constexpr std::string_view kSayRecallName[] = {"Your name is {name}.",
                                                      "You told me your name is {name}."};
inline constexpr std::string_view kSayRecallTeam[] = {"You said you're on the {team} team.",
                                                      "You're on the {team} team."};
inline constexpr std::string_view kSayRecallDevice[] = {"You said you use a {device}.",
                                                        "Your laptop is a {device}."};
inline constexpr std::string_view kSayRecallOs[] = {"You said you're running {os}.",
                                                    "Your laptop runs {os}."};
inline constexpr std::string_view kSayRecallTicket[] = {"You mentioned ticket {id}.",
                                                        "Your ticket number is {id}."};
inline constexpr std::string_view kSayRecallOrder[] = {"Your order number is {order}.",
                                                       "You mentioned order {order}."};
inline constexpr std::string_view kSayRecallDeadline[] = {"You said you need it by {deadline}.",
                                                          "Your deadline is {deadline}."};
inline constexpr std::string_view kSayRecallCity[] = {"You work from the {city} office.",
                                                      "You said your office is in {city}."};
inline constexpr std::string_view kSayRecallCompany[] = {"You work at {company}.",
                                                         "You said you're with {company}."};

inline constexpr std::string_view kSayGreet[] = {
    "Hello! I triage support tickets: I can look up a ticket by its number, say which team "
    "should own it, and search Jira. How can I help?",
    "Hi! Give me a ticket number and I'll look it up and say which team should own it. I can "
    "also search Jira.",
};
inline constexpr std::string_view kSayHow[] = {
    "I'm doing well, thanks! Is there a ticket you'd like me to look up?",
    "All good here. Do you have a ticket number for me to check?",
};
inline constexpr std::string_view kSayCapabilities[] = {
    "I can look up support tickets by number, tell you their status, priority and reporter, say "
    "which team should own them, and search Jira (each search needs approval).",
    "I triage support tickets: give me a ticket number and I'll look it up and say which team "
    "should own it. I can also search Jira, with a human approving each search.",
};
inline constexpr std::string_view kSayWho[] = {
    "I'm the support triage assistant, a bot. I look up tickets, say which team should own "
    "them, and search Jira.",
    "I'm an automated triage assistant. I can look up support tickets and search Jira.",
};
inline constexpr std::string_view kSayThanks[] = {
    "You're welcome! Let me know if another ticket needs a look.",
    "Happy to help!",
};
inline constexpr std::string_view kSayBye[] = {
    "Goodbye! Come back anytime you need a ticket triaged.",
    "Bye! Have a good day.",
};

inline constexpr std::string_view kSayRefuseFlight[] = {
    "Sorry, I can't book flights. I can look up support tickets, say which team should own "
    "them, and search Jira.",
    "Booking travel is outside what I do. I can look up support tickets and search Jira.",
};
inline constexpr std::string_view kSayRefusePoem[] = {
    "Sorry, I don't write poems or songs. I can look up support tickets, say which team should "
    "own them, and search Jira.",
    "That's outside what I do. I can look up support tickets and search Jira.",
};
inline constexpr std::string_view kSayRefuseWeather[] = {
    "Sorry, I don't have weather information. I can look up support tickets, say which team "
    "should own them, and search Jira.",
    "I can't check the weather. I can look up support tickets and search Jira.",
};
inline constexpr std::string_view kSayRefusePassword[] = {
    "I can't reset passwords myself. If there's a support ticket about it, give me the number "
    "and I'll look it up and say which team should own it.",
    "Sorry, I can't change passwords. I can look up a ticket about it if you give me the "
    "number.",
};
inline constexpr std::string_view kSayRefuseInvent[] = {
    "I never invent ticket numbers. If you give me a real ticket number, I'll look it up.",
    "Sorry, I won't make up a ticket number. Tell me a real one and I'll look it up.",
};
inline constexpr std::string_view kSayRefuseOther[] = {
    "Sorry, that's outside what I can help with. I can look up support tickets, say which team "
    "should own them, and search Jira.",
    "I can't help with that. I can look up support tickets and search Jira.",
};

// ---- Ticket contents (shared: titles are the routing signal, not a test of the split) ----

// Owning teams and the title words that route to them.
inline constexpr std::string_view kTicketTeams[] = {"billing", "identity", "mobile", "networking",
                                                    "data"};
inline constexpr std::string_view kBillingTitles[] = {
    "Refund not received",
    "Invoice shows the wrong amount",
    "Charged twice this month",
    "Refund still pending after two weeks",
    "Invoice missing VAT number",
    "Card payment declined at checkout",
    "Wrong currency on invoice",
    "Refund issued to an old card",
    "Duplicate invoice for one order",
    "Charged after cancelling the plan",
};
inline constexpr std::string_view kIdentityTitles[] = {
    "Cannot log in after password reset",
    "SSO login loops back to the start",
    "Password reset email never arrives",
    "Two-factor code rejected",
    "Locked out after too many login attempts",
    "SSO fails for new employees",
    "Login page shows an error",
    "Password expired but no reset link",
    "SSO certificate expired",
    "Login works only in private windows",
};
inline constexpr std::string_view kMobileTitles[] = {
    "App crashes on startup",
    "iOS app crashes when uploading photos",
    "Android app freezes on the home screen",
    "App crash after the latest update",
    "Push notifications stopped in the app",
    "App drains the battery",
    "Mobile app shows a blank screen",
    "App crashes when opening settings",
    "Android app crash on older phones",
    "App keeps signing me out of the feed",
};
inline constexpr std::string_view kNetworkingTitles[] = {
    "VPN drops every few minutes",
    "High latency to the EU region",
    "DNS lookups time out",
    "VPN will not connect from home",
    "Latency spikes during video calls",
    "DNS resolves to an old address",
    "Packet loss on the office VPN",
    "VPN slow on hotel wifi",
    "DNS errors for the intranet",
    "High latency on the guest network",
};
inline constexpr std::string_view kDataTitles[] = {
    "CSV export is empty",
    "Weekly report is missing rows",
    "Report export times out",
    "Export to Excel shows wrong dates",
    "Sales report totals do not match",
    "Scheduled report was never sent",
    "Data export stuck halfway",
    "Report filters are ignored",
    "Export drops the last column",
    "Monthly report shows old numbers",
};
// Indexed like kTicketTeams.
inline constexpr std::span<const std::string_view> kTitlesByTeam[] = {
    kBillingTitles, kIdentityTitles, kMobileTitles, kNetworkingTitles, kDataTitles};

inline constexpr std::string_view kStatuses[] = {"open", "in progress", "waiting on customer",
                                                 "resolved", "closed"};
inline constexpr std::string_view kPriorities[] = {"low", "medium", "high", "urgent"};

// Jira: search words per owning team (indexed like kTicketTeams), the project key of the
// issues found, and the endings that turn search words into an issue summary.
inline constexpr std::string_view kBillingQueries[] = {"refund delays",      "double charge",
                                                       "invoice VAT number", "failed card payment",
                                                       "prorated refund",    "invoice PDF missing"};
inline constexpr std::string_view kIdentityQueries[] = {"SSO redirect loop", "password reset email",
                                                        "two-factor codes",  "account lockout",
                                                        "login timeout",     "SAML certificate"};
inline constexpr std::string_view kMobileQueries[] = {"app crash on startup", "iOS app crash",
                                                      "Android app freeze",   "push notifications",
                                                      "app crash on upload",  "offline mode"};
inline constexpr std::string_view kNetworkingQueries[] = {"VPN disconnects", "DNS timeouts",
                                                          "high latency",    "packet loss",
                                                          "proxy errors",    "VPN on hotel wifi"};
inline constexpr std::string_view kDataQueries[] = {"CSV export",       "report totals wrong",
                                                    "export timeout",   "scheduled report emails",
                                                    "dashboard export", "missing report rows"};
inline constexpr std::span<const std::string_view> kQueriesByTeam[] = {
    kBillingQueries, kIdentityQueries, kMobileQueries, kNetworkingQueries, kDataQueries};
inline constexpr std::string_view kJiraProjects[] = {"BILL", "IAM", "MOB", "NET", "DATA"};
inline constexpr std::string_view kJiraSummaryEndings[] = {
    "after the last release", "for EU customers", "on Windows",     "on large accounts",
    "in the web app",         "since Monday",     "for some users", "during peak hours"};

// ---- People, places, things (train / held-out lists are disjoint) ----

inline constexpr std::string_view kFirstNamesTrain[] = {
    "Dana",  "Priya",  "Marcus", "Elena", "Tom",   "Aisha", "Kenji", "Sofia", "Liam",   "Noor",
    "Mateo", "Hannah", "Omar",   "Grace", "Lucas", "Mei",   "Ravi",  "Chloe", "Daniel", "Fatima",
    "Jonas", "Ingrid", "Carlos", "Yuki",  "Ben",   "Zara",  "Felix", "Amara", "Hugo",   "Leila",
    "Sam",   "Nadia",  "Victor", "Olga",  "Ethan", "Rosa",  "Kofi",  "Anya",  "Diego",  "Freya",
    "Isaac", "Maya",   "Pavel",  "Lena",  "Tariq", "Clara", "Jamal", "Eva",
};
inline constexpr std::string_view kFirstNamesHeldOut[] = {
    "Beatriz", "Thabo", "Signe", "Rohan",  "Ximena", "Malik", "Astrid",  "Emeka",
    "Yara",    "Bodhi", "Ines",  "Callum", "Soren",  "Keiko", "Wanjiru", "Teodor",
};
inline constexpr std::string_view kLastNamesTrain[] = {
    "Whitfield", "Patel",     "Nguyen",  "Okafor", "Schmidt", "Rossi",    "Tanaka",   "Kowalski",
    "Haddad",    "Lindqvist", "Moreau",  "Garcia", "Chen",    "Novak",    "Adeyemi",  "Brennan",
    "Costa",     "Fischer",   "Ivanova", "Jensen", "Kim",     "Larsen",   "Mendes",   "Nakamura",
    "O'Brien",   "Petrov",    "Quinn",   "Reyes",  "Silva",   "Thompson", "Udeh",     "Varga",
    "Walsh",     "Yilmaz",    "Zhou",    "Abbott", "Bauer",   "Dubois",   "Eriksson", "Farouk",
};
inline constexpr std::string_view kLastNamesHeldOut[] = {
    "Achterberg", "Balogun", "Castellanos", "Dvorak", "Ekwueme",  "Fontaine", "Gallagher",
    "Horvath",    "Iwasaki", "Jovanovic",   "Kapoor", "Lindgren", "Mwangi",   "Oyelaran",
};
inline constexpr std::string_view kCompaniesTrain[] = {
    "Acme Logistics",     "Northwind Traders",  "Bluefin Labs",      "Greenfield Foods",
    "Orbit Media",        "Summit Health",      "Pinecrest Bank",    "Redwood Analytics",
    "Harbor Freight Co",  "Nimbus Software",    "Copperleaf Energy", "Silverline Travel",
    "Brightpath Schools", "Ironbridge Legal",   "Maple Retail",      "Quartz Robotics",
    "Sunrise Dental",     "Tidewater Shipping", "Vantage Insurance", "Willow Studios",
};
inline constexpr std::string_view kCompaniesHeldOut[] = {
    "Kestrel Aerospace", "Lumen Biotech",    "Marigold Hotels",  "Obsidian Security",
    "Pelican Fisheries", "Saffron Kitchens", "Juniper Textiles", "Zephyr Wind Power",
};
inline constexpr std::string_view kCitiesTrain[] = {
    "Berlin",    "Toronto", "Lisbon", "Nairobi", "Austin", "Dublin", "Singapore", "Madrid",
    "Chicago",   "Oslo",    "Seoul",  "Denver",  "Lyon",   "Krakow", "Manila",    "Boston",
    "Cape Town", "Mumbai",  "Sydney", "Prague",  "Vienna", "Lagos",  "Montreal",  "Helsinki",
};
inline constexpr std::string_view kCitiesHeldOut[] = {
    "Porto", "Accra", "Osaka", "Tallinn", "Valparaiso", "Hanoi", "Calgary", "Zagreb",
};
// Training deadlines are composed from these parts (Generator::Deadline); the held-out
// ones are whole phrases that no composition produces.
inline constexpr std::string_view kDeadlineDays[] = {"Monday",   "Tuesday", "Wednesday",
                                                     "Thursday", "Friday",  "Sunday"};
inline constexpr std::string_view kDeadlineTimesOfDay[] = {"morning", "afternoon", "evening",
                                                           "night", "lunchtime"};
inline constexpr std::string_view kDeadlineMonths[] = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
inline constexpr std::string_view kDeadlineEnds[] = {
    "the day",     "the week",   "the month",   "the sprint", "next month", "the year",
    "next sprint", "next year",  "the release", "the launch", "the audit",  "the trial",
    "the term",    "the season", "the cycle",   "the pilot",  "next cycle", "the migration"};
inline constexpr std::string_view kDeadlinesHeldOut[] = {
    "Tuesday afternoon", "October 9", "the end of the quarter",
    "Saturday",          "April 21",  "the end of next week",
};

// Shared between the splits: not names of people or places.
inline constexpr std::string_view kUserTeams[] = {
    "payments", "design",   "sales", "platform",   "marketing", "finance",
    "security", "research", "legal", "operations", "mobile",    "billing",
};
inline constexpr std::string_view kPoemTopics[] = {
    "the ocean", "Mondays", "coffee", "my cat", "autumn", "the office", "spring rain", "the moon"};
struct Laptop {
  std::string_view name;
  bool mac;  // runs macOS; otherwise Windows or Linux
};
inline constexpr Laptop kLaptops[] = {
    {"ThinkPad X1 Carbon", false}, {"MacBook Pro", true},     {"MacBook Air", true},
    {"Dell XPS 13", false},        {"Surface Laptop", false}, {"Dell Latitude", false},
    {"Framework 13", false},       {"Lenovo Yoga", false},
};
inline constexpr std::string_view kMacOses[] = {"macOS Sonoma", "macOS Ventura", "macOS Sequoia"};
inline constexpr std::string_view kPcOses[] = {"Windows 11", "Windows 10", "Ubuntu 22.04",
                                               "Fedora 40"};

}  // namespace agentry::train::phrases
