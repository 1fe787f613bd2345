// The publishing half of a watched folder (DESIGN.md §5, "Watched folder (contract)"); the
// watcher (ingest/watcher.h) is the reading half. Per folder root the FolderOutbox owns:
//   outbox/      Publish() writes the seal under the name its profile's format gives it
//                (SealNamer: outbox/<name>.p7s for cades-detached, .p7m for cades-enveloping) as
//                temp file + fsync + rename + directory fsync, then moves the original from
//                processing/<name> to outbox/<name> (for every format).
//   failed/      PublishFailure() moves the original to failed/<name> beside
//                failed/<name>.error.json {"code","message","sha256","attempts","failed_at"}.
//                MoveUnreadToFailed() puts there a file that was never accepted (the watcher's
//                oversized inbox entries: sha256 null, attempts 0).
// and the accepted files in processing/. Who owns processing/<name>: the watcher creates it (the
// claim's rename from inbox/) and streams it into the queue; from the synced queue commit on
// ("accepted") it is the outbox's, and only the outbox moves it: beside its seal, or to failed/.
// Before the move beside a seal the outbox checks that the file still holds the accepted bytes
// (size and SHA-256 as the queue recorded them): a file changed after acceptance (a second hard
// link, a writer that opened it before the claim) is not published as covered by the seal; the
// queue's copy goes to outbox/ instead and the changed file to failed/ with the reason
// (FAILED_PRECONDITION). The watcher touches an accepted file again only when it starts
// (reconciliation): it enqueues it again, which the queue's idempotency key maps to the same
// document, and hands a record the queue already finished to PublishFinished().
//
// Names never collide: FreeName() gives a name used by nothing in processing/, outbox/ or failed/
// nor by any seal a configured format would give it (a "-1", "-2", ... suffix before the
// extension when needed, publish/folder_names.h), and nothing
// is ever overwritten except the outbox's own earlier output for the same document. Temp files are
// ".qseal-<pid>-<n>.tmp" (names the watcher ignores); Open() removes those a dead process left.
//
// Publish and PublishFailure are idempotent per document: after a crash between the publication
// and the queue commit, a second call finds the outputs in place and returns OK without writing
// anything new (see publish/publisher.h).
//
// Thread-safety: FolderOutbox is thread-safe; every method may be called from any number of
// threads at once (the engine's publishing threads and the watcher's thread).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"
#include "publish/publisher.h"
#include "queue/queue.h"

namespace qseal::publish {

// A snapshot of an outbox's counters. Thread-compatible value type.
struct FolderOutboxStats {
  std::uint64_t published = 0;  // seals published with their original (not counting repeats)
  std::uint64_t failed = 0;     // files moved to failed/ (PublishFailure or MoveUnreadToFailed)
};

class FolderOutbox : public Publisher {
 public:
  // `root` is the folder root holding processing/, outbox/ and failed/ (created if missing); it
  // is also the `client` of every record this outbox accepts. `queue` (read for the accepted copy
  // of a changed file and for PublishFinished), `namer` (seal names, e.g. the engine) and `clock`
  // (error.json's failed_at) must outlive the outbox. Does no I/O.
  FolderOutbox(std::string root, queue::Queue* queue, const SealNamer* namer,
               Clock& clock = Clock::Real());
  ~FolderOutbox() override;
  FolderOutbox(const FolderOutbox&) = delete;
  FolderOutbox& operator=(const FolderOutbox&) = delete;

  // Creates root, processing/, outbox/ and failed/ if missing, opens them (the descriptors live as
  // long as the outbox; later calls reuse them) and removes the temp files other processes left in
  // outbox/ and failed/. Blocking file-system calls only. kInvalidArgument for an empty root,
  // kUnavailable when a folder cannot be created or opened. Publishing calls open the folders
  // themselves when needed, so Open is only required before FreeName and MoveUnreadToFailed.
  Status Open();

  const std::string& root() const;
  FolderOutboxStats Stats() const;

  // Publisher. kInvalidArgument when the record is not from this root, its name is not a safe
  // path component, or its profile has no seal name (SealNamer) or one that is not a safe name
  // distinct from the document's; kUnavailable on I/O errors (retry later; nothing half-written
  // is visible under a final name).
  Status Publish(const queue::Record& record, ByteSpan seal) override;
  // Publish for several seals sharing two directory fsyncs (outbox/, then processing/): every seal
  // is durable under a temp name before any of the batch is renamed.
  std::vector<Status> PublishBatch(std::span<const PublishItem> items) override;
  // error.json's code is StatusCodeName(error.code()), its message error.message().
  Status PublishFailure(const queue::Record& record, const Status& error) override;

  // Publishes the final outcome the queue already holds for `record`: a sealed record's seal
  // (read from the queue, named by the record's profile) as Publish does, a failed
  // record's error_code and error_message as PublishFailure does. OK without doing anything for a
  // record that is not final. For a restart that finds a finished document still in processing/.
  Status PublishFinished(const queue::Record& record);

  // The first SuffixedName(name, k) that nothing in processing/, outbox/ or failed/ uses (nor
  // any output derived from it). Another thread may take it meanwhile: renames into it must not
  // replace (RENAME_NOREPLACE) and try again. kFailedPrecondition before Open succeeded.
  Result<std::string> FreeName(const std::string& name) const;

  // Moves `name` from the folder open as `from_dir_fd` (the watcher's inbox/) to failed/ under a
  // free name, after writing its error.json (code and message from `reason`, sha256 null,
  // attempts 0); the file is never read. Returns the name under failed/, or "" when the file was
  // gone before the move. kFailedPrecondition before Open, kUnavailable on I/O errors (the
  // error.json is removed again when the move fails).
  Result<std::string> MoveUnreadToFailed(int from_dir_fd, const std::string& name,
                                         const Status& reason);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::publish
