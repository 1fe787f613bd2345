// The one place where rocksdb::Status becomes qseal::Status. Thread-safe (pure).
#pragma once

#include <string_view>

#include <rocksdb/status.h>

#include "common/status.h"

namespace qseal::queue::detail {

// OK stays OK. Otherwise the code maps as: NotFound -> kNotFound, Corruption -> kDataLoss,
// IOError (any subcode, including NoSpace) / Busy / TimedOut / TryAgain -> kUnavailable,
// InvalidArgument -> kInvalidArgument, NotSupported -> kFailedPrecondition, ShutdownInProgress /
// Aborted -> kCancelled, anything else -> kInternal. The message is
// "<context>: rocksdb <CodeName>: <rocksdb message>" so the RocksDB name survives.
Status FromRocksDb(const rocksdb::Status& status, std::string_view context);

}  // namespace qseal::queue::detail
