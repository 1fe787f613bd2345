#include "queue/detail/rocksdb_status.h"

#include <string>

namespace qseal::queue::detail {
namespace {

struct Mapping {
  StatusCode code;
  std::string_view name;
};

Mapping Map(const rocksdb::Status& s) {
  using C = rocksdb::Status::Code;
  switch (s.code()) {
    case C::kOk:
      return {StatusCode::kOk, "OK"};
    case C::kNotFound:
      return {StatusCode::kNotFound, "NotFound"};
    case C::kCorruption:
      return {StatusCode::kDataLoss, "Corruption"};
    case C::kNotSupported:
      return {StatusCode::kFailedPrecondition, "NotSupported"};
    case C::kInvalidArgument:
      return {StatusCode::kInvalidArgument, "InvalidArgument"};
    case C::kIOError:
      return {StatusCode::kUnavailable, s.IsNoSpace() ? "IOError(NoSpace)" : "IOError"};
    case C::kMergeInProgress:
      return {StatusCode::kInternal, "MergeInProgress"};
    case C::kIncomplete:
      return {StatusCode::kInternal, "Incomplete"};
    case C::kShutdownInProgress:
      return {StatusCode::kCancelled, "ShutdownInProgress"};
    case C::kTimedOut:
      return {StatusCode::kUnavailable, "TimedOut"};
    case C::kAborted:
      return {StatusCode::kCancelled, "Aborted"};
    case C::kBusy:
      return {StatusCode::kUnavailable, "Busy"};
    case C::kExpired:
      return {StatusCode::kInternal, "Expired"};
    case C::kTryAgain:
      return {StatusCode::kUnavailable, "TryAgain"};
    case C::kCompactionTooLarge:
      return {StatusCode::kInternal, "CompactionTooLarge"};
    case C::kColumnFamilyDropped:
      return {StatusCode::kInternal, "ColumnFamilyDropped"};
    case C::kMaxCode:
      break;
  }
  return {StatusCode::kInternal, "Unknown"};
}

}  // namespace

Status FromRocksDb(const rocksdb::Status& status, std::string_view context) {
  if (status.ok()) return Status::Ok();
  Mapping m = Map(status);
  std::string message(context);
  message += ": rocksdb ";
  message += m.name;
  message += ": ";
  message += status.ToString();
  return Status(m.code, std::move(message));
}

}  // namespace qseal::queue::detail
