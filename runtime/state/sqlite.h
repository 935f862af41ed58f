// runtime/state/sqlite.h — a small RAII layer over SQLite for the state store: a connection,
// prepared statements with typed binds and columns, transactions, and SQLite's result codes
// turned into Status with the meaning a caller acts on.
//
//   AGENTRY_ASSIGN_OR_RETURN(Database db, Database::Open(path));
//   AGENTRY_ASSIGN_OR_RETURN(Statement s, db.Prepare("SELECT seq FROM events WHERE id = ?"));
//   s.Bind(1, id);
//   while (true) {
//     AGENTRY_ASSIGN_OR_RETURN(bool row, s.Step());
//     if (!row) break;
//     int64_t seq = s.Int(0);
//   }
//
// Errors: a full volume is ResourceExhausted, a read-only one FailedPrecondition, a corrupt
// file DataLoss, a lock held too long Unavailable; every message names the database file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace agentry::state {

class Statement;

class Database {
 public:
  // Opens (creating it if absent) the database at `path` in WAL mode with synchronous=FULL:
  // a committed transaction is on disk when Commit returns.
  static StatusOr<Database> Open(const std::string& path);
  Database() = default;
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows.
  Status Exec(std::string_view sql);
  StatusOr<Statement> Prepare(std::string_view sql);
  int64_t LastInsertRowId() const;
  const std::string& path() const { return path_; }

  // The Status for SQLite result code `rc` of `what`, with SQLite's message.
  Status Error(int rc, std::string_view what) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // 1-based, as in SQL. Text and blobs are copied by SQLite.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& BindBlob(int index, std::string_view bytes);
  Statement& BindNull(int index);

  // True when a row is ready to be read, false when the statement is done.
  StatusOr<bool> Step();
  // Step for a statement that returns no rows.
  Status Run();
  // For running the same statement again with new binds.
  void Reset();

  // 0-based, as in SQLite's column API.
  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  friend class Database;
  Statement(const Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  const Database* db_;
  sqlite3_stmt* stmt_;
  Status bind_error_;  // the first bind that failed; reported by Step
};

// BEGIN IMMEDIATE on construction (the write lock, so two writers never deadlock on upgrade);
// ROLLBACK on destruction unless Commit succeeded.
class Transaction {
 public:
  static StatusOr<Transaction> Begin(Database* db);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

}  // namespace agentry::state
