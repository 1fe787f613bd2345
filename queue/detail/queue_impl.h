// The queue's implementation, declared once for the files that define it (LevelDB's db_impl
// split): queue/queue.cc forwards the public Queue to it; queue/detail/queue_impl.cc holds the
// caller side (admission, submission, reads); queue/detail/open.cc opening, loading and closing;
// queue/detail/committer.cc the committer thread, the only writer of queue state; the spool
// writer and payload readers are in queue/detail/spool.h. Internal to queue/.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/write_batch.h>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "queue/detail/codec.h"
#include "queue/detail/pending_index.h"
#include "queue/detail/spool.h"
#include "queue/queue.h"

namespace qseal::queue {

// Thread-safe, as Queue: callers run on any thread, the committer thread (Run) on its own.
class Queue::Impl {
 public:
  Impl(QueueOptions options, Clock& clock)
      : options_(std::move(options)),
        clock_(clock),
        spool_dir_(options_.path + "/spool"),
        rng_(std::random_device{}()) {}

  ~Impl() { Close().IgnoreError(); }

  static Result<std::unique_ptr<Impl>> Open(QueueOptions options, Clock& clock, rocksdb::Env* env);

  Result<EnqueueResult> Enqueue(const NewDocument& doc, ByteSpan content);
  Result<std::unique_ptr<PendingDocument>> Begin(const NewDocument& doc);
  Result<EnqueueResult> Commit(std::unique_ptr<PendingDocument> pending);
  std::vector<Result<EnqueueResult>> CommitMany(
      std::vector<std::unique_ptr<PendingDocument>> pending);
  Status Admit() const;
  Result<std::vector<Record>> Lease(std::size_t max_count, std::uint64_t max_bytes,
                                    std::chrono::milliseconds lease_duration);
  bool WaitForWork(std::chrono::milliseconds max_wait);
  Result<std::unique_ptr<PayloadReader>> OpenPayload(const DocumentId& id) const;
  Result<std::unique_ptr<PendingSeal>> BeginSeal(const DocumentId& id);
  Status FinishSeal(PendingSeal& seal);
  Status Complete(std::vector<Completion> completions);
  Status Fail(std::vector<Failure> failures);
  Result<Record> Get(const DocumentId& id) const;
  Result<detail::StoredRecord> LoadStored(const DocumentId& id) const;
  Result<Bytes> GetSeal(const DocumentId& id) const;
  Result<std::unique_ptr<PayloadReader>> OpenSeal(const DocumentId& id) const;
  Result<std::string> SealValue(const DocumentId& id) const;
  Result<std::uint64_t> SweepRetention();
  QueueStats Stats() const;
  Status Health() const;
  Status Close();

  void SetUnhealthy(const Status& status);

 private:
  using SysTime = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;

  // Column families, in the order of cf_ and kCfNames. "default" holds the meta keys.
  enum Cf { kMeta = 0, kRecords, kPending, kPayloads, kResults, kExpiry, kIdempotency, kCfCount };
  static constexpr const char* kCfNames[kCfCount] = {"default", "records", "pending",    "payloads",
                                                     "results", "expiry",  "idempotency"};
  static constexpr char kCountsKey[] = "counts";     // meta key of the sealed and failed counts
  static constexpr std::size_t kSweepBatch = 10000;  // expired records deleted per batch

  // One unit of work for the committer; lives on the submitting caller's stack.
  struct Op {
    enum class Kind { kEnqueue, kComplete, kFail, kSweep };
    Kind kind = Kind::kEnqueue;
    // kEnqueue
    const NewDocument* doc = nullptr;
    DocumentId id;
    std::string sha256_hex;
    std::uint64_t size = 0;
    ByteSpan inline_payload;
    bool spooled = false;
    EnqueueResult enqueue_result;
    bool discard_spool = false;  // rejected or duplicate: the spool file is not referenced
    // kComplete / kFail
    std::vector<Completion>* completions = nullptr;
    std::vector<Failure>* failures = nullptr;
    // kSweep
    std::uint64_t swept = 0;
    // Outcome.
    Status status;
    bool done = false;
  };
  static Op EnqueueOp(detail::PendingDocumentImpl& p);

  // State of one batch being assembled.
  struct BatchContext {
    rocksdb::WriteBatch batch;
    bool deferred = false;  // record writes go to deferred_records_ (Lease), not to batch
    bool sync = false;
    bool counts_changed = false;
    bool work_added = false;
    std::unordered_map<std::string, std::pair<DocumentId, std::string>> idempotency;
    std::vector<std::string> unlink_after;
    // New documents become leasable only once their batch is written (see ProcessBatch).
    std::vector<DocumentId> enqueued;
    SysTime now;
    SteadyTime steady_now;
  };

  Status Load();
  DocumentId NewId();
  Status CheckOpen() const;
  Status Submit(Op& op);
  // Queues all ops at once and waits until every one is done; their statuses are in the ops.
  void SubmitAll(const std::vector<Op*>& ops);
  void Run();
  void ProcessBatch(const std::vector<Op*>& ops);
  void PrepareEnqueue(Op& op, BatchContext& ctx);
  Status DoLease(std::size_t max_count, std::uint64_t max_bytes,
                 std::chrono::milliseconds lease_duration, BatchContext& ctx,
                 std::vector<Record>* leased);
  void PrepareComplete(Op& op, BatchContext& ctx);
  void PrepareFail(Op& op, BatchContext& ctx);
  void PrepareSweep(Op& op, BatchContext& ctx);
  // The spool file of document id's stored seal, if its seal is spooled (nullopt on any error).
  std::optional<detail::SpooledSeal> SpooledSealOf(const DocumentId& id) const;
  void PutRecord(BatchContext& ctx, const detail::StoredRecord& stored);
  Result<detail::StoredRecord> ReadNewestLocked(const DocumentId& id) const;
  void Unindex(const detail::PendingSlot& slot);
  void Requeue(detail::StoredRecord& stored, SysTime not_before, BatchContext& ctx);
  void Finalize(const detail::PendingSlot& slot, detail::StoredRecord& stored, State state,
                BatchContext& ctx);
  void PublishStats();
  std::string SpoolPath(const DocumentId& id) const {
    return detail::SpoolPayloadPath(spool_dir_, id);
  }
  rocksdb::ColumnFamilyHandle* cf(Cf which) const { return cf_[which]; }

  const QueueOptions options_;
  Clock& clock_;
  const std::string spool_dir_;

  // RocksDB. Column family handles are destroyed before the DB (in Close).
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cf_;
  std::shared_ptr<rocksdb::EventListener> listener_;

  // Queue state. Changed by the committer (while preparing a batch) and by Lease; both hold
  // state_mu_, never across a RocksDB write. Lease's record writes wait in deferred_records_ for
  // the committer's next batch (unsynced on their own), so Lease never waits for a disk sync.
  // Memory holds only the compact scheduling index; the newest full record of a pending document
  // is deferred_records_[id], else in_flight_[id] (a non-final value in the batch being written),
  // else the one in RocksDB (ReadNewestLocked).
  mutable Mutex state_mu_;
  std::map<DocumentId, std::string> deferred_records_;
  std::map<DocumentId, std::string> in_flight_;
  bool deferred_signalled_ QSEAL_GUARDED_BY(submit_mu_) = false;
  detail::PendingIndex index_;
  std::uint64_t queued_count_ = 0;
  std::uint64_t leased_count_ = 0;
  std::uint64_t pending_bytes_ = 0;
  std::uint64_t sealed_count_ = 0;
  std::uint64_t failed_count_ = 0;
  std::uint64_t batches_ = 0;
  std::uint64_t operations_ = 0;

  // Submission queue.
  mutable Mutex submit_mu_;
  CondVar committer_cv_;
  CondVar done_cv_;
  std::vector<Op*> ops_ QSEAL_GUARDED_BY(submit_mu_);
  bool stopping_ QSEAL_GUARDED_BY(submit_mu_) = false;
  std::thread committer_;
  std::atomic<bool> closed_{false};

  // Published by the committer after each batch.
  mutable Mutex stats_mu_;
  QueueStats stats_ QSEAL_GUARDED_BY(stats_mu_);
  SysTime oldest_queued_ QSEAL_GUARDED_BY(stats_mu_);
  std::atomic<bool> saturated_{false};

  Mutex work_mu_;
  CondVar work_cv_;
  std::uint64_t work_generation_ QSEAL_GUARDED_BY(work_mu_) = 0;
  std::size_t ready_count_ QSEAL_GUARDED_BY(work_mu_) = 0;

  mutable Mutex health_mu_;
  Status health_ QSEAL_GUARDED_BY(health_mu_);
  std::atomic<bool> read_only_{false};

  Mutex id_mu_;
  std::uint64_t last_ms_ QSEAL_GUARDED_BY(id_mu_) = 0;
  std::uint16_t rand_hi_ QSEAL_GUARDED_BY(id_mu_) = 0;
  std::uint64_t rand_lo_ QSEAL_GUARDED_BY(id_mu_) = 0;
  std::mt19937_64 rng_ QSEAL_GUARDED_BY(id_mu_);
};

}  // namespace qseal::queue
