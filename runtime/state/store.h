// runtime/state/store.h — the agent's durable state: SQLite tables in the state volume, and
// KV snapshot files beside them.
//
//   AGENTRY_ASSIGN_OR_RETURN(std::unique_ptr<StateStore> store, StateStore::Open("/state"));
//   store->CreateSession(request);
//   store->AppendEvents(request);  // returns once the events are durable
//
// Layout of the directory: state.db (with its -wal and -shm files while open) and
// snapshots/. Every mutating call is one transaction: it happens completely or not at all,
// whatever kills the process. Calls that take a request_id apply once: a retry with the
// same id returns the first call's result (the id and the result are committed in the
// same transaction as the change). The schema is versioned (PRAGMA user_version) and
// migrated forward on open; a database newer than this binary is refused.
//
// The store is safe to call from many threads; calls run one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agentry/state/v1/state.pb.h"

#include "common/status.h"
#include "runtime/state/sqlite.h"

namespace agentry::state {

struct StateStoreOptions {
  // Milliseconds since the Unix epoch; tests move it (usage days, request expiry).
  std::function<int64_t()> now_ms;
  // Request ids are remembered this long (a retry after that applies again).
  int64_t request_id_ttl_ms = int64_t{7} * 24 * 3600 * 1000;
  int64_t max_snapshot_bytes = int64_t{4} << 30;
};

class StateStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Creates `dir` and its files when absent; migrates an older schema; removes snapshot
  // files that no committed row names (left by a crash mid-write).
  static StatusOr<std::unique_ptr<StateStore>> Open(const std::string& dir,
                                                    StateStoreOptions options = {});

  StatusOr<v1::Session> CreateSession(const v1::CreateSessionRequest& request);
  StatusOr<v1::Session> GetSession(const std::string& id);
  StatusOr<v1::ListSessionsResponse> ListSessions(const v1::ListSessionsRequest& request);
  StatusOr<v1::Session> UpdateSession(const v1::UpdateSessionRequest& request);

  StatusOr<v1::AppendEventsResponse> AppendEvents(const v1::AppendEventsRequest& request);
  StatusOr<v1::ReadTranscriptResponse> ReadTranscript(const v1::ReadTranscriptRequest& request);

  StatusOr<v1::MemoryEntry> PutMemory(const v1::PutMemoryRequest& request);
  StatusOr<v1::SearchMemoryResponse> SearchMemory(const v1::SearchMemoryRequest& request);

  StatusOr<v1::AuditRecord> AppendAudit(const v1::AppendAuditRequest& request);
  StatusOr<v1::ListAuditResponse> ListAudit(const v1::ListAuditRequest& request);
  StatusOr<v1::VerifyAuditResponse> VerifyAudit();

  StatusOr<v1::Usage> AddUsage(const v1::AddUsageRequest& request);
  StatusOr<v1::Usage> GetUsage(const v1::GetUsageRequest& request);

  // A snapshot arriving in pieces: written to a temporary file, checked, fsynced and renamed;
  // only then does it replace the session's previous snapshot. Dropped unfinished, it leaves
  // nothing behind.
  class SnapshotWriter {
   public:
    ~SnapshotWriter();
    SnapshotWriter(const SnapshotWriter&) = delete;
    SnapshotWriter& operator=(const SnapshotWriter&) = delete;
    Status Write(std::string_view bytes);
    // `expected_sha256` (optional) must match what arrived.
    StatusOr<v1::SnapshotInfo> Finish(const std::string& expected_sha256);

   private:
    friend class StateStore;
    SnapshotWriter() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };
  StatusOr<std::unique_ptr<SnapshotWriter>> BeginSnapshot(const std::string& session_id);

  // The session's snapshot, read in pieces of up to `chunk_bytes` and handed to `sink`
  // (false from the sink stops). DataLoss when the file's bytes fail the recorded checksum
  // (after the sink saw them: the caller discards what it received).
  Status ReadSnapshot(
      const std::string& session_id, size_t chunk_bytes,
      const std::function<bool(const v1::SnapshotInfo& info, std::string_view bytes)>& sink);

  const std::string& dir() const { return dir_; }
  // Bytes of the database files and snapshots, for metrics.
  int64_t DiskBytes() const;

 private:
  StateStore(std::string dir, StateStoreOptions options, Database db);
  Status Migrate();
  Status RemoveOrphanSnapshots();
  int64_t Now() const { return options_.now_ms(); }

  // Runs `apply` in one write transaction. With a request id already applied by the same
  // method, returns that call's stored response (replayed = true) and applies nothing.
  template <typename Response>
  StatusOr<Response> Mutate(const std::string& request_id, const char* method,
                            const std::function<StatusOr<Response>()>& apply, bool* replayed);

  StatusOr<v1::Session> LoadSession(const std::string& id);
  Status AddCounters(const std::string& scope,
                     const google::protobuf::Map<std::string, int64_t>& counters);
  StatusOr<v1::Usage> LoadUsage(const std::string& scope);

  const std::string dir_;
  const StateStoreOptions options_;
  mutable std::mutex mu_;
  Database db_;
  int64_t snapshot_counter_ = 0;  // makes each snapshot file name unique
};

}  // namespace agentry::state
