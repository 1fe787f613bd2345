// The watched folder door (DESIGN.md §5, "Watched folder (contract)"): the reading half. The
// publishing half, outbox/ and failed/, is a publish::FolderOutbox (publish/folder_outbox.h) for
// the same root, which the daemon hands to the engine as the publisher of this root's documents.
//
// Per configured root the FolderWatcher reads two folders:
//   inbox/       producers write under a temporary name (a dot-file or *.tmp) and rename in, or
//                write in place and close; the watcher ignores dot-files, *.tmp, symlinks, FIFOs,
//                sockets, devices and directories (each logged once), and never claims a regular
//                file that some process still holds open for writing. A file larger than
//                max_file_bytes, one with more than one hard link (st_nlink > 1) and, when
//                owner_uid is set, one owned by another uid go to failed/ unread
//                (FolderOutbox::MoveUnreadToFailed: code "INVALID_ARGUMENT", the reason in the
//                message, sha256 null, attempts 0). The link count is checked again on the claimed
//                file, and max_file_bytes on the bytes read: a file that grows past it while it is
//                read goes to failed/ (through FolderOutbox::PublishFailure) and is not accepted.
//   processing/  a file is claimed by an atomic renameat2(RENAME_NOREPLACE) from inbox/ and then
//                streamed into the durable queue (source kWatch, client = the root, name = the
//                claimed name, an idempotency key derived from root, claimed name, inode, size and
//                mtime so that enqueueing the same claimed file again after a crash returns the
//                same document id). "Accepted" is the synced queue commit; from then on the file
//                belongs to the outbox, which moves it beside its seal or to failed/. A claimed
//                file the queue refuses for good (its bytes changed under the same key) goes to
//                failed/ through the outbox at once.
// Claimed names come from FolderOutbox::FreeName: unique across processing/, outbox/ and failed/.
//
// Start() opens the outbox, reconciles processing/ with the queue (every file left there by an
// earlier run is enqueued again with the same idempotency key: a document already in the queue
// keeps its id; one already sealed or failed goes to FolderOutbox::PublishFinished), then scans
// inbox/ and watches it with inotify (IN_MOVED_TO, IN_CLOSE_WRITE; a full rescan on IN_Q_OVERFLOW)
// and, when poll_interval > 0, also rescans on that interval (network file systems deliver no
// inotify events). Claiming stops while Queue::Admit() is not OK (backpressure) and resumes, with
// a full rescan, once the queue admits again (the queue applies its low watermark).
//
// Thread-safety: FolderWatcher is thread-safe. Start/Stop are called by the daemon's main thread;
// the watcher runs its own thread between them; Stats may be called from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "queue/queue.h"

namespace qseal::metrics {
class Metrics;
}
namespace qseal::publish {
class FolderOutbox;
}

namespace qseal::ingest {

struct WatchOptions {
  // The folder root holding inbox/, processing/, outbox/ and failed/ (created if missing). Also the
  // `client` of every record this watcher enqueues; must equal the outbox's root. Required.
  std::string root;
  // The profile documents from this root are sealed with. Required.
  std::string profile;
  // When > 0, inbox/ is also rescanned this often (for file systems without inotify events).
  // Default: 0 (inotify only).
  std::chrono::milliseconds poll_interval{0};
  // Files larger than this go to failed/ unread. The limit also holds while a claimed file is
  // read: one that grows past it fails (failed/, the bytes read so far dropped), so a writer
  // still appending cannot push more into the queue. Default: 256 MiB (as `[[watch]]
  // max_file_bytes`).
  std::uint64_t max_file_bytes = 256ull << 20;
  // When set, only files owned by this uid are claimed; others go to failed/ unread with the
  // reason (`[[watch]] owner`). Default: unset (any owner).
  std::optional<uid_t> owner_uid = std::nullopt;
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
  std::uint64_t published = 0;         // the outbox's: seals published with their original
  std::uint64_t failed = 0;            // the outbox's: files moved to failed/ (also refused)
  std::uint64_t skipped = 0;           // inbox entries left alone (not regular, still open, ...)
  std::uint64_t scans = 0;             // full scans of inbox/ so far
  std::uint64_t pending_in_inbox = 0;  // candidates seen but not yet claimed
  bool paused = false;                 // claiming stopped by backpressure
};

class FolderWatcher {
 public:
  // `queue` and `outbox` (the same root's) must outlive the watcher. Does no I/O.
  FolderWatcher(WatchOptions options, queue::Queue* queue, publish::FolderOutbox* outbox);
  ~FolderWatcher();  // Stop()s.
  FolderWatcher(const FolderWatcher&) = delete;
  FolderWatcher& operator=(const FolderWatcher&) = delete;

  // Opens the outbox (FolderOutbox::Open), creates inbox/ if missing, reconciles processing/ with
  // the queue, scans inbox/ and starts the watcher thread. Blocks for the reconciliation (one
  // queue commit per file found). kInvalidArgument for bad options (no profile, no queue, no
  // outbox or one for another root), kUnavailable when a folder cannot be created or opened or
  // inotify is unavailable, the queue's or the outbox's error when reconciliation cannot enqueue
  // or publish (the watcher is then not started). kFailedPrecondition when already started.
  Status Start();
  // Stops claiming and joins the watcher thread (a claim in progress finishes first). Idempotent.
  // The outbox keeps working after Stop.
  void Stop();

  // The watcher's counters, with published and failed from the outbox.
  WatcherStats Stats() const;
  const std::string& root() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::ingest
