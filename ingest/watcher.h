// The watched folder door (DESIGN.md §5, "Watched folder (contract)").
//
// Per configured root the FolderWatcher owns four folders:
//   inbox/       producers write under a temporary name (a dot-file or *.tmp) and rename in, or
//                write in place and close; the watcher ignores dot-files, *.tmp, symlinks, FIFOs,
//                sockets, devices and directories (each logged once), and never claims a regular
//                file that some process still holds open for writing.
//   processing/  a file is claimed by an atomic renameat2(RENAME_NOREPLACE) from inbox/ and then
//                streamed into the durable queue (source kWatch, client = the root, name = the
//                claimed name, an idempotency key derived from root, claimed name, inode, size and
//                mtime so that enqueueing the same claimed file again after a crash returns the
//                same document id). "Accepted" is the synced queue commit.
//   outbox/      Publish() writes outbox/<name>.p7s (detached) or outbox/<name>.p7m (enveloping)
//                as temp file + fsync + rename + directory fsync, then moves the original from
//                processing/<name> to outbox/<name> (for both packagings).
//   failed/      PublishFailure() moves the original to failed/<name> beside
//                failed/<name>.error.json {"code","message","sha256","attempts","failed_at"}.
//                A file larger than max_file_bytes goes there straight from inbox/ without being
//                read (code "INVALID_ARGUMENT", sha256 null, attempts 0).
// Names never collide: a claimed name is unique across processing/, outbox/ and failed/ (a
// "-1", "-2", ... suffix before the extension when needed), and nothing is ever overwritten
// except the watcher's own earlier output for the same document.
//
// Start() reconciles processing/ with the queue (every file left there by an earlier run is
// enqueued again with the same idempotency key: a document already in the queue keeps its id; one
// already sealed or failed is published from the queue's record), then scans inbox/ and watches it
// with inotify (IN_MOVED_TO, IN_CLOSE_WRITE; a full rescan on IN_Q_OVERFLOW) and, when
// poll_interval > 0, also rescans on that interval (network file systems deliver no inotify
// events). Claiming stops while Queue::Admit() is not OK (backpressure) and resumes, with a full
// rescan, once the queue admits again (the queue applies its low watermark).
//
// The engine routes a sealed or failed record whose source is kWatch to the watcher whose root()
// equals record.client, and calls Publish / PublishFailure before it commits the record's final
// state in the queue. Both are idempotent per document: after a crash between the publication and
// the queue commit, a second call finds the outputs in place and returns OK without writing
// anything new.
//
// Thread-safety: FolderWatcher is thread-safe. Start/Stop are called by the daemon's main thread;
// the watcher runs its own thread between them; Publish/PublishFailure may be called from any
// number of engine threads at once (also before Start and after Stop, as long as the object lives).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"
#include "engine/publisher.h"
#include "queue/queue.h"

namespace qseal::metrics {
class Metrics;
}

namespace qseal::ingest {

struct WatchOptions {
  // The folder root holding inbox/, processing/, outbox/ and failed/ (created if missing). Also the
  // `client` of every record this watcher enqueues. Required.
  std::string root;
  // The profile documents from this root are sealed with. Required.
  std::string profile;
  // When > 0, inbox/ is also rescanned this often (for file systems without inotify events).
  // Default: 0 (inotify only).
  std::chrono::milliseconds poll_interval{0};
  // Files larger than this go to failed/ unread. Default: 4 GiB.
  std::uint64_t max_file_bytes = 4ull << 30;
  // How often admission is re-checked while paused by backpressure. Default: 100 ms.
  std::chrono::milliseconds backpressure_recheck{100};
  // Acceptances and refusals are counted here; may be null. Must outlive the watcher.
  // Default: null.
  metrics::Metrics* metrics = nullptr;
};

// A snapshot of a watcher's counters. Thread-compatible value type.
struct WatcherStats {
  std::uint64_t claimed = 0;           // files renamed from inbox/ to processing/ and enqueued
  std::uint64_t reconciled = 0;        // files found in processing/ at Start and enqueued again
  std::uint64_t duplicates = 0;        // enqueues that returned an existing id (idempotency hits)
  std::uint64_t published = 0;         // Publish calls that wrote outputs
  std::uint64_t failed = 0;            // files moved to failed/ (PublishFailure or oversized)
  std::uint64_t skipped = 0;           // inbox entries left alone (not regular, still open, ...)
  std::uint64_t scans = 0;             // full scans of inbox/ so far
  std::uint64_t pending_in_inbox = 0;  // candidates seen but not yet claimed
  bool paused = false;                 // claiming stopped by backpressure
};

class FolderWatcher : public engine::Publisher {
 public:
  // `queue` and `clock` must outlive the watcher. Does no I/O.
  FolderWatcher(WatchOptions options, queue::Queue* queue, Clock& clock = Clock::Real());
  ~FolderWatcher() override;  // Stop()s.
  FolderWatcher(const FolderWatcher&) = delete;
  FolderWatcher& operator=(const FolderWatcher&) = delete;

  // Creates the four folders if missing, reconciles processing/ with the queue, scans inbox/ and
  // starts the watcher thread. Blocks for the reconciliation (one queue commit per file found).
  // kInvalidArgument for bad options, kUnavailable when a folder cannot be created or opened or
  // inotify is unavailable, the queue's error when reconciliation cannot enqueue (the watcher is
  // then not started). kFailedPrecondition when already started.
  Status Start();
  // Stops claiming and joins the watcher thread (a claim in progress finishes first). Idempotent.
  // Publish/PublishFailure keep working after Stop.
  void Stop();

  WatcherStats Stats() const;
  const std::string& root() const;

  // engine::Publisher. kInvalidArgument when the record is not from this root or the extension
  // is neither "p7s" nor "p7m"; kUnavailable on I/O errors (retry later; nothing half-written is
  // visible under a final name); kFailedPrecondition before the folders exist (Start never ran).
  Status Publish(const queue::Record& record, ByteSpan seal, std::string_view extension) override;
  // Publish for several seals sharing two directory fsyncs (see engine::Publisher).
  std::vector<Status> PublishBatch(std::span<const engine::PublishItem> items) override;
  Status PublishFailure(const queue::Record& record, const Status& error) override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::ingest
