// The state store on a real SQLite file in a temporary directory: sessions, transcripts,
// idempotent retries, memory search, usage by session and day, the audit chain (and what
// tampering does to it), snapshots, schema versions, and reopening.
#include "runtime/state/store.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "common/sha256.h"
#include "runtime/state/audit_chain.h"
#include "runtime/state/tests/read_only_volume.h"
#include "runtime/state/tests/temp_dir.h"

namespace agentry::state {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    StateStoreOptions options;
    options.now_ms = [this] { return now_ms_.load(); };
    StatusOr<std::unique_ptr<StateStore>> s = StateStore::Open(dir_.path(), options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }

  v1::Session Create(const std::string& id, const std::string& user = "alice") {
    v1::CreateSessionRequest r;
    r.set_id(id);
    r.set_agent("team-a/triage");
    r.set_on_behalf_of(user);
    StatusOr<v1::Session> s = store_->CreateSession(r);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : v1::Session{};
  }

  static v1::AppendEventsRequest Events(
      const std::string& session,
      const std::vector<std::pair<std::string, std::string>>& kinds_and_texts,
      const std::string& request_id = "") {
    v1::AppendEventsRequest r;
    r.set_session_id(session);
    r.set_request_id(request_id);
    for (const auto& [kind, text] : kinds_and_texts) {
      v1::Event* e = r.add_events();
      e->set_kind(kind);
      e->set_content(text);
    }
    return r;
  }

  // Runs SQL on the database file directly, as someone with access to the volume might.
  void Tamper(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_.path() + "/state.db").c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << error;
    sqlite3_free(error);
    sqlite3_close(db);
  }

  TempDir dir_;
  std::atomic<int64_t> now_ms_{1764979200000};  // 2025-12-06 00:00:00 UTC
  std::unique_ptr<StateStore> store_;
};

TEST_F(StoreTest, SessionsAreCreatedOnceAndListedNewestFirst) {
  const v1::Session a = Create("s-1");
  EXPECT_EQ(a.state(), "active");
  EXPECT_EQ(a.next_seq(), 1);
  EXPECT_EQ(a.metadata_json(), "{}");
  now_ms_ += 1000;
  Create("s-2", "bob");
  // Creating again with the same agent and user returns the session; another user may not
  // take it over.
  EXPECT_EQ(Create("s-1").created_unix_ms(), a.created_unix_ms());
  v1::CreateSessionRequest other;
  other.set_id("s-1");
  other.set_agent("team-a/triage");
  other.set_on_behalf_of("mallory");
  EXPECT_EQ(store_->CreateSession(other).status().code(), StatusCode::kAlreadyExists);

  StatusOr<v1::ListSessionsResponse> list = store_->ListSessions({});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->sessions_size(), 2);
  EXPECT_EQ(list->sessions(0).id(), "s-2");
  EXPECT_EQ(list->sessions(1).id(), "s-1");

  v1::UpdateSessionRequest update;
  update.set_id("s-1");
  update.set_state("closed");
  update.set_metadata_json(R"({"b":1,"a":2})");
  StatusOr<v1::Session> updated = store_->UpdateSession(update);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->state(), "closed");
  EXPECT_EQ(updated->metadata_json(), R"({"a":2,"b":1})");
  v1::ListSessionsRequest closed;
  closed.set_state("closed");
  EXPECT_EQ(store_->ListSessions(closed)->sessions_size(), 1);
}

TEST_F(StoreTest, BadInputIsRefusedWithTheFieldNamed) {
  v1::CreateSessionRequest r;
  r.set_id("../etc");
  r.set_agent("a");
  EXPECT_NE(store_->CreateSession(r).status().message().find("id: only"), std::string::npos);
  r.set_id("ok");
  r.set_metadata_json("[1]");
  EXPECT_NE(store_->CreateSession(r).status().message().find("metadata_json: not a JSON object"),
            std::string::npos);
  Create("s");
  EXPECT_NE(store_->AppendEvents(Events("s", {{"robot", "x"}}))
                .status()
                .message()
                .find("events[0].kind: one of user, assistant, tool, system"),
            std::string::npos);
  EXPECT_EQ(store_->AppendEvents(Events("nope", {{"user", "x"}})).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->AppendEvents(Events("s", {})).status().code(), StatusCode::kInvalidArgument);
  v1::GetUsageRequest usage;
  usage.set_day("yesterday");
  EXPECT_EQ(store_->GetUsage(usage).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, EventsAreNumberedInOrderAndReadBackFromAnyPoint) {
  Create("s");
  StatusOr<v1::AppendEventsResponse> first =
      store_->AppendEvents(Events("s", {{"user", "hello"}, {"assistant", "hi — ¿qué tal? 👋"}}));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(std::vector<int64_t>(first->seqs().begin(), first->seqs().end()),
            (std::vector<int64_t>{1, 2}));
  v1::AppendEventsRequest tool = Events("s", {{"tool", R"({"ok":true})"}});
  tool.mutable_events(0)->set_name("lookup");
  tool.mutable_events(0)->set_tool_call_id("call-1");
  ASSERT_TRUE(store_->AppendEvents(tool).ok());

  v1::ReadTranscriptRequest read;
  read.set_session_id("s");
  StatusOr<v1::ReadTranscriptResponse> all = store_->ReadTranscript(read);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->events_size(), 3);
  EXPECT_EQ(all->next_seq(), 4);
  EXPECT_EQ(all->events(1).content(), "hi — ¿qué tal? 👋");
  EXPECT_EQ(all->events(2).name(), "lookup");
  EXPECT_EQ(all->events(2).tool_call_id(), "call-1");
  read.set_after_seq(1);
  read.set_limit(1);
  StatusOr<v1::ReadTranscriptResponse> page = store_->ReadTranscript(read);
  ASSERT_EQ(page->events_size(), 1);
  EXPECT_EQ(page->events(0).seq(), 2);
  EXPECT_TRUE(page->more());
  read.set_after_seq(2);
  read.set_limit(0);
  EXPECT_FALSE(store_->ReadTranscript(read)->more());
  EXPECT_FALSE(all->more());
}

TEST_F(StoreTest, ALargeTranscriptComesInPagesBelowGrpcsMessageLimit) {
  Create("s");
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(store_->AppendEvents(Events("s", {{"user", std::string(1 << 20, 'a' + i)}})).ok());
  }
  v1::ReadTranscriptRequest read;
  read.set_session_id("s");
  std::string letters;
  int pages = 0;
  bool more = true;
  while (more) {
    StatusOr<v1::ReadTranscriptResponse> page = store_->ReadTranscript(read);
    ASSERT_TRUE(page.ok());
    ++pages;
    for (const v1::Event& e : page->events()) letters += e.content()[0];
    read.set_after_seq(page->events(page->events_size() - 1).seq());
    more = page->more();
  }
  EXPECT_EQ(letters, "abcdef");
  EXPECT_EQ(pages, 3);
}

TEST_F(StoreTest, ARetriedAppendAppliesOnceAndAStaleWriterIsRefused) {
  Create("s");
  StatusOr<v1::AppendEventsResponse> first =
      store_->AppendEvents(Events("s", {{"user", "a"}}, "req-1"));
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->replayed());
  StatusOr<v1::AppendEventsResponse> retry =
      store_->AppendEvents(Events("s", {{"user", "a"}}, "req-1"));
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->replayed());
  EXPECT_EQ(retry->seqs(0), first->seqs(0));
  EXPECT_EQ(store_->GetSession("s")->next_seq(), 2);
  // The same id for another method is a caller bug, not a replay.
  v1::PutMemoryRequest memory;
  memory.set_scope("alice");
  memory.set_content("x");
  memory.set_request_id("req-1");
  EXPECT_EQ(store_->PutMemory(memory).status().code(), StatusCode::kInvalidArgument);

  v1::AppendEventsRequest stale = Events("s", {{"user", "b"}});
  stale.set_expected_next_seq(1);
  EXPECT_EQ(store_->AppendEvents(stale).status().code(), StatusCode::kAborted);
  stale.set_expected_next_seq(2);
  EXPECT_TRUE(store_->AppendEvents(stale).ok());
}

TEST_F(StoreTest, ConcurrentWritersToOneSessionGetDistinctSeqsAndLoseNothing) {
  Create("s");
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::thread> writers;
  writers.reserve(kThreads);
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string text = std::to_string(t) + ":" + std::to_string(i);
        if (!store_->AppendEvents(Events("s", {{"user", text}})).ok()) ++failures;
      }
    });
  }
  for (std::thread& w : writers) w.join();
  EXPECT_EQ(failures.load(), 0);
  v1::ReadTranscriptRequest read;
  read.set_session_id("s");
  StatusOr<v1::ReadTranscriptResponse> all = store_->ReadTranscript(read);
  ASSERT_EQ(all->events_size(), kThreads * kEach);
  for (int i = 0; i < all->events_size(); ++i) EXPECT_EQ(all->events(i).seq(), i + 1);
}

TEST_F(StoreTest, MemoryIsSearchedByRankedKeywordsWithinItsScope) {
  const auto put = [&](const std::string& scope, const std::string& key, const std::string& text) {
    v1::PutMemoryRequest r;
    r.set_scope(scope);
    r.set_key(key);
    r.set_content(text);
    StatusOr<v1::MemoryEntry> e = store_->PutMemory(r);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? e->id() : 0;
  };
  put("alice", "", "The staging cluster is called blue-falcon.");
  put("alice", "", "Alice prefers answers in French. Staging deploys happen on Tuesdays.");
  put("alice", "", "Lunch is at noon.");
  put("bob", "", "Bob's staging cluster is red-otter.");
  const int64_t keyed = put("alice", "editor", "Alice uses vim.");
  EXPECT_EQ(put("alice", "editor", "Alice switched to helix."), keyed);  // replaced in place

  v1::SearchMemoryRequest q;
  q.set_scope("alice");
  q.set_query("staging cluster?");
  StatusOr<v1::SearchMemoryResponse> found = store_->SearchMemory(q);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->entries_size(), 2);
  EXPECT_NE(found->entries(0).content().find("blue-falcon"), std::string::npos);  // both words
  EXPECT_GT(found->entries(0).score(), found->entries(1).score());
  q.set_query("editor helix");
  found = store_->SearchMemory(q);
  ASSERT_EQ(found->entries_size(), 1);
  EXPECT_EQ(found->entries(0).content(), "Alice switched to helix.");
  // FTS5 syntax in user text is just words.
  q.set_query("\" OR content:* NEAR(");
  EXPECT_TRUE(store_->SearchMemory(q).ok());
  q.set_query("vim");
  EXPECT_EQ(store_->SearchMemory(q)->entries_size(), 0);
}

TEST_F(StoreTest, UsageAddsUpPerSessionAndPerUtcDay) {
  Create("s1");
  Create("s2");
  v1::AddUsageRequest add;
  add.set_session_id("s1");
  (*add.mutable_counters())["prompt_tokens"] = 100;
  (*add.mutable_counters())["completion_tokens"] = 20;
  add.set_request_id("u-1");
  ASSERT_TRUE(store_->AddUsage(add).ok());
  ASSERT_TRUE(store_->AddUsage(add).ok());  // a retry: counted once
  add.set_request_id("");
  add.set_session_id("s2");
  now_ms_ += int64_t{23} * 3600 * 1000;  // still 2025-12-06
  ASSERT_TRUE(store_->AddUsage(add).ok());
  now_ms_ += int64_t{2} * 3600 * 1000;  // 2025-12-07
  StatusOr<v1::Usage> s2 = store_->AddUsage(add);
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->counters().at("prompt_tokens"), 200);

  v1::GetUsageRequest get;
  get.set_session_id("s1");
  EXPECT_EQ(store_->GetUsage(get)->counters().at("prompt_tokens"), 100);
  get.set_day("2025-12-06");
  StatusOr<v1::Usage> day = store_->GetUsage(get);
  EXPECT_EQ(day->scope(), "day:2025-12-06");
  EXPECT_EQ(day->counters().at("prompt_tokens"), 200);
  EXPECT_EQ(day->counters().at("completion_tokens"), 40);
  get.set_day("2025-12-07");
  EXPECT_EQ(store_->GetUsage(get)->counters().at("prompt_tokens"), 100);
  add.mutable_counters()->at("prompt_tokens") = -5;
  EXPECT_EQ(store_->AddUsage(add).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, TheAuditChainVerifiesAndNamesTheFirstRecordTamperedWith) {
  for (int i = 0; i < 5; ++i) {
    v1::AppendAuditRequest r;
    r.set_actor("agent:team-a/triage");
    r.set_action("tool.call");
    r.set_session_id("s");
    r.set_details_json(R"({"tool":"lookup","n":)" + std::to_string(i) + "}");
    StatusOr<v1::AuditRecord> rec = store_->AppendAudit(r);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_EQ(rec->seq(), i + 1);
    EXPECT_EQ(rec->details_json(), R"({"n":)" + std::to_string(i) + R"(,"tool":"lookup"})");
  }
  StatusOr<v1::VerifyAuditResponse> v = store_->VerifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok()) << v->reason();
  EXPECT_EQ(v->records(), 5);
  EXPECT_EQ(v->head_hash(), store_->ListAudit({})->records(4).hash());
  EXPECT_EQ(store_->ListAudit({})->records(0).prev_hash(), kAuditGenesisHash);

  store_.reset();
  Tamper(R"(UPDATE audit SET details_json = '{"n":2,"tool":"delete_everything"}' WHERE seq = 3)");
  Reopen();
  v = store_->VerifyAudit();
  EXPECT_FALSE(v->ok());
  EXPECT_EQ(v->first_bad_seq(), 3);
  EXPECT_NE(v->reason().find("altered"), std::string::npos) << v->reason();

  store_.reset();
  Tamper(R"(UPDATE audit SET details_json = '{"n":2,"tool":"lookup"}' WHERE seq = 3;
            DELETE FROM audit WHERE seq = 4)");
  Reopen();
  v = store_->VerifyAudit();
  EXPECT_FALSE(v->ok());
  EXPECT_EQ(v->first_bad_seq(), 5);
  EXPECT_NE(v->reason().find("missing"), std::string::npos) << v->reason();
}

// Two whole records swapped, each with its own hashes intact: the chain breaks where the
// first one stands.
TEST_F(StoreTest, TheAuditChainNamesTheFirstOfTwoRecordsReordered) {
  for (int i = 0; i < 4; ++i) {
    v1::AppendAuditRequest r;
    r.set_actor("agent:team-a/triage");
    r.set_action(i == 1 ? "approval.deny" : "tool.call");
    r.set_session_id("s");
    ASSERT_TRUE(store_->AppendAudit(r).ok());
  }
  ASSERT_TRUE(store_->VerifyAudit()->ok());
  store_.reset();
  Tamper(R"(UPDATE audit SET seq = -2 WHERE seq = 2;
            UPDATE audit SET seq = 2 WHERE seq = 3;
            UPDATE audit SET seq = 3 WHERE seq = -2)");
  Reopen();
  StatusOr<v1::VerifyAuditResponse> v = store_->VerifyAudit();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->ok());
  EXPECT_EQ(v->first_bad_seq(), 2) << v->reason();
}

TEST_F(StoreTest, SnapshotsRoundTripReplaceTheOldFileAndFailTheirChecksumWhenCorrupted) {
  Create("s");
  const auto put = [&](const std::string& bytes) {
    StatusOr<std::unique_ptr<StateStore::SnapshotWriter>> w = store_->BeginSnapshot("s");
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    for (size_t i = 0; i < bytes.size(); i += 1000) {
      EXPECT_TRUE((*w)->Write(std::string_view(bytes).substr(i, 1000)).ok());
    }
    return (*w)->Finish(Sha256Hex(bytes));
  };
  const auto get = [&](std::string* out) {
    out->clear();
    return store_->ReadSnapshot("s", 4096, [&](const v1::SnapshotInfo&, std::string_view b) {
      out->append(b);
      return true;
    });
  };
  std::string first(10000, 'k');
  for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<char>(i * 7);
  StatusOr<v1::SnapshotInfo> info = put(first);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->bytes(), 10000);
  const std::string second = first.substr(0, 5000);
  ASSERT_TRUE(put(second).ok());
  std::string got;
  ASSERT_TRUE(get(&got).ok());
  EXPECT_EQ(got, second);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_.path() + "/snapshots")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);  // the first snapshot's file is gone

  // Bytes lost in transit are refused; an unfinished writer leaves nothing behind.
  {
    StatusOr<std::unique_ptr<StateStore::SnapshotWriter>> w = store_->BeginSnapshot("s");
    ASSERT_TRUE((*w)->Write("abc").ok());
    EXPECT_EQ((*w)->Finish(Sha256Hex("abd")).status().code(), StatusCode::kInvalidArgument);
  }
  { ASSERT_TRUE((*store_->BeginSnapshot("s"))->Write("dropped").ok()); }
  ASSERT_TRUE(get(&got).ok());
  EXPECT_EQ(got, second);

  // A flipped byte on disk is data loss, not a silent wrong restore.
  for (const auto& e : fs::directory_iterator(dir_.path() + "/snapshots")) {
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\xff');
  }
  EXPECT_EQ(get(&got).code(), StatusCode::kDataLoss);
  EXPECT_EQ(store_->BeginSnapshot("nobody").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadSnapshot("nobody", 10, [](auto&&...) { return true; }).code(),
            StatusCode::kNotFound);
}

// The state volume turns read-only under the running sidecar (the kernel remounted it after an
// I/O error): every write is refused with an error that says so, reads still work, and nothing
// written before is lost or torn. The child process below is the sidecar; its exit code says
// which check failed.
TEST_F(StoreTest, AVolumeThatTurnsReadOnlyRefusesWritesClearlyAndLosesNothing) {
  Create("s");
  ASSERT_TRUE(store_->AppendEvents(Events("s", {{"user", "before"}, {"assistant", "kept"}})).ok());
  v1::AppendAuditRequest audit;
  audit.set_actor("alice");
  audit.set_action("session.create");
  ASSERT_TRUE(store_->AppendAudit(audit).ok());
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!MakeFileWritesFailReadOnly()) _exit(77);
    const auto read_only = [](const Status& s) {
      return s.code() == StatusCode::kFailedPrecondition &&
             s.message().find("read-only") != std::string::npos;
    };
    if (!read_only(store_->AppendEvents(Events("s", {{"user", "after"}})).status())) _exit(1);
    if (!read_only(store_->AppendAudit(audit).status())) _exit(2);
    v1::CreateSessionRequest create;
    create.set_id("t");
    create.set_agent("team-a/triage");
    if (!read_only(store_->CreateSession(create).status())) _exit(3);
    StatusOr<std::unique_ptr<StateStore::SnapshotWriter>> w = store_->BeginSnapshot("s");
    Status snapshot = w.status();
    if (w.ok()) snapshot = (*w)->Write("kv");
    if (w.ok() && snapshot.ok()) snapshot = (*w)->Finish(Sha256Hex("kv")).status();
    if (!read_only(snapshot)) _exit(4);
    // Reads still answer.
    v1::ReadTranscriptRequest read;
    read.set_session_id("s");
    StatusOr<v1::ReadTranscriptResponse> t = store_->ReadTranscript(read);
    if (!t.ok() || t->events_size() != 2) _exit(6);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the store crashed on a read-only volume";
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "seccomp is not available here";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "check " << WEXITSTATUS(status) << " failed";
  // The volume is writable again (a new pod, the disk repaired): everything acknowledged is
  // there, nothing refused is, and the audit chain verifies.
  Reopen();
  v1::ReadTranscriptRequest read;
  read.set_session_id("s");
  StatusOr<v1::ReadTranscriptResponse> t = store_->ReadTranscript(read);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->events_size(), 2);
  EXPECT_EQ(t->events(1).content(), "kept");
  EXPECT_EQ(store_->GetSession("t").status().code(), StatusCode::kNotFound);
  StatusOr<v1::VerifyAuditResponse> verified = store_->VerifyAudit();
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok());
  EXPECT_EQ(verified->records(), 1);
  EXPECT_TRUE(store_->AppendEvents(Events("s", {{"user", "after"}})).ok());
}

TEST_F(StoreTest, OpenRemovesSnapshotFilesNoRowNamesAndKeepsEverythingCommitted) {
  Create("s");
  ASSERT_TRUE(store_->AppendEvents(Events("s", {{"user", "kept"}})).ok());
  store_.reset();
  std::ofstream(dir_.path() + "/snapshots/s.1.1.snap.tmp") << "half-written";
  std::ofstream(dir_.path() + "/snapshots/s.2.2.snap") << "renamed, never committed";
  Reopen();
  EXPECT_TRUE(fs::is_empty(dir_.path() + "/snapshots"));
  v1::ReadTranscriptRequest read;
  read.set_session_id("s");
  EXPECT_EQ(store_->ReadTranscript(read)->events(0).content(), "kept");
}

TEST_F(StoreTest, ADatabaseFromANewerReleaseIsRefusedNotDowngraded) {
  store_.reset();
  Tamper("PRAGMA user_version = 99");
  StatusOr<std::unique_ptr<StateStore>> s = StateStore::Open(dir_.path());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("schema version 99 is newer"), std::string::npos);
}

TEST_F(StoreTest, AFileThatIsNotADatabaseIsDataLoss) {
  store_.reset();
  fs::remove(dir_.path() + "/state.db-wal");
  fs::remove(dir_.path() + "/state.db-shm");
  std::ofstream(dir_.path() + "/state.db", std::ios::trunc) << std::string(8192, 'x');
  StatusOr<std::unique_ptr<StateStore>> s = StateStore::Open(dir_.path());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss) << s.status().ToString();
}

}  // namespace
}  // namespace agentry::state
