// Test seam: opens a Queue whose RocksDB uses the given Env (e.g. a FileSystem wrapper that
// injects WAL sync failures). Production code calls Queue::Open. Thread-safe as Queue::Open.
#pragma once

#include <memory>

#include <rocksdb/env.h>

#include "common/clock.h"
#include "common/status.h"
#include "queue/queue.h"

namespace qseal::queue::detail {

// `env` must outlive the queue; nullptr means the default Env.
Result<std::unique_ptr<Queue>> OpenWithEnv(QueueOptions options, Clock& clock, rocksdb::Env* env);

}  // namespace qseal::queue::detail
