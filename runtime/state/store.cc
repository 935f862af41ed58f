#include "runtime/state/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "common/sha256.h"
#include "common/utc_day.h"
#include "runtime/state/audit_chain.h"

namespace agentry::state {
namespace {

namespace fs = std::filesystem;

// Version 1. A later version appends its own step to kMigrations; a step never changes.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  on_behalf_of TEXT NOT NULL,
  state TEXT NOT NULL,
  metadata_json TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  next_seq INTEGER NOT NULL
);
CREATE INDEX sessions_by_update ON sessions (updated_ms);
CREATE TABLE events (
  session_id TEXT NOT NULL REFERENCES sessions (id),
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  content TEXT NOT NULL,
  name TEXT NOT NULL,
  tool_call_id TEXT NOT NULL,
  metadata_json TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE TABLE memory (
  id INTEGER PRIMARY KEY,
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  content TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX memory_by_key ON memory (scope, key) WHERE key != '';
CREATE VIRTUAL TABLE memory_text USING fts5 (content, content = 'memory', content_rowid = 'id');
CREATE TRIGGER memory_text_insert AFTER INSERT ON memory BEGIN
  INSERT INTO memory_text (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER memory_text_delete AFTER DELETE ON memory BEGIN
  INSERT INTO memory_text (memory_text, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER memory_text_update AFTER UPDATE ON memory BEGIN
  INSERT INTO memory_text (memory_text, rowid, content) VALUES ('delete', old.id, old.content);
  INSERT INTO memory_text (rowid, content) VALUES (new.id, new.content);
END;
CREATE TABLE usage (
  scope TEXT NOT NULL,
  name TEXT NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY (scope, name)
) WITHOUT ROWID;
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  session_id TEXT NOT NULL,
  details_json TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_by_session ON audit (session_id, seq);
CREATE TABLE snapshots (
  session_id TEXT PRIMARY KEY,
  file TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE requests (
  id TEXT PRIMARY KEY,
  method TEXT NOT NULL,
  response BLOB NOT NULL,
  created_ms INTEGER NOT NULL
);
)sql",
};
constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == StateStore::kSchemaVersion);

constexpr int64_t kMaxIdBytes = 128;
constexpr int64_t kMaxContentBytes = int64_t{16} << 20;
// One ReadTranscript response's content: below gRPC's default 4 MiB message limit, which the
// runtime's (or any) client keeps unless it raises it.
constexpr int64_t kMaxTranscriptBytes = int64_t{2} << 20;

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Ids become file names (snapshots), so they are restricted to a safe alphabet.
Status CheckId(const std::string& id, const char* field) {
  if (id.empty() || static_cast<int64_t>(id.size()) > kMaxIdBytes) {
    return InvalidArgumentError(std::string(field) + ": 1 to 128 characters");
  }
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok)
      return InvalidArgumentError(std::string(field) + ": only A-Z, a-z, 0-9, '.', '_' and '-'");
  }
  if (id == "." || id == "..") return InvalidArgumentError(std::string(field) + ": not . or ..");
  return OkStatus();
}

StatusOr<std::string> JsonObject(const std::string& text, const char* field) {
  if (text.empty()) return std::string("{}");
  const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return InvalidArgumentError(std::string(field) + ": not a JSON object");
  }
  return parsed.dump();
}

int32_t Limit(int32_t requested, int32_t fallback, int32_t most) {
  if (requested <= 0) return fallback;
  return requested < most ? requested : most;
}

v1::Session SessionFromRow(const Statement& s) {
  v1::Session out;
  out.set_id(s.Text(0));
  out.set_agent(s.Text(1));
  out.set_on_behalf_of(s.Text(2));
  out.set_state(s.Text(3));
  out.set_metadata_json(s.Text(4));
  out.set_created_unix_ms(s.Int(5));
  out.set_updated_unix_ms(s.Int(6));
  out.set_next_seq(s.Int(7));
  return out;
}
constexpr char kSessionColumns[] =
    "id, agent, on_behalf_of, state, metadata_json, created_ms, updated_ms, next_seq";

v1::AuditRecord AuditFromRow(const Statement& s) {
  v1::AuditRecord r;
  r.set_seq(s.Int(0));
  r.set_time_unix_ms(s.Int(1));
  r.set_actor(s.Text(2));
  r.set_action(s.Text(3));
  r.set_session_id(s.Text(4));
  r.set_details_json(s.Text(5));
  r.set_prev_hash(s.Text(6));
  r.set_hash(s.Text(7));
  return r;
}
constexpr char kAuditColumns[] =
    "seq, time_ms, actor, action, session_id, details_json, prev_hash, hash";

// Flushes a directory's entries (a rename or an unlink) to disk.
Status SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return UnavailableError(dir + ": cannot open to sync: " + std::strerror(errno));
  const int rc = fsync(fd);
  const int saved = errno;
  close(fd);
  if (rc != 0) return UnavailableError(dir + ": fsync: " + std::strerror(saved));
  return OkStatus();
}

Status FileError(const std::string& path, const char* what, int err) {
  const std::string message = path + ": " + what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EFBIG || err == EDQUOT) {
    return ResourceExhaustedError(message + " (the state volume is full)");
  }
  if (err == EROFS) return FailedPreconditionError(message + " (the state volume is read-only)");
  return UnavailableError(message);
}

}  // namespace

StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& dir,
                                                       StateStoreOptions options) {
  if (!options.now_ms) options.now_ms = SystemNowMs;
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "snapshots", ec);
  if (ec)
    return FailedPreconditionError(dir + ": cannot create the state directory: " + ec.message());
  AGENTRY_ASSIGN_OR_RETURN(Database db, Database::Open(dir + "/state.db"));
  std::unique_ptr<StateStore> store(new StateStore(dir, std::move(options), std::move(db)));
  AGENTRY_RETURN_IF_ERROR(store->Migrate());
  AGENTRY_RETURN_IF_ERROR(store->RemoveOrphanSnapshots());
  AGENTRY_ASSIGN_OR_RETURN(Statement prune,
                           store->db_.Prepare("DELETE FROM requests WHERE created_ms < ?"));
  prune.Bind(1, store->Now() - store->options_.request_id_ttl_ms);
  AGENTRY_RETURN_IF_ERROR(prune.Run());
  return store;
}

StateStore::StateStore(std::string dir, StateStoreOptions options, Database db)
    : dir_(std::move(dir)), options_(std::move(options)), db_(std::move(db)) {}

Status StateStore::Migrate() {
  AGENTRY_ASSIGN_OR_RETURN(Statement version_query, db_.Prepare("PRAGMA user_version"));
  AGENTRY_ASSIGN_OR_RETURN(const bool has_row, version_query.Step());
  const int64_t version = has_row ? version_query.Int(0) : 0;
  if (version > kSchemaVersion) {
    return FailedPreconditionError(db_.path() + ": schema version " + std::to_string(version) +
                                   " is newer than this agentry-state's (" +
                                   std::to_string(kSchemaVersion) + "); run a newer release");
  }
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    AGENTRY_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(&db_));
    Status s = db_.Exec(kMigrations[v]);
    if (!s.ok()) return s.WithPrefix("migrating the schema to version " + std::to_string(v + 1));
    AGENTRY_RETURN_IF_ERROR(db_.Exec("PRAGMA user_version = " + std::to_string(v + 1)));
    AGENTRY_RETURN_IF_ERROR(tx.Commit());
  }
  return OkStatus();
}

Status StateStore::RemoveOrphanSnapshots() {
  std::set<std::string> named;
  AGENTRY_ASSIGN_OR_RETURN(Statement s, db_.Prepare("SELECT file FROM snapshots"));
  while (true) {
    AGENTRY_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) break;
    named.insert(s.Text(0));
  }
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(fs::path(dir_) / "snapshots", ec)) {
    if (named.count(e.path().filename().string()) == 0) fs::remove(e.path(), ec);
  }
  return OkStatus();
}

int64_t StateStore::DiskBytes() const {
  int64_t total = 0;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir_, ec)) {
    if (e.is_regular_file(ec)) total += static_cast<int64_t>(e.file_size(ec));
  }
  return total;
}

template <typename Response>
StatusOr<Response> StateStore::Mutate(const std::string& request_id, const char* method,
                                      const std::function<StatusOr<Response>()>& apply,
                                      bool* replayed) {
  if (replayed != nullptr) *replayed = false;
  if (static_cast<int64_t>(request_id.size()) > kMaxIdBytes) {
    return InvalidArgumentError("request_id: at most 128 bytes");
  }
  AGENTRY_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(&db_));
  if (!request_id.empty()) {
    AGENTRY_ASSIGN_OR_RETURN(Statement seen,
                             db_.Prepare("SELECT method, response FROM requests WHERE id = ?"));
    seen.Bind(1, request_id);
    AGENTRY_ASSIGN_OR_RETURN(const bool found, seen.Step());
    if (found) {
      if (seen.Text(0) != method) {
        return InvalidArgumentError("request_id " + request_id + ": already used by " +
                                    seen.Text(0));
      }
      Response previous;
      if (!previous.ParseFromString(seen.Text(1))) {
        return DataLossError("request_id " + request_id + ": stored response does not parse");
      }
      if (replayed != nullptr) *replayed = true;
      return previous;
    }
  }
  AGENTRY_ASSIGN_OR_RETURN(Response response, apply());
  if (!request_id.empty()) {
    AGENTRY_ASSIGN_OR_RETURN(
        Statement remember,
        db_.Prepare("INSERT INTO requests (id, method, response, created_ms) VALUES (?, ?, ?, ?)"));
    remember.Bind(1, request_id).Bind(2, std::string_view(method));
    remember.BindBlob(3, response.SerializeAsString()).Bind(4, Now());
    AGENTRY_RETURN_IF_ERROR(remember.Run());
  }
  AGENTRY_RETURN_IF_ERROR(tx.Commit());
  return response;
}

StatusOr<v1::Session> StateStore::LoadSession(const std::string& id) {
  AGENTRY_ASSIGN_OR_RETURN(Statement s, db_.Prepare(std::string("SELECT ") + kSessionColumns +
                                                    " FROM sessions WHERE id = ?"));
  s.Bind(1, id);
  AGENTRY_ASSIGN_OR_RETURN(const bool found, s.Step());
  if (!found) return NotFoundError("session " + id + ": not found");
  return SessionFromRow(s);
}

StatusOr<v1::Session> StateStore::CreateSession(const v1::CreateSessionRequest& request) {
  AGENTRY_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  if (request.agent().empty()) return InvalidArgumentError("agent: required");
  AGENTRY_ASSIGN_OR_RETURN(const std::string metadata,
                           JsonObject(request.metadata_json(), "metadata_json"));
  std::lock_guard<std::mutex> lock(mu_);
  return Mutate<v1::Session>(
      "", "CreateSession",
      [&]() -> StatusOr<v1::Session> {
        StatusOr<v1::Session> existing = LoadSession(request.id());
        if (existing.ok()) {
          if (existing->agent() != request.agent() ||
              existing->on_behalf_of() != request.on_behalf_of()) {
            return AlreadyExistsError("session " + request.id() +
                                      ": exists for another agent or on behalf of another user");
          }
          return existing;
        }
        if (existing.status().code() != StatusCode::kNotFound) return existing.status();
        AGENTRY_ASSIGN_OR_RETURN(
            Statement insert,
            db_.Prepare(
                "INSERT INTO sessions (id, agent, on_behalf_of, state, metadata_json, "
                "created_ms, updated_ms, next_seq) VALUES (?, ?, ?, 'active', ?, ?, ?, 1)"));
        const int64_t now = Now();
        insert.Bind(1, request.id()).Bind(2, request.agent()).Bind(3, request.on_behalf_of());
        insert.Bind(4, metadata).Bind(5, now).Bind(6, now);
        AGENTRY_RETURN_IF_ERROR(insert.Run());
        return LoadSession(request.id());
      },
      nullptr);
}

StatusOr<v1::Session> StateStore::GetSession(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return LoadSession(id);
}

StatusOr<v1::ListSessionsResponse> StateStore::ListSessions(
    const v1::ListSessionsRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  AGENTRY_ASSIGN_OR_RETURN(Statement s, db_.Prepare(std::string("SELECT ") + kSessionColumns +
                                                    " FROM sessions WHERE (?1 = '' OR state = ?1) "
                                                    "ORDER BY updated_ms DESC, id LIMIT ?2"));
  s.Bind(1, request.state()).Bind(2, Limit(request.limit(), 100, 1000));
  v1::ListSessionsResponse out;
  while (true) {
    AGENTRY_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) break;
    *out.add_sessions() = SessionFromRow(s);
  }
  return out;
}

StatusOr<v1::Session> StateStore::UpdateSession(const v1::UpdateSessionRequest& request) {
  std::string metadata;
  if (!request.metadata_json().empty()) {
    AGENTRY_ASSIGN_OR_RETURN(metadata, JsonObject(request.metadata_json(), "metadata_json"));
  }
  if (request.state().size() > 64) return InvalidArgumentError("state: at most 64 bytes");
  std::lock_guard<std::mutex> lock(mu_);
  return Mutate<v1::Session>(
      request.request_id(), "UpdateSession",
      [&]() -> StatusOr<v1::Session> {
        AGENTRY_RETURN_IF_ERROR(LoadSession(request.id()).status());
        AGENTRY_ASSIGN_OR_RETURN(
            Statement update,
            db_.Prepare("UPDATE sessions SET state = CASE WHEN ?2 = '' THEN state ELSE ?2 END, "
                        "metadata_json = CASE WHEN ?3 = '' THEN metadata_json ELSE ?3 END, "
                        "updated_ms = ?4 WHERE id = ?1"));
        update.Bind(1, request.id()).Bind(2, request.state()).Bind(3, metadata).Bind(4, Now());
        AGENTRY_RETURN_IF_ERROR(update.Run());
        return LoadSession(request.id());
      },
      nullptr);
}

StatusOr<v1::AppendEventsResponse> StateStore::AppendEvents(
    const v1::AppendEventsRequest& request) {
  if (request.events().empty()) return InvalidArgumentError("events: at least one");
  std::vector<std::string> metadata;
  int64_t bytes = 0;
  for (int i = 0; i < request.events_size(); ++i) {
    const v1::Event& e = request.events(i);
    const std::string field = "events[" + std::to_string(i) + "]";
    if (e.kind() != "user" && e.kind() != "assistant" && e.kind() != "tool" &&
        e.kind() != "system") {
      return InvalidArgumentError(field + ".kind: one of user, assistant, tool, system (got \"" +
                                  e.kind() + "\")");
    }
    bytes += static_cast<int64_t>(e.content().size());
    AGENTRY_ASSIGN_OR_RETURN(std::string m,
                             JsonObject(e.metadata_json(), (field + ".metadata_json").c_str()));
    metadata.push_back(std::move(m));
  }
  if (bytes > kMaxContentBytes) {
    return InvalidArgumentError("events: " + std::to_string(bytes) +
                                " bytes of content; at most 16 MiB in one call");
  }
  std::lock_guard<std::mutex> lock(mu_);
  bool replayed = false;
  StatusOr<v1::AppendEventsResponse> out = Mutate<v1::AppendEventsResponse>(
      request.request_id(), "AppendEvents",
      [&]() -> StatusOr<v1::AppendEventsResponse> {
        AGENTRY_ASSIGN_OR_RETURN(const v1::Session session, LoadSession(request.session_id()));
        if (request.has_expected_next_seq() && request.expected_next_seq() != session.next_seq()) {
          return AbortedError("session " + session.id() + ": expected_next_seq " +
                              std::to_string(request.expected_next_seq()) + " but it is " +
                              std::to_string(session.next_seq()) +
                              " (another writer appended first)");
        }
        AGENTRY_ASSIGN_OR_RETURN(
            Statement insert,
            db_.Prepare("INSERT INTO events (session_id, seq, kind, content, name, tool_call_id, "
                        "metadata_json, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
        const int64_t now = Now();
        v1::AppendEventsResponse response;
        int64_t seq = session.next_seq();
        for (int i = 0; i < request.events_size(); ++i, ++seq) {
          const v1::Event& e = request.events(i);
          insert.Reset();
          insert.Bind(1, session.id()).Bind(2, seq).Bind(3, e.kind()).Bind(4, e.content());
          insert.Bind(5, e.name()).Bind(6, e.tool_call_id()).Bind(7, metadata[i]).Bind(8, now);
          AGENTRY_RETURN_IF_ERROR(insert.Run());
          response.add_seqs(seq);
        }
        AGENTRY_ASSIGN_OR_RETURN(
            Statement advance,
            db_.Prepare("UPDATE sessions SET next_seq = ?, updated_ms = ? WHERE id = ?"));
        advance.Bind(1, seq).Bind(2, now).Bind(3, session.id());
        AGENTRY_RETURN_IF_ERROR(advance.Run());
        return response;
      },
      &replayed);
  if (out.ok()) out->set_replayed(replayed);
  return out;
}

StatusOr<v1::ReadTranscriptResponse> StateStore::ReadTranscript(
    const v1::ReadTranscriptRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  AGENTRY_ASSIGN_OR_RETURN(const v1::Session session, LoadSession(request.session_id()));
  AGENTRY_ASSIGN_OR_RETURN(
      Statement s,
      db_.Prepare("SELECT seq, kind, content, name, tool_call_id, metadata_json, created_ms "
                  "FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?"));
  s.Bind(1, session.id()).Bind(2, request.after_seq());
  s.Bind(3, request.limit() > 0 ? int64_t{request.limit()} : int64_t{-1});
  v1::ReadTranscriptResponse out;
  int64_t bytes = 0;
  int64_t last_seq = request.after_seq();
  while (bytes < kMaxTranscriptBytes) {
    AGENTRY_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) break;
    v1::Event* e = out.add_events();
    e->set_seq(s.Int(0));
    e->set_kind(s.Text(1));
    e->set_content(s.Text(2));
    e->set_name(s.Text(3));
    e->set_tool_call_id(s.Text(4));
    e->set_metadata_json(s.Text(5));
    e->set_created_unix_ms(s.Int(6));
    bytes += static_cast<int64_t>(e->content().size());
    last_seq = e->seq();
  }
  out.set_next_seq(session.next_seq());
  out.set_more(last_seq < session.next_seq() - 1);
  return out;
}

StatusOr<v1::MemoryEntry> StateStore::PutMemory(const v1::PutMemoryRequest& request) {
  if (request.scope().empty()) return InvalidArgumentError("scope: required");
  if (request.content().empty()) return InvalidArgumentError("content: required");
  if (static_cast<int64_t>(request.content().size()) > kMaxContentBytes) {
    return InvalidArgumentError("content: at most 16 MiB");
  }
  std::lock_guard<std::mutex> lock(mu_);
  return Mutate<v1::MemoryEntry>(
      request.request_id(), "PutMemory",
      [&]() -> StatusOr<v1::MemoryEntry> {
        const int64_t now = Now();
        // A keyed entry is replaced in place (same id); an unkeyed one is always new.
        AGENTRY_ASSIGN_OR_RETURN(
            Statement upsert,
            db_.Prepare("INSERT INTO memory (scope, key, content, created_ms) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (scope, key) WHERE key != '' DO UPDATE SET "
                        "content = excluded.content, created_ms = excluded.created_ms "
                        "RETURNING id"));
        upsert.Bind(1, request.scope()).Bind(2, request.key()).Bind(3, request.content());
        upsert.Bind(4, now);
        AGENTRY_ASSIGN_OR_RETURN(const bool row, upsert.Step());
        if (!row) return InternalError("memory insert returned no id");
        v1::MemoryEntry entry;
        entry.set_id(upsert.Int(0));
        entry.set_scope(request.scope());
        entry.set_key(request.key());
        entry.set_content(request.content());
        entry.set_created_unix_ms(now);
        return entry;
      },
      nullptr);
}

StatusOr<v1::SearchMemoryResponse> StateStore::SearchMemory(
    const v1::SearchMemoryRequest& request) {
  if (request.scope().empty()) return InvalidArgumentError("scope: required");
  // The query's words, each quoted, any of them: user text never reaches FTS5's syntax.
  std::string match;
  std::string word;
  const auto flush = [&] {
    if (word.empty()) return;
    if (!match.empty()) match += " OR ";
    match += "\"" + word + "\"";
    word.clear();
  };
  for (const char c : request.query()) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || u >= 0x80) {
      word += c;
    } else {
      flush();
    }
  }
  flush();
  v1::SearchMemoryResponse out;
  if (match.empty()) return out;
  std::lock_guard<std::mutex> lock(mu_);
  AGENTRY_ASSIGN_OR_RETURN(
      Statement s,
      db_.Prepare("SELECT m.id, m.scope, m.key, m.content, m.created_ms, bm25(memory_text) "
                  "FROM memory_text JOIN memory m ON m.id = memory_text.rowid "
                  "WHERE memory_text MATCH ? AND m.scope = ? "
                  "ORDER BY bm25(memory_text), m.id DESC LIMIT ?"));
  s.Bind(1, match).Bind(2, request.scope()).Bind(3, Limit(request.limit(), 10, 100));
  while (true) {
    AGENTRY_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) break;
    v1::MemoryEntry* e = out.add_entries();
    e->set_id(s.Int(0));
    e->set_scope(s.Text(1));
    e->set_key(s.Text(2));
    e->set_content(s.Text(3));
    e->set_created_unix_ms(s.Int(4));
    e->set_score(-s.Double(5));  // bm25: lower is better
  }
  return out;
}

StatusOr<v1::AuditRecord> StateStore::AppendAudit(const v1::AppendAuditRequest& request) {
  if (request.actor().empty()) return InvalidArgumentError("actor: required");
  if (request.action().empty()) return InvalidArgumentError("action: required");
  AGENTRY_ASSIGN_OR_RETURN(const std::string details, CanonicalDetails(request.details_json()));
  std::lock_guard<std::mutex> lock(mu_);
  return Mutate<v1::AuditRecord>(
      request.request_id(), "AppendAudit",
      [&]() -> StatusOr<v1::AuditRecord> {
        v1::AuditRecord record;
        record.set_seq(1);
        record.set_prev_hash(kAuditGenesisHash);
        AGENTRY_ASSIGN_OR_RETURN(
            Statement last, db_.Prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
        AGENTRY_ASSIGN_OR_RETURN(const bool has_last, last.Step());
        if (has_last) {
          record.set_seq(last.Int(0) + 1);
          record.set_prev_hash(last.Text(1));
        }
        record.set_time_unix_ms(Now());
        record.set_actor(request.actor());
        record.set_action(request.action());
        record.set_session_id(request.session_id());
        record.set_details_json(details);
        record.set_hash(AuditRecordHash(record.prev_hash(), record));
        AGENTRY_ASSIGN_OR_RETURN(Statement insert,
                                 db_.Prepare(std::string("INSERT INTO audit (") + kAuditColumns +
                                             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
        insert.Bind(1, record.seq()).Bind(2, record.time_unix_ms()).Bind(3, record.actor());
        insert.Bind(4, record.action()).Bind(5, record.session_id()).Bind(6, record.details_json());
        insert.Bind(7, record.prev_hash()).Bind(8, record.hash());
        AGENTRY_RETURN_IF_ERROR(insert.Run());
        return record;
      },
      nullptr);
}

StatusOr<v1::ListAuditResponse> StateStore::ListAudit(const v1::ListAuditRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  AGENTRY_ASSIGN_OR_RETURN(
      Statement s, db_.Prepare(std::string("SELECT ") + kAuditColumns +
                               " FROM audit WHERE seq > ?1 AND (?2 = '' OR session_id = ?2) "
                               "ORDER BY seq LIMIT ?3"));
  s.Bind(1, request.after_seq()).Bind(2, request.session_id());
  s.Bind(3, Limit(request.limit(), 100, 1000));
  v1::ListAuditResponse out;
  while (true) {
    AGENTRY_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) break;
    *out.add_records() = AuditFromRow(s);
  }
  return out;
}

StatusOr<v1::VerifyAuditResponse> StateStore::VerifyAudit() {
  std::lock_guard<std::mutex> lock(mu_);
  AGENTRY_ASSIGN_OR_RETURN(Statement s, db_.Prepare(std::string("SELECT ") + kAuditColumns +
                                                    " FROM audit ORDER BY seq"));
  AuditChainVerifier verifier;
  while (true) {
    AGENTRY_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row || !verifier.Add(AuditFromRow(s))) break;
  }
  return verifier.result();
}

Status StateStore::AddCounters(const std::string& scope,
                               const google::protobuf::Map<std::string, int64_t>& counters) {
  AGENTRY_ASSIGN_OR_RETURN(
      Statement add,
      db_.Prepare("INSERT INTO usage (scope, name, value) VALUES (?, ?, ?) "
                  "ON CONFLICT (scope, name) DO UPDATE SET value = value + excluded.value"));
  for (const auto& [name, value] : counters) {
    add.Reset();
    add.Bind(1, scope).Bind(2, name).Bind(3, value);
    AGENTRY_RETURN_IF_ERROR(add.Run());
  }
  return OkStatus();
}

StatusOr<v1::Usage> StateStore::LoadUsage(const std::string& scope) {
  AGENTRY_ASSIGN_OR_RETURN(
      Statement s, db_.Prepare("SELECT name, value FROM usage WHERE scope = ? ORDER BY name"));
  s.Bind(1, scope);
  v1::Usage out;
  out.set_scope(scope);
  while (true) {
    AGENTRY_ASSIGN_OR_RETURN(const bool row, s.Step());
    if (!row) break;
    (*out.mutable_counters())[s.Text(0)] = s.Int(1);
  }
  return out;
}

StatusOr<v1::Usage> StateStore::AddUsage(const v1::AddUsageRequest& request) {
  if (request.counters().empty()) return InvalidArgumentError("counters: at least one");
  for (const auto& [name, value] : request.counters()) {
    if (name.empty() || name.size() > 64)
      return InvalidArgumentError("counters: names of 1 to 64 bytes");
    if (value < 0) return InvalidArgumentError("counters[" + name + "]: must not be negative");
  }
  std::lock_guard<std::mutex> lock(mu_);
  return Mutate<v1::Usage>(
      request.request_id(), "AddUsage",
      [&]() -> StatusOr<v1::Usage> {
        AGENTRY_RETURN_IF_ERROR(LoadSession(request.session_id()).status());
        const std::string session_scope = "session:" + request.session_id();
        AGENTRY_RETURN_IF_ERROR(AddCounters(session_scope, request.counters()));
        AGENTRY_RETURN_IF_ERROR(AddCounters("day:" + UtcDay(Now()), request.counters()));
        return LoadUsage(session_scope);
      },
      nullptr);
}

StatusOr<v1::Usage> StateStore::GetUsage(const v1::GetUsageRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  switch (request.scope_case()) {
    case v1::GetUsageRequest::kSessionId:
      AGENTRY_RETURN_IF_ERROR(LoadSession(request.session_id()).status());
      return LoadUsage("session:" + request.session_id());
    case v1::GetUsageRequest::kDay:
      if (request.day().size() != 10 || request.day()[4] != '-' || request.day()[7] != '-') {
        return InvalidArgumentError("day: YYYY-MM-DD");
      }
      return LoadUsage("day:" + request.day());
    default:
      return InvalidArgumentError("session_id or day: one is required");
  }
}

// --- Snapshots ---------------------------------------------------------------------------

struct StateStore::SnapshotWriter::Impl {
  StateStore* store = nullptr;
  std::string session_id;
  std::string file;  // final name, in snapshots/
  std::string temp_path;
  int fd = -1;
  int64_t bytes = 0;
  Sha256 digest;
};

StateStore::SnapshotWriter::~SnapshotWriter() {
  if (impl_ != nullptr && impl_->fd >= 0) {
    close(impl_->fd);
    unlink(impl_->temp_path.c_str());
  }
}

Status StateStore::SnapshotWriter::Write(std::string_view bytes) {
  Impl& w = *impl_;
  if (w.fd < 0) return FailedPreconditionError("snapshot: already finished or failed");
  if (w.bytes + static_cast<int64_t>(bytes.size()) > w.store->options_.max_snapshot_bytes) {
    return InvalidArgumentError("snapshot: larger than " +
                                std::to_string(w.store->options_.max_snapshot_bytes) + " bytes");
  }
  w.digest.Update(bytes);
  while (!bytes.empty()) {
    const ssize_t n = write(w.fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(w.temp_path, "write", errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    w.bytes += n;
  }
  return OkStatus();
}

StatusOr<v1::SnapshotInfo> StateStore::SnapshotWriter::Finish(const std::string& expected_sha256) {
  Impl& w = *impl_;
  if (w.fd < 0) return FailedPreconditionError("snapshot: already finished or failed");
  const std::string sha = w.digest.FinishHex();
  if (!expected_sha256.empty() && expected_sha256 != sha) {
    return InvalidArgumentError("snapshot: sha256 " + sha + " of what arrived, expected " +
                                expected_sha256 + " (bytes lost in transit)");
  }
  if (fsync(w.fd) != 0) return FileError(w.temp_path, "fsync", errno);
  close(w.fd);
  w.fd = -1;
  const std::string dir = w.store->dir_ + "/snapshots";
  const std::string final_path = dir + "/" + w.file;
  if (rename(w.temp_path.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    unlink(w.temp_path.c_str());
    return FileError(final_path, "rename", err);
  }
  AGENTRY_RETURN_IF_ERROR(SyncDirectory(dir));
  v1::SnapshotInfo info;
  info.set_session_id(w.session_id);
  info.set_bytes(w.bytes);
  info.set_sha256(sha);
  info.set_created_unix_ms(w.store->Now());
  // The row names the new file only once it is durable; the old file goes after the row
  // commits. A crash between the steps leaves a file no row names, which Open removes.
  std::string previous;
  {
    std::lock_guard<std::mutex> lock(w.store->mu_);
    StatusOr<v1::SnapshotInfo> committed = w.store->Mutate<v1::SnapshotInfo>(
        "", "PutSnapshot",
        [&]() -> StatusOr<v1::SnapshotInfo> {
          AGENTRY_RETURN_IF_ERROR(w.store->LoadSession(w.session_id).status());
          AGENTRY_ASSIGN_OR_RETURN(
              Statement old,
              w.store->db_.Prepare("SELECT file FROM snapshots WHERE session_id = ?"));
          old.Bind(1, w.session_id);
          AGENTRY_ASSIGN_OR_RETURN(const bool had, old.Step());
          if (had) previous = old.Text(0);
          AGENTRY_ASSIGN_OR_RETURN(
              Statement put,
              w.store->db_.Prepare(
                  "INSERT INTO snapshots (session_id, file, bytes, sha256, created_ms) "
                  "VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
                  "file = excluded.file, bytes = excluded.bytes, "
                  "sha256 = excluded.sha256, created_ms = excluded.created_ms"));
          put.Bind(1, w.session_id).Bind(2, w.file).Bind(3, info.bytes()).Bind(4, sha);
          put.Bind(5, info.created_unix_ms());
          AGENTRY_RETURN_IF_ERROR(put.Run());
          return info;
        },
        nullptr);
    if (!committed.ok()) {
      unlink(final_path.c_str());
      return committed.status();
    }
  }
  if (!previous.empty() && previous != w.file) unlink((dir + "/" + previous).c_str());
  return info;
}

StatusOr<std::unique_ptr<StateStore::SnapshotWriter>> StateStore::BeginSnapshot(
    const std::string& session_id) {
  AGENTRY_RETURN_IF_ERROR(CheckId(session_id, "session_id"));
  std::unique_ptr<SnapshotWriter> writer(new SnapshotWriter());
  writer->impl_ = std::make_unique<SnapshotWriter::Impl>();
  SnapshotWriter::Impl& w = *writer->impl_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    AGENTRY_RETURN_IF_ERROR(LoadSession(session_id).status());
    w.file = session_id + "." + std::to_string(Now()) + "." + std::to_string(++snapshot_counter_) +
             ".snap";
  }
  w.store = this;
  w.session_id = session_id;
  w.temp_path = dir_ + "/snapshots/" + w.file + ".tmp";
  w.fd = open(w.temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (w.fd < 0) return FileError(w.temp_path, "create", errno);
  return writer;
}

Status StateStore::ReadSnapshot(
    const std::string& session_id, size_t chunk_bytes,
    const std::function<bool(const v1::SnapshotInfo&, std::string_view)>& sink) {
  v1::SnapshotInfo info;
  std::string file;
  {
    std::lock_guard<std::mutex> lock(mu_);
    AGENTRY_ASSIGN_OR_RETURN(
        Statement s,
        db_.Prepare("SELECT file, bytes, sha256, created_ms FROM snapshots WHERE session_id = ?"));
    s.Bind(1, session_id);
    AGENTRY_ASSIGN_OR_RETURN(const bool found, s.Step());
    if (!found) return NotFoundError("session " + session_id + ": no snapshot");
    file = s.Text(0);
    info.set_session_id(session_id);
    info.set_bytes(s.Int(1));
    info.set_sha256(s.Text(2));
    info.set_created_unix_ms(s.Int(3));
  }
  const std::string path = dir_ + "/snapshots/" + file;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return DataLossError(path + ": snapshot file missing: " + std::strerror(errno));
  Sha256 digest;
  std::string buffer(chunk_bytes, '\0');
  int64_t total = 0;
  bool sent = false;  // the sink sees the info at least once, even for an empty snapshot
  Status status;
  while (true) {
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = UnavailableError(path + ": read: " + std::strerror(errno));
      break;
    }
    if (n == 0) break;
    const std::string_view piece(buffer.data(), static_cast<size_t>(n));
    digest.Update(piece);
    total += n;
    sent = true;
    if (!sink(info, piece)) {
      close(fd);
      return CancelledError("snapshot read stopped by the reader");
    }
  }
  close(fd);
  AGENTRY_RETURN_IF_ERROR(status);
  if (!sent && !sink(info, {})) return CancelledError("snapshot read stopped by the reader");
  if (total != info.bytes() || digest.FinishHex() != info.sha256()) {
    return DataLossError(path + ": snapshot fails its checksum (" + std::to_string(total) +
                         " bytes read, " + std::to_string(info.bytes()) + " recorded)");
  }
  return OkStatus();
}

}  // namespace agentry::state
