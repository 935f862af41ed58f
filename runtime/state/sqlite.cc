#include "runtime/state/sqlite.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <sqlite3.h>

namespace agentry::state {

StatusOr<Database> Database::Open(const std::string& path) {
  Database db;
  db.path_ = path;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db.db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return db.Error(rc, "opening");
  sqlite3_extended_result_codes(db.db_, 1);
  // A writer waits this long for another connection's lock (an `agentry` CLI reading the
  // same file) before the call fails Unavailable.
  sqlite3_busy_timeout(db.db_, 5000);
  // WAL: readers do not block the writer and a commit is one append to the log; FULL: the
  // log is fsynced at every commit, so an acknowledged write survives power loss as well
  // as a killed process.
  AGENTRY_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode = WAL"));
  AGENTRY_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous = FULL"));
  AGENTRY_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys = ON"));
  return db;
}

Database::~Database() {
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

namespace {

// Whether the file system holding `file` refuses writes: mounted read-only, or (remounted
// under a running process) answering a new file's creation with EROFS.
bool VolumeIsReadOnly(const std::string& file) {
  const std::string dir = file.substr(0, file.rfind('/') + 1);
  struct statvfs fs {};
  if (statvfs(dir.empty() ? "." : dir.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0) {
    return true;
  }
  const std::string probe = dir + ".write-probe";
  const int fd = open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    unlink(probe.c_str());
    return false;
  }
  return errno == EROFS;
}

}  // namespace

Status Database::Error(int rc, std::string_view what) const {
  const std::string detail = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const std::string message = path_ + ": " + std::string(what) + ": " + detail;
  // A write refused for lack of space surfaces as SQLITE_FULL after a short write, but as an
  // I/O error when write() itself fails (EFBIG at a file-size limit, EDQUOT at a quota); the
  // errno behind it says which.
  // SQLite keeps the errno of the failed write only until its next system call (the
  // rollback's), so a failed write with no errno to tell is taken for a full volume too: what
  // the caller does is the same (nothing was written; retry once space is freed).
  // A volume remounted read-only under the process fails the same writes with EROFS; with
  // the errno gone, the volume itself is asked.
  const int err = db_ != nullptr ? sqlite3_system_errno(db_) : 0;
  if ((rc & 0xff) == SQLITE_IOERR &&
      (err == EROFS || (rc == SQLITE_IOERR_WRITE && err == 0 && VolumeIsReadOnly(path_)))) {
    rc = SQLITE_READONLY;
  } else if (rc == SQLITE_IOERR_WRITE ||
             ((rc & 0xff) == SQLITE_IOERR && (err == ENOSPC || err == EFBIG || err == EDQUOT))) {
    rc = SQLITE_FULL;
  }
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return ResourceExhaustedError(message +
                                    " (the state volume is full, over quota or failing writes; "
                                    "nothing was written)");
    case SQLITE_READONLY:
      return FailedPreconditionError(message + " (the state volume is read-only)");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(message);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return FailedPreconditionError(message);
    case SQLITE_IOERR:
      return UnavailableError(message + " (I/O error; nothing was written)");
    case SQLITE_CONSTRAINT:
      return AlreadyExistsError(message);
    default:
      return InternalError(message);
  }
}

Status Database::Exec(std::string_view sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &error);
  sqlite3_free(error);  // Error() reads the same message from the connection
  if (rc != SQLITE_OK) return Error(rc, sql.substr(0, 60));
  return OkStatus();
}

StatusOr<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "preparing " + std::string(sql.substr(0, 60)));
  return Statement(this, stmt);
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_error_(std::move(other.bind_error_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_error_ = std::move(other.bind_error_);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->Error(rc, "binding");
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->Error(rc, "binding");
  return *this;
}

Statement& Statement::BindBlob(int index, std::string_view bytes) {
  const int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->Error(rc, "binding");
  return *this;
}

Statement& Statement::BindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_.ok()) bind_error_ = db_->Error(rc, "binding");
  return *this;
}

StatusOr<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(rc, std::string("running ") + sqlite3_sql(stmt_));
}

Status Statement::Run() {
  AGENTRY_ASSIGN_OR_RETURN(const bool row, Step());
  (void)row;  // a statement run for its effect may still return a row (RETURNING)
  return OkStatus();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = OkStatus();
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::Double(int column) const { return sqlite3_column_double(stmt_, column); }

std::string Statement::Text(int column) const {
  const auto* text = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  return text != nullptr ? std::string(static_cast<const char*>(text), size) : std::string();
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

StatusOr<Transaction> Transaction::Begin(Database* db) {
  AGENTRY_RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
  return Transaction(db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  Status s = db_->Exec("COMMIT");
  // A failed COMMIT (disk full) leaves the transaction open; the destructor rolls it back.
  if (s.ok()) db_ = nullptr;
  return s;
}

}  // namespace agentry::state
