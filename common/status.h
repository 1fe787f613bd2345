// Status and Result<T>: how every qseal component reports errors.
//
// A Status is a canonical code plus a human message. The code tells the caller what to do next
// (see IsRetryable); the message tells an operator what happened and keeps foreign error names
// (CKR_*, RocksDB codes, errno names) intact. Result<T> holds either a value or a non-OK Status and
// is shaped like std::expected so it can become one later.
//
// Status and Result are thread-compatible value types.
#pragma once

#include <cstdlib>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace qseal {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input or config: never retry.
  kFailedPrecondition,  // the system is not in a state to do this (conflict, not ready).
  kResourceExhausted,   // backpressure: retry later.
  kUnavailable,         // HSM, device or I/O down: retry with back-off.
  kDeadlineExceeded,    // a deadline passed before the work finished.
  kCancelled,           // shutdown in progress.
  kDataLoss,            // corruption: stop and alert.
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,  // authenticated but not allowed (or a locked/wrong PIN).
  kUnauthenticated,
  kInternal,  // a bug or an impossible state.
};

// "OK", "INVALID_ARGUMENT", ...: stable names used in logs, metrics labels and API errors.
std::string_view StatusCodeName(StatusCode code);

// True for the codes where trying the same operation again later may succeed.
bool IsRetryable(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: message" (or "OK").
  std::string ToString() const;

  // Returns a copy whose message is prefixed with context: "context: message".
  Status WithContext(std::string_view context) const;

  // Explicitly drops a Status the caller has decided not to act on.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& status);

inline Status InvalidArgumentError(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status FailedPreconditionError(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status ResourceExhaustedError(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceededError(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status CancelledError(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status DataLossError(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) {
  return {StatusCode::kAlreadyExists, std::move(m)};
}
inline Status PermissionDeniedError(std::string m) {
  return {StatusCode::kPermissionDenied, std::move(m)};
}
inline Status UnauthenticatedError(std::string m) {
  return {StatusCode::kUnauthenticated, std::move(m)};
}
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// A value of T or a non-OK Status. Accessing the value of an error Result aborts: that is a bug
// in the caller, not an environmental condition.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) status_ = InternalError("Result constructed from an OK Status");
  }

  bool ok() const { return value_.has_value(); }
  bool has_value() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }

  // OK when a value is held.
  const Status& status() const { return status_; }
  const Status& error() const { return status_; }

  T& value() & {
    CheckValue();
    return *value_;
  }
  const T& value() const& {
    CheckValue();
    return *value_;
  }
  T&& value() && {
    CheckValue();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return ok() ? *value_ : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void CheckValue() const {
    if (!value_.has_value()) std::abort();
  }

  std::optional<T> value_;
  Status status_;
};

}  // namespace qseal

#define QSEAL_STATUS_CONCAT_INNER(a, b) a##b
#define QSEAL_STATUS_CONCAT(a, b) QSEAL_STATUS_CONCAT_INNER(a, b)

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define QSEAL_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::qseal::Status qseal_status_ = (expr);        \
    if (!qseal_status_.ok()) return qseal_status_; \
  } while (false)

// Evaluates `rexpr` (a Result<T>); on error returns its Status, else moves the value into `lhs`.
#define QSEAL_ASSIGN_OR_RETURN(lhs, rexpr) \
  QSEAL_ASSIGN_OR_RETURN_IMPL(QSEAL_STATUS_CONCAT(qseal_result_, __LINE__), lhs, rexpr)
#define QSEAL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
