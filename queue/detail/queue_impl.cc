// The caller side of the queue: admission, ids, hand-off to the committer and waiting for it,
// leasing (in memory, written by the committer's next batch) and reads.
#include "queue/detail/queue_impl.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <rocksdb/db.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/sha256.h"
#include "queue/detail/codec.h"
#include "queue/detail/rocksdb_status.h"
#include "queue/detail/spool.h"

namespace qseal::queue {

using detail::DecodeRecord;
using detail::FromRocksDb;
using detail::IdKey;
using detail::PayloadKind;
using detail::PendingDocumentImpl;
using detail::StoredRecord;

namespace {

Status ValidateDocument(const NewDocument& doc) {
  if (doc.profile.empty()) return InvalidArgumentError("document has no profile");
  if (doc.source != Source::kApi && doc.source != Source::kWatch && doc.source != Source::kBroker) {
    return InvalidArgumentError("document source out of range");
  }
  return Status::Ok();
}

}  // namespace

DocumentId Queue::Impl::NewId() {
  auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
          .count());
  MutexLock lock(id_mu_);
  if (ms > last_ms_) {
    last_ms_ = ms;
    rand_lo_ = rng_();
    rand_hi_ = static_cast<std::uint16_t>(rng_() & 0x7FFFU);  // headroom for increments
  } else if (++rand_lo_ == 0) {
    ++rand_hi_;
  }
  std::uint8_t b[DocumentId::kSize];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(last_ms_ >> (8 * (5 - i)));
  b[6] = static_cast<std::uint8_t>(rand_hi_ >> 8);
  b[7] = static_cast<std::uint8_t>(rand_hi_);
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(rand_lo_ >> (8 * (7 - i)));
  return DocumentId::FromBytes(ByteSpan(b, DocumentId::kSize));
}

Status Queue::Impl::CheckOpen() const {
  if (closed_.load()) return FailedPreconditionError("queue is closed");
  return Status::Ok();
}

Status Queue::Impl::Health() const {
  MutexLock lock(health_mu_);
  return health_;
}

void Queue::Impl::SetUnhealthy(const Status& status) {
  {
    MutexLock lock(health_mu_);
    if (!health_.ok()) return;
    health_ = UnavailableError("queue is read-only after a storage failure: " + status.ToString());
  }
  read_only_.store(true);
  LogError("queue storage failure, no longer accepting documents", {{"error", status.ToString()}});
}

Status Queue::Impl::Admit() const {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  if (read_only_.load()) return Health();
  if (saturated_.load()) {
    return ResourceExhaustedError(
        "queue saturated: pending documents reached the high watermark; "
        "retry once it drains below the low watermark");
  }
  if (options_.min_free_bytes > 0) {
    struct statvfs vfs;
    if (::statvfs(options_.path.c_str(), &vfs) == 0) {
      std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
      if (free_bytes < options_.min_free_bytes) {
        return ResourceExhaustedError("queue disk almost full: " + std::to_string(free_bytes) +
                                      " bytes free, below the reserve of " +
                                      std::to_string(options_.min_free_bytes));
      }
    }
  }
  return Status::Ok();
}

Status Queue::Impl::Submit(Op& op) {
  {
    MutexLock lock(submit_mu_);
    if (stopping_) return FailedPreconditionError("queue is closed");
    ops_.push_back(&op);
  }
  committer_cv_.Signal();
  MutexLock lock(submit_mu_);
  while (!op.done) done_cv_.Wait(submit_mu_);
  return op.status;
}

void Queue::Impl::SubmitAll(const std::vector<Op*>& ops) {
  {
    MutexLock lock(submit_mu_);
    if (stopping_) {
      for (Op* op : ops) op->status = FailedPreconditionError("queue is closed");
      return;
    }
    ops_.insert(ops_.end(), ops.begin(), ops.end());
  }
  committer_cv_.Signal();
  MutexLock lock(submit_mu_);
  for (Op* op : ops) {
    while (!op->done) done_cv_.Wait(submit_mu_);
  }
}

Result<EnqueueResult> Queue::Impl::Enqueue(const NewDocument& doc, ByteSpan content) {
  QSEAL_RETURN_IF_ERROR(ValidateDocument(doc));
  QSEAL_RETURN_IF_ERROR(Admit());
  if (content.size() > options_.inline_payload_max_bytes) {
    QSEAL_ASSIGN_OR_RETURN(auto pending, Begin(doc));
    QSEAL_RETURN_IF_ERROR(pending->Append(content));
    return Commit(std::move(pending));
  }
  Op op;
  op.kind = Op::Kind::kEnqueue;
  op.doc = &doc;
  op.id = NewId();
  Hasher sha;
  QSEAL_RETURN_IF_ERROR(sha.Update(content));
  QSEAL_ASSIGN_OR_RETURN(op.sha256_hex, sha.FinalHex());
  op.size = content.size();
  op.inline_payload = content;
  QSEAL_RETURN_IF_ERROR(Submit(op));
  return op.enqueue_result;
}

Result<std::unique_ptr<PendingDocument>> Queue::Impl::Begin(const NewDocument& doc) {
  QSEAL_RETURN_IF_ERROR(ValidateDocument(doc));
  QSEAL_RETURN_IF_ERROR(Admit());
  return std::unique_ptr<PendingDocument>(std::make_unique<PendingDocumentImpl>(
      this, doc, NewId(), spool_dir_, options_.inline_payload_max_bytes));
}

// The enqueue operation of a finished pending document (Commit and CommitMany).
Queue::Impl::Op Queue::Impl::EnqueueOp(PendingDocumentImpl& p) {
  Op op;
  op.kind = Op::Kind::kEnqueue;
  op.doc = &p.doc();
  op.id = p.id();
  op.sha256_hex = p.sha256_hex();
  op.size = p.size();
  op.spooled = p.spooled();
  if (!op.spooled) op.inline_payload = p.inline_bytes();
  return op;
}

Result<EnqueueResult> Queue::Impl::Commit(std::unique_ptr<PendingDocument> pending) {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  auto* p = dynamic_cast<PendingDocumentImpl*>(pending.get());
  if (p == nullptr || p->owner() != this) {
    return InvalidArgumentError("pending document does not belong to this queue");
  }
  QSEAL_RETURN_IF_ERROR(p->Finish());
  Op op = EnqueueOp(*p);
  Status s = Submit(op);
  // A spool file is removed only when the committer decided not to reference it; after a write
  // failure it stays for the next Open to judge (the record may have reached the WAL).
  if (op.spooled && op.discard_spool) ::unlink(p->final_path().c_str());
  QSEAL_RETURN_IF_ERROR(s);
  return op.enqueue_result;
}

std::vector<Result<EnqueueResult>> Queue::Impl::CommitMany(
    std::vector<std::unique_ptr<PendingDocument>> pending) {
  std::vector<Result<EnqueueResult>> out(pending.size(), Result<EnqueueResult>(EnqueueResult{}));
  std::vector<Op> ops(pending.size());
  std::vector<Op*> submitted;
  std::vector<PendingDocumentImpl*> impls(pending.size(), nullptr);
  Status open = CheckOpen();
  for (std::size_t i = 0; i < pending.size(); ++i) {
    auto* p = dynamic_cast<PendingDocumentImpl*>(pending[i].get());
    Status s = open;
    if (s.ok() && (p == nullptr || p->owner() != this)) {
      s = InvalidArgumentError("pending document does not belong to this queue");
    }
    if (s.ok()) s = p->Finish();
    if (!s.ok()) {
      out[i] = s;
      continue;
    }
    impls[i] = p;
    ops[i] = EnqueueOp(*p);
    submitted.push_back(&ops[i]);
  }
  if (!submitted.empty()) SubmitAll(submitted);
  for (std::size_t i = 0; i < pending.size(); ++i) {
    if (impls[i] == nullptr) continue;
    Op& op = ops[i];
    // As in Commit: a spool file goes only when the committer decided not to reference it.
    if (op.spooled && op.discard_spool) ::unlink(impls[i]->final_path().c_str());
    if (op.status.ok()) {
      out[i] = op.enqueue_result;
    } else {
      out[i] = op.status;
    }
  }
  return out;
}

Result<std::vector<Record>> Queue::Impl::Lease(std::size_t max_count, std::uint64_t max_bytes,
                                               std::chrono::milliseconds lease_duration) {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  if (read_only_.load()) return Health();
  std::vector<Record> leased;
  bool wrote = false;
  bool work_added = false;
  Status lease_status;
  {
    MutexLock lock(state_mu_);
    BatchContext ctx;
    ctx.deferred = true;
    ctx.now = clock_.Now();
    ctx.steady_now = clock_.SteadyNow();
    lease_status = DoLease(max_count, max_bytes, lease_duration, ctx, &leased);
    wrote = !deferred_records_.empty();
    work_added = ctx.work_added;
    PublishStats();
  }
  if (wrote) {
    {
      MutexLock lock(submit_mu_);
      deferred_signalled_ = true;
    }
    committer_cv_.Signal();
  }
  if (work_added) work_cv_.SignalAll();
  if (!lease_status.ok()) {
    // A pending record that no longer decodes: stop and alert, as Open would have (what was
    // leased in this call stays leased and is requeued on the next Open).
    SetUnhealthy(lease_status);
    return lease_status;
  }
  return leased;
}

bool Queue::Impl::WaitForWork(std::chrono::milliseconds max_wait) {
  auto deadline = std::chrono::steady_clock::now() + max_wait;
  MutexLock lock(work_mu_);
  if (ready_count_ > 0) return true;
  std::uint64_t generation = work_generation_;
  while (work_generation_ == generation && !closed_.load()) {
    if (!work_cv_.WaitUntil(work_mu_, deadline)) break;
  }
  return work_generation_ != generation && ready_count_ > 0;
}

Result<std::unique_ptr<PendingSeal>> Queue::Impl::BeginSeal(const DocumentId& id) {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  QSEAL_RETURN_IF_ERROR(Health());
  return std::unique_ptr<PendingSeal>(
      std::make_unique<detail::PendingSealImpl>(this, id, spool_dir_));
}

Status Queue::Impl::FinishSeal(PendingSeal& seal) {
  auto* file = dynamic_cast<detail::PendingSealImpl*>(&seal);
  if (file == nullptr || file->owner() != this) {
    return InvalidArgumentError("seal file does not belong to this queue");
  }
  QSEAL_RETURN_IF_ERROR(file->Finish());
  return FsyncDir(spool_dir_);
}

Status Queue::Impl::Complete(std::vector<Completion> completions) {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  if (completions.empty()) return Status::Ok();
  for (const Completion& c : completions) {
    if (c.seal_file == nullptr) continue;
    auto* file = dynamic_cast<detail::PendingSealImpl*>(c.seal_file.get());
    if (file == nullptr || file->owner() != this || !file->finished() || file->id() != c.id) {
      return InvalidArgumentError("completion of " + c.id.ToString() +
                                  " has a seal file that is not this document's finished seal");
    }
  }
  Op op;
  op.kind = Op::Kind::kComplete;
  op.completions = &completions;
  return Submit(op);
}

Status Queue::Impl::Fail(std::vector<Failure> failures) {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  if (failures.empty()) return Status::Ok();
  Op op;
  op.kind = Op::Kind::kFail;
  op.failures = &failures;
  return Submit(op);
}

Result<std::uint64_t> Queue::Impl::SweepRetention() {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  std::uint64_t total = 0;
  for (;;) {
    Op op;
    op.kind = Op::Kind::kSweep;
    QSEAL_RETURN_IF_ERROR(Submit(op));
    total += op.swept;
    if (op.swept < kSweepBatch) return total;
  }
}

Result<Record> Queue::Impl::Get(const DocumentId& id) const {
  QSEAL_ASSIGN_OR_RETURN(StoredRecord stored, LoadStored(id));
  return std::move(stored.record);
}

// The newest non-final state of a record (including leases not yet written) comes from memory;
// anything else from RocksDB.
Result<StoredRecord> Queue::Impl::LoadStored(const DocumentId& id) const {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  {
    MutexLock lock(state_mu_);
    if (auto d = deferred_records_.find(id); d != deferred_records_.end()) {
      return DecodeRecord(id, d->second);
    }
    if (auto f = in_flight_.find(id); f != in_flight_.end()) return DecodeRecord(id, f->second);
  }
  // Not changed since its last write (a final state is never in memory: it reads as final only
  // once durable).
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kRecords), IdKey(id), &value);
  if (s.IsNotFound()) return NotFoundError("document " + id.ToString() + " not found");
  QSEAL_RETURN_IF_ERROR(FromRocksDb(s, "queue read of " + id.ToString()));
  return DecodeRecord(id, value);
}

// The results value of a sealed document (an inline seal, or where its spool file is).
Result<std::string> Queue::Impl::SealValue(const DocumentId& id) const {
  QSEAL_ASSIGN_OR_RETURN(Record record, Get(id));
  if (record.state != State::kSealed) {
    return FailedPreconditionError("document " + id.ToString() + " is " +
                                   std::string(StateName(record.state)) + ", not sealed");
  }
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kResults), IdKey(id), &value);
  if (s.IsNotFound()) {
    return DataLossError("seal of sealed document " + id.ToString() + " is missing");
  }
  QSEAL_RETURN_IF_ERROR(FromRocksDb(s, "queue read of seal " + id.ToString()));
  return value;
}

std::optional<detail::SpooledSeal> Queue::Impl::SpooledSealOf(const DocumentId& id) const {
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), cf(kResults), IdKey(id), &value).ok()) return std::nullopt;
  auto spooled = detail::DecodeSpooledSeal(id, value);
  return spooled.ok() ? *spooled : std::nullopt;
}

Result<Bytes> Queue::Impl::GetSeal(const DocumentId& id) const {
  QSEAL_ASSIGN_OR_RETURN(std::string value, SealValue(id));
  QSEAL_ASSIGN_OR_RETURN(std::optional<detail::SpooledSeal> spooled,
                         detail::DecodeSpooledSeal(id, value));
  if (!spooled) return detail::DecodeSeal(id, value);
  QSEAL_ASSIGN_OR_RETURN(
      std::unique_ptr<PayloadReader> reader,
      detail::OpenSealFile(spool_dir_ + "/" + spooled->file_name, id, spooled->size));
  Bytes bytes(spooled->size);
  std::uint64_t done = 0;
  while (done < bytes.size()) {
    QSEAL_ASSIGN_OR_RETURN(std::size_t n,
                           reader->Read(std::span<std::uint8_t>(bytes).subspan(done)));
    if (n == 0) return DataLossError("seal file of " + id.ToString() + " ended early");
    done += n;
  }
  return bytes;
}

Result<std::unique_ptr<PayloadReader>> Queue::Impl::OpenSeal(const DocumentId& id) const {
  QSEAL_ASSIGN_OR_RETURN(std::string value, SealValue(id));
  QSEAL_ASSIGN_OR_RETURN(std::optional<detail::SpooledSeal> spooled,
                         detail::DecodeSpooledSeal(id, value));
  if (spooled) {
    return detail::OpenSealFile(spool_dir_ + "/" + spooled->file_name, id, spooled->size);
  }
  QSEAL_ASSIGN_OR_RETURN(Bytes bytes, detail::DecodeSeal(id, value));
  return detail::NewInlineReader(std::string(AsChars(bytes)));
}

Result<std::unique_ptr<PayloadReader>> Queue::Impl::OpenPayload(const DocumentId& id) const {
  QSEAL_ASSIGN_OR_RETURN(StoredRecord stored, LoadStored(id));
  switch (stored.payload) {
    case PayloadKind::kNone:
      return NotFoundError("payload of document " + id.ToString() + " was deleted (it is " +
                           std::string(StateName(stored.record.state)) + ")");
    case PayloadKind::kInline: {
      std::string bytes;
      rocksdb::Status ps = db_->Get(rocksdb::ReadOptions(), cf(kPayloads), IdKey(id), &bytes);
      if (ps.IsNotFound()) {
        return NotFoundError("payload of document " + id.ToString() + " was deleted");
      }
      QSEAL_RETURN_IF_ERROR(FromRocksDb(ps, "queue read of payload " + id.ToString()));
      if (bytes.size() != stored.record.size) {
        return DataLossError("payload of document " + id.ToString() + " has " +
                             std::to_string(bytes.size()) + " bytes, record says " +
                             std::to_string(stored.record.size));
      }
      return detail::NewInlineReader(std::move(bytes));
    }
    case PayloadKind::kSpool:
      return detail::OpenSpoolReader(SpoolPath(id), id, stored.record.size);
  }
  return InternalError("unknown payload kind");
}

QueueStats Queue::Impl::Stats() const {
  MutexLock lock(stats_mu_);
  QueueStats s = stats_;
  if (s.queued > 0) {
    auto age = clock_.Now() - oldest_queued_;
    s.oldest_queued_age = std::max(std::chrono::milliseconds(0),
                                   std::chrono::duration_cast<std::chrono::milliseconds>(age));
  }
  s.saturated = saturated_.load();
  s.healthy = !read_only_.load();
  return s;
}

}  // namespace qseal::queue
