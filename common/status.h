// common/status.h — the result type used across Agentry's module boundaries.
//
// Modelled on absl::Status: a canonical code (the same numbering as gRPC, so a Status
// crosses the node daemon's and state sidecar's gRPC APIs unchanged) plus a message that
// names what was wrong — the field path, the byte offset, the session id. Fallible calls
// return Status or StatusOr<T>; exceptions never cross a module boundary.
//
//   agentry::StatusOr<AgentSpec> spec = LoadAgentManifest(text);
//   if (!spec.ok()) return spec.status();
//   Use(*spec);
//
// Choosing a code: pick by what the caller should do next.
//   kInvalidArgument     the request itself is wrong; retrying the same request never helps.
//   kFailedPrecondition  the system is not in a state to do it (session closed, model not
//                        loaded); retry only after fixing that state.
//   kUnavailable         transient; retry with backoff.
//   kResourceExhausted   quota or memory exhausted (token budget, KV memory); back off.
//   kNotFound / kAlreadyExists  the named object is missing / already there.
//   kDataLoss            stored bytes are corrupt (checksum mismatch, torn record).
//   kInternal            an invariant broke; a bug in Agentry, not in the caller.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace agentry {

// Values match google.rpc.Code / grpc::StatusCode.
enum class StatusCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// "INVALID_ARGUMENT" etc.; "UNKNOWN_CODE" for values outside the enum.
std::string_view StatusCodeName(StatusCode code);

// The HTTP status a REST API should answer with for `code` (400, 404, 409, 429, 503, ...).
int HttpStatusFromCode(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: spec.replicas: must be >= 0"; "OK" when ok().
  std::string ToString() const;

  // A copy whose message is "<prefix>: <message>"; OK stays OK. Used to add context as an
  // error travels up ("loading /etc/agentry/agent.yaml: spec.replicas: ...").
  Status WithPrefix(std::string_view prefix) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
Status CancelledError(std::string message);
Status UnknownError(std::string message);
Status InvalidArgumentError(std::string message);
Status DeadlineExceededError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status PermissionDeniedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status FailedPreconditionError(std::string message);
Status AbortedError(std::string message);
Status OutOfRangeError(std::string message);
Status UnimplementedError(std::string message);
Status InternalError(std::string message);
Status UnavailableError(std::string message);
Status DataLossError(std::string message);
Status UnauthenticatedError(std::string message);

// Either a T or a non-OK Status. Accessing the value of an error result is a bug and aborts
// with the status printed (the belief: callers check ok() first, as with absl::StatusOr).
template <typename T>
class [[nodiscard]] StatusOr {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Status>, "StatusOr<Status> is ambiguous");

 public:
  // Implicit on purpose, so `return value;` and `return SomeError(...);` both read naturally.
  StatusOr(const T& value) : value_(value) {}        // NOLINT(google-explicit-constructor)
  StatusOr(T&& value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  StatusOr(Status status);                           // NOLINT(google-explicit-constructor)

  bool ok() const { return value_.has_value(); }
  const Status& status() const& { return status_; }

  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T& value() & {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  void CheckOk() const;

  Status status_;
  std::optional<T> value_;
};

namespace internal {
[[noreturn]] void DieBecauseNotOk(const Status& status);
[[noreturn]] void DieBecauseOkStatusInStatusOr();
}  // namespace internal

template <typename T>
StatusOr<T>::StatusOr(Status status) : status_(std::move(status)) {
  // An OK status carries no value; constructing one is a caller bug.
  if (status_.ok()) internal::DieBecauseOkStatusInStatusOr();
}

template <typename T>
void StatusOr<T>::CheckOk() const {
  if (!value_.has_value()) internal::DieBecauseNotOk(status_);
}

}  // namespace agentry

// Propagate a non-OK Status from an expression returning Status.
#define AGENTRY_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::agentry::Status agentry_status_ = (expr);        \
    if (!agentry_status_.ok()) return agentry_status_; \
  } while (0)

#define AGENTRY_STATUS_CONCAT_INNER_(a, b) a##b
#define AGENTRY_STATUS_CONCAT_(a, b) AGENTRY_STATUS_CONCAT_INNER_(a, b)

// `AGENTRY_ASSIGN_OR_RETURN(auto spec, LoadSpec(text));` declares/assigns from a StatusOr
// or returns its error.
#define AGENTRY_ASSIGN_OR_RETURN(lhs, expr) \
  AGENTRY_ASSIGN_OR_RETURN_IMPL_(AGENTRY_STATUS_CONCAT_(agentry_statusor_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `lhs` may be a declaration ("auto x").
#define AGENTRY_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
