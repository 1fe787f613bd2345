// The durable document queue: where "accepted" begins.
//
// A Queue stores every accepted document (its metadata record and its bytes) in RocksDB under one
// directory, hands documents out to the engine under time-limited leases, and keeps the seal of
// each sealed document for a retention period. Records move
//
//   kQueued --Lease--> kLeased --Complete--> kSealed --(retention)--> deleted
//      ^                  |  \--Fail(permanent or attempts exhausted)--> kFailed --(retention)-->
//      +--Fail(retryable, with back-off) / lease expiry / restart--+
//
// Durability contract. Enqueue, Commit, Complete and Fail return OK only after the WriteBatch that
// holds their change was written with sync=true (WAL fdatasync). Concurrent calls are merged into
// one batch by a committer thread (group commit), so N concurrent submitters cost about one
// fdatasync, not N. A document whose Enqueue/Commit returned OK survives kill -9 and power loss;
// one whose call did not return OK may or may not be present after a crash (never half-present).
// A failed WAL sync or a RocksDB background error makes the queue read-only for good: every later
// mutating call returns kUnavailable, Health() is non-OK, and nothing is retried silently; the
// process must close and reopen the queue (restart) once the cause is fixed.
//
// Crash recovery. Open() requeues every record found leased (its holder is gone), deletes spool
// files no record references, and refuses to open a corrupt database (kDataLoss, message names the
// problem) or a record that does not decode (kDataLoss naming the id) — nothing is skipped.
//
// Payload memory is bounded: documents up to QueueOptions::inline_payload_max_bytes are stored in
// RocksDB (large values in blob files); larger ones are streamed to a spool file under
// <path>/spool that is fsynced before the record referencing it is committed. Neither enqueue nor
// OpenPayload needs the whole document in memory.
//
// Errors used: kInvalidArgument (bad options or input), kNotFound (unknown id),
// kFailedPrecondition (idempotency conflict, seal not ready, queue closed), kResourceExhausted
// (above the high watermark), kUnavailable (I/O error, read-only after a sync failure), kDataLoss
// (corruption), kInternal (bug).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"

namespace qseal::queue {

enum class State : std::uint8_t { kQueued = 1, kLeased = 2, kSealed = 3, kFailed = 4 };
// kBroker: a message broker source (ingest/jetstream_source.h); its results go to a publisher.
enum class Source : std::uint8_t { kApi = 1, kWatch = 2, kBroker = 3 };

// "queued", "leased", "sealed", "failed" / "api", "watch", "broker": stable names for logs,
// metrics, JSON.
std::string_view StateName(State state);
std::string_view SourceName(Source source);

// A 128-bit, time-ordered document id (ULID layout: 48-bit Unix milliseconds, then 80 bits that are
// random for the first id of a millisecond and incremented after, so ids from one Queue are
// strictly increasing). Its string form is 26 characters of Crockford base32 (upper case), safe in
// URLs and file names, and sorts like the id. Thread-compatible value type.
class DocumentId {
 public:
  static constexpr std::size_t kSize = 16;
  static constexpr std::size_t kStringSize = 26;

  DocumentId() = default;                               // all zero: never issued by a Queue.
  static DocumentId FromBytes(ByteSpan sixteen_bytes);  // requires size 16 (else the zero id)
  // Accepts upper or lower case Crockford base32 (also I/L as 1, O as 0). kInvalidArgument
  // otherwise.
  static Result<DocumentId> Parse(std::string_view text);

  std::string ToString() const;
  const std::uint8_t* data() const { return bytes_; }
  ByteSpan bytes() const { return ByteSpan(bytes_, kSize); }
  bool IsZero() const;
  // The millisecond timestamp in the id (its creation time).
  std::chrono::system_clock::time_point Time() const;

  friend auto operator<=>(const DocumentId&, const DocumentId&) = default;
  friend bool operator==(const DocumentId&, const DocumentId&) = default;

 private:
  std::uint8_t bytes_[kSize] = {};
};

// The metadata of one document. Thread-compatible value type.
struct Record {
  DocumentId id;
  std::string profile;
  Source source = Source::kApi;
  std::string client;      // API client name (or the watch root for the watcher)
  std::string name;        // original file name, may be empty
  std::string media_type;  // e.g. "application/pdf", may be empty
  std::string sha256_hex;  // of the document bytes, lower-case hex (always known once accepted)
  std::uint64_t size = 0;  // document bytes
  State state = State::kQueued;
  std::uint32_t attempts = 0;  // leases handed out so far
  std::chrono::system_clock::time_point created_at;
  std::chrono::system_clock::time_point updated_at;
  std::chrono::system_clock::time_point sealed_at;       // epoch unless sealed
  std::chrono::system_clock::time_point lease_deadline;  // meaningful while kLeased
  std::chrono::system_clock::time_point not_before;      // back-off: not leased before this
  std::string error_code;  // StatusCodeName of the last failure, e.g. "UNAVAILABLE"; may be empty
  std::string error_message;  // last failure's message
  std::string source_ref;     // opaque to the queue; the watcher stores its processing/ path here
  std::string idempotency_key;
  std::string seal_media_type;  // set once sealed
  // Empty for an ordinary document. For a digest-only document (POST /v1/digests) the name of the
  // digest algorithm ("sha256", "sha384", "sha512"): the payload is then that digest's raw bytes,
  // not the document, and `size` and `sha256_hex` describe those bytes.
  std::string digest_algorithm;
};

// What an ingest door knows about a new document besides its bytes.
struct NewDocument {
  std::string profile;  // required
  Source source = Source::kApi;
  std::string client;
  std::string name;
  std::string media_type;
  // Optional. Scoped per client: (client, key) names one document until its record is deleted by
  // retention. Same key + same bytes -> the first id with duplicate=true; same key + other bytes
  // -> kFailedPrecondition.
  std::string idempotency_key;
  std::string source_ref;
  // Set for a digest-only document (see Record::digest_algorithm): the bytes appended are the
  // digest. The queue stores it as given; the doors check it.
  std::string digest_algorithm;
};

struct EnqueueResult {
  DocumentId id;
  bool duplicate = false;  // an idempotency hit: id is the earlier document's id
  std::string sha256_hex;
  std::uint64_t size = 0;
};

struct QueueOptions {
  // Directory of the queue (RocksDB files plus spool/). Created if missing. Required.
  std::string path;
  // Documents up to this size are stored inside RocksDB; larger ones in a spool file.
  // Default: 1 MiB.
  std::uint64_t inline_payload_max_bytes = 1 << 20;
  // Payload values at least this large go to RocksDB blob files (BlobDB) instead of the LSM tree.
  // Default: 16 KiB.
  std::uint64_t blob_min_bytes = 16 << 10;
  // Upper bounds for one group-committed WriteBatch. Default: 4096 operations, 64 MiB.
  std::size_t max_batch_ops = 4096;
  std::uint64_t max_batch_bytes = 64ull << 20;
  // When the committer wakes to fewer than kLingerBelowOps operations (a lightly loaded queue),
  // it waits this long for more before it writes, so a synced group commit carries several
  // documents instead of one each: fewer fsyncs per document at low rates, at the price of up
  // to this much latency per acceptance. Under load the operations are already waiting and it
  // never lingers. Zero (the default) never waits.
  std::chrono::microseconds commit_linger{0};
  static constexpr std::size_t kLingerBelowOps = 4;
  // Admission watermarks on pending (queued + leased) documents. At or above either high watermark,
  // Admit() and Enqueue/Begin return kResourceExhausted until both are at or below their low
  // watermark. Default: 200000 / 150000 documents, 8 GiB / 6 GiB.
  std::uint64_t high_watermark_count = 200000;
  std::uint64_t low_watermark_count = 150000;
  std::uint64_t high_watermark_bytes = 8ull << 30;
  std::uint64_t low_watermark_bytes = 6ull << 30;
  // Admit() and Enqueue/Begin return kResourceExhausted while the filesystem holding `path` has
  // less than this free (statvfs, checked on each call), so a filling disk turns into 503 and a
  // paused watcher before RocksDB ever meets ENOSPC (which makes the queue read-only for good);
  // admission resumes by itself once space returns. 0 disables the check. Default: 64 MiB.
  std::uint64_t min_free_bytes = 64ull << 20;
  // A retryable failure requeues the document after initial_backoff * 2^(attempts-1), capped at
  // max_backoff, until it has been leased max_attempts times; then it fails with the last error.
  // Default: 5, 1 s, 5 min.
  std::uint32_t max_attempts = 5;
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{5 * 60 * 1000};
  // Sealed and failed records (with their seal) are deleted this long after they became final.
  // Default: 7 days.
  std::chrono::seconds retention{7 * 24 * 3600};
  // How often the committer thread deletes expired records by itself. Zero disables the timer
  // (SweepRetention() still works). Default: 60 s.
  std::chrono::milliseconds retention_sweep_interval{60 * 1000};
};

struct QueueStats {
  std::uint64_t queued = 0;  // including those waiting for their back-off
  std::uint64_t leased = 0;
  std::uint64_t sealed = 0;                        // still retained
  std::uint64_t failed = 0;                        // still retained
  std::uint64_t pending_bytes = 0;                 // bytes of queued + leased documents
  std::chrono::milliseconds oldest_queued_age{0};  // zero when nothing is queued
  bool saturated = false;                  // above the high watermark (until below the low one)
  bool healthy = true;                     // Health().ok()
  std::uint64_t batches_committed = 0;     // synced group commits so far
  std::uint64_t operations_committed = 0;  // operations in those batches
};

// The bytes of a document being streamed in. Obtained from Queue::Begin, filled with Append, made
// durable by Queue::Commit. Destroying it uncommitted discards the bytes (and its spool file).
// Not thread-safe; owned by one ingest connection at a time.
class PendingDocument {
 public:
  virtual ~PendingDocument() = default;
  // Appends a chunk (any size, including zero). Memory stays bounded by
  // QueueOptions::inline_payload_max_bytes: beyond that the bytes go to a spool file. May block on
  // disk writes. kUnavailable on an I/O error (the document is then unusable).
  virtual Status Append(ByteSpan chunk) = 0;
  virtual std::uint64_t size() const = 0;
  // The id the document will have unless it turns out to be an idempotency duplicate.
  virtual const DocumentId& id() const = 0;
};

// Streamed read of a document's (or a seal's) bytes, in bounded memory. Not thread-safe; one reader
// per user.
class PayloadReader {
 public:
  virtual ~PayloadReader() = default;
  // Reads up to buffer.size() bytes; returns the count, 0 at the end. kUnavailable on I/O error.
  virtual Result<std::size_t> Read(std::span<std::uint8_t> buffer) = 0;
  // Reads up to buffer.size() bytes at `offset`, independent of Read's position (for formats that
  // need random access, e.g. PAdES's PDF parser); 0 at or past the end. May be called from several
  // threads at once. kUnavailable on I/O error.
  virtual Result<std::size_t> ReadAt(std::uint64_t offset, std::span<std::uint8_t> buffer) = 0;
  virtual std::uint64_t size() const = 0;
};

// A large seal on its way into the queue (Queue::BeginSeal): its bytes go straight to a spool
// file, so a seal as large as its document (PAdES, CAdES enveloping) is never held in memory.
// Queue::FinishSeal makes the file durable; a Completion hands it to Queue::Complete. Destroying
// it before Complete removes the file. Not thread-safe; one writer at a time.
class PendingSeal {
 public:
  virtual ~PendingSeal() = default;
  // Appends the next piece of the seal. kUnavailable on an I/O error (sticky).
  virtual Status Append(ByteSpan chunk) = 0;
  virtual std::uint64_t size() const = 0;
  virtual const DocumentId& id() const = 0;
  // A reader over the bytes written so far, once finished (for publishers that deliver the seal
  // before the queue completes it). kFailedPrecondition before Queue::FinishSeal.
  virtual Result<std::unique_ptr<PayloadReader>> Open() const = 0;
};

// The queue. Thread-safe: every method may be called from any thread concurrently; the mutating
// ones block until their group-committed batch is synced (or failed).
class Queue {
 public:
  // Opens (creating if missing) the queue at options.path. Requeues every leased record, removes
  // unreferenced spool files, checks every pending record decodes. kDataLoss on corruption,
  // kFailedPrecondition if the directory holds something else or a newer format, kUnavailable on
  // I/O errors, kInvalidArgument on bad options. The clock must outlive the queue.
  static Result<std::unique_ptr<Queue>> Open(QueueOptions options, Clock& clock = Clock::Real());

  ~Queue();  // Close()s if still open (ignoring its Status: call Close() to see it).
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // Enqueues a document whose bytes are already in memory; durable (synced) on OK. Blocks for one
  // group commit. kResourceExhausted when saturated (see Admit), kInvalidArgument without profile,
  // kFailedPrecondition on an idempotency conflict, kUnavailable when read-only.
  Result<EnqueueResult> Enqueue(const NewDocument& document, ByteSpan content);

  // Streaming enqueue for large bodies: Begin checks admission and returns a PendingDocument;
  // Append the bytes; Commit makes it durable (spool file fsynced, record synced) and returns as
  // Enqueue does. Commit does not re-check admission (the bytes are already here). Concurrent
  // streams are independent.
  Result<std::unique_ptr<PendingDocument>> Begin(const NewDocument& document);
  Result<EnqueueResult> Commit(std::unique_ptr<PendingDocument> pending);
  // Commits several streamed documents with one hand-off to the committer: they are written in
  // the same synced group commit (split only when they exceed max_batch_ops/bytes). Each has its
  // own outcome, in input order, exactly as Commit would give it (an idempotency conflict fails
  // only that document). Not atomic across documents; every OK one is durable on return.
  std::vector<Result<EnqueueResult>> CommitMany(
      std::vector<std::unique_ptr<PendingDocument>> pending);

  // OK, or kResourceExhausted above the high watermark until below the low one (hysteresis).
  // Non-blocking. kUnavailable when read-only.
  Status Admit() const;

  // Leases up to max_count queued records, oldest first, whose sizes sum to at most max_bytes
  // (the first one is always handed out even if larger, so big documents are not starved). Each is
  // marked kLeased with attempts+1 and lease_deadline = now + lease_duration. Expired leases are
  // requeued first. Returns an empty vector when nothing is ready (does not wait; see WaitForWork).
  // Lease never waits for a disk sync: the record changes are written (unsynced) by the
  // committer's next batch, which is fine because after a crash every leased record is requeued.
  // Only documents whose Enqueue/Commit batch is written are ever leased.
  Result<std::vector<Record>> Lease(std::size_t max_count, std::uint64_t max_bytes,
                                    std::chrono::milliseconds lease_duration);

  // Blocks until a document may be leasable (something was enqueued or requeued), the queue is
  // closed, or max_wait passed (real time). Returns true when woken by work. Never errors.
  bool WaitForWork(std::chrono::milliseconds max_wait);

  // The bytes of a queued or leased document, streamed. kNotFound when unknown or its payload was
  // already deleted (sealed/failed).
  Result<std::unique_ptr<PayloadReader>> OpenPayload(const DocumentId& id) const;

  // A spool file for the seal of document `id` (leased by the caller). kUnavailable when
  // read-only.
  Result<std::unique_ptr<PendingSeal>> BeginSeal(const DocumentId& id);
  // Makes `seal`'s file durable (fdatasync, rename, directory fsync) so that a Completion can
  // reference it. kUnavailable on an I/O error, kInvalidArgument for another queue's seal.
  Status FinishSeal(PendingSeal& seal);

  struct Completion {
    Completion() = default;
    Completion(DocumentId id_, Bytes seal_, std::string seal_media_type_,
               std::shared_ptr<PendingSeal> seal_file_ = nullptr)
        : id(std::move(id_)),
          seal(std::move(seal_)),
          seal_media_type(std::move(seal_media_type_)),
          seal_file(std::move(seal_file_)) {}

    DocumentId id;
    Bytes seal;                   // the seal, unless seal_file holds it
    std::string seal_media_type;  // e.g. "application/pkcs7-signature"
    // A finished PendingSeal of this document (then `seal` is empty). Shared so that a Completion
    // stays copyable; the file is removed when the last owner drops it unless a commit kept it.
    std::shared_ptr<PendingSeal> seal_file;
  };
  // Stores each seal, marks the records kSealed, deletes their payloads; one synced batch shared
  // with concurrent callers. A record that is unknown or already sealed/failed is left unchanged
  // (first outcome wins) and logged; that is not an error. kUnavailable when read-only.
  Status Complete(std::vector<Completion> completions);

  struct Failure {
    DocumentId id;
    Status error;  // its code name and message become the record's error_code/error_message
    bool retryable = false;
    // false: not the document's failure (its outcome could not be delivered or recorded), so a
    // retryable one is requeued with back-off even when its attempts are used up.
    bool counts_as_attempt = true;
  };
  // Retryable failures of records with attempts < max_attempts (or that do not count as an
  // attempt) are requeued with back-off; all others become kFailed (payload deleted). Same
  // batching and skipping rules as Complete.
  Status Fail(std::vector<Failure> failures);

  // The record: queued/leased ones in their newest state (from memory), sealed/failed ones as
  // written. kNotFound when unknown (or deleted by retention), kDataLoss when it does not decode.
  Result<Record> Get(const DocumentId& id) const;
  // The seal of a sealed document, whole in memory. kNotFound unknown, kFailedPrecondition not
  // sealed (yet, or failed), kDataLoss corrupt. Large seals: OpenSeal.
  Result<Bytes> GetSeal(const DocumentId& id) const;
  // The seal of a sealed document, streamed in bounded memory (size() is the seal's size). Same
  // errors as GetSeal; kUnavailable on I/O errors.
  Result<std::unique_ptr<PayloadReader>> OpenSeal(const DocumentId& id) const;

  // Deletes now every sealed/failed record whose retention has passed (with seal and idempotency
  // key); returns how many. The committer also does this every retention_sweep_interval.
  Result<std::uint64_t> SweepRetention();

  QueueStats Stats() const;  // non-blocking snapshot
  // OK, or the first WAL sync / background error (kUnavailable) after which the queue is read-only.
  Status Health() const;

  // Finishes the batches in flight, stops the committer, syncs and closes RocksDB. Later calls
  // return kFailedPrecondition (Close itself returns OK again). Blocks. Must not run concurrently
  // with other calls on this queue (stop the doors and the engine first).
  Status Close();

  class Impl;  // implementation detail (queue/detail/queue_impl.h); only Open() can make one
  explicit Queue(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::queue
