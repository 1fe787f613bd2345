// The committer thread: the only writer of queue state. It takes every waiting operation, applies
// it to the in-memory index under the state mutex, writes one WriteBatch (synced when any
// operation needs durability), then wakes the callers. Lease runs DoLease on the caller's thread
// but leaves its writes to the committer's next batch.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "common/crash_point.h"
#include "common/fs.h"
#include "common/log.h"
#include "queue/detail/codec.h"
#include "queue/detail/queue_impl.h"
#include "queue/detail/rocksdb_status.h"

namespace qseal::queue {

using detail::DecodeRecord;
using detail::EncodeCounts;
using detail::EncodeRecord;
using detail::FromRocksDb;
using detail::IdKey;
using detail::PayloadKind;
using detail::PendingSlot;
using detail::StoredRecord;
using detail::Where;

namespace {

rocksdb::Slice ToSlice(ByteSpan b) {
  return rocksdb::Slice(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace

void Queue::Impl::Run() {
  const bool timed_sweep = options_.retention_sweep_interval.count() > 0;
  auto next_sweep = std::chrono::steady_clock::now() + options_.retention_sweep_interval;
  const bool may_linger = options_.commit_linger.count() > 0;
  for (;;) {
    std::vector<Op*> batch;
    bool linger = false;
    {
      MutexLock lock(submit_mu_);
      while (ops_.empty() && !deferred_signalled_ && !stopping_) {
        if (!timed_sweep) {
          committer_cv_.Wait(submit_mu_);
        } else if (!committer_cv_.WaitUntil(submit_mu_, next_sweep) &&
                   std::chrono::steady_clock::now() >= next_sweep) {
          break;
        }
      }
      if (ops_.empty() && !deferred_signalled_ && stopping_) return;
      linger =
          may_linger && !stopping_ && !ops_.empty() && ops_.size() < QueueOptions::kLingerBelowOps;
    }
    // A plain sleep, not a wait on committer_cv_: every Submit signals it, and waking for each
    // would cost the thread switches the linger is meant to save.
    if (linger) std::this_thread::sleep_for(options_.commit_linger);
    {
      MutexLock lock(submit_mu_);
      deferred_signalled_ = false;
      std::size_t take = 0;
      std::uint64_t bytes = 0;
      while (take < ops_.size() && take < options_.max_batch_ops &&
             (take == 0 || bytes + ops_[take]->inline_payload.size() <= options_.max_batch_bytes)) {
        bytes += ops_[take]->inline_payload.size();
        ++take;
      }
      batch.assign(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(take));
      ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(take));
    }
    Op sweep;
    sweep.kind = Op::Kind::kSweep;
    if (timed_sweep && std::chrono::steady_clock::now() >= next_sweep) {
      batch.push_back(&sweep);
      next_sweep = std::chrono::steady_clock::now() + options_.retention_sweep_interval;
    }
    ProcessBatch(batch);
    {
      MutexLock lock(submit_mu_);
      for (Op* op : batch) op->done = true;
    }
    done_cv_.SignalAll();
  }
}

void Queue::Impl::ProcessBatch(const std::vector<Op*>& ops) {
  if (read_only_.load()) {
    Status h = Health();
    for (Op* op : ops) op->status = h;
    return;
  }
  BatchContext ctx;
  {
    MutexLock lock(state_mu_);
    // Lease's record writes first: anything an op below writes for the same id is newer.
    for (auto& [id, value] : deferred_records_) {
      ctx.batch.Put(cf(kRecords), IdKey(id), value);
      in_flight_[id] = std::move(value);
    }
    deferred_records_.clear();
    ctx.now = clock_.Now();
    ctx.steady_now = clock_.SteadyNow();
    for (Op* op : ops) {
      switch (op->kind) {
        case Op::Kind::kEnqueue:
          PrepareEnqueue(*op, ctx);
          break;
        case Op::Kind::kComplete:
          PrepareComplete(*op, ctx);
          break;
        case Op::Kind::kFail:
          PrepareFail(*op, ctx);
          break;
        case Op::Kind::kSweep:
          PrepareSweep(*op, ctx);
          break;
      }
    }
    if (ctx.counts_changed) {
      ctx.batch.Put(cf(kMeta), kCountsKey, EncodeCounts(sealed_count_, failed_count_));
    }
  }
  if (ctx.batch.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = ctx.sync;
    rocksdb::Status ws = db_->Write(wo, &ctx.batch);
    if (!ws.ok()) {
      // Never retried: whether the batch reached the disk is unknown, so the queue stops
      // acknowledging and the next Open decides from what is on disk.
      Status s = FromRocksDb(ws, ctx.sync ? "queue synced write" : "queue write");
      SetUnhealthy(s);
      {
        MutexLock lock(state_mu_);
        in_flight_.clear();
      }
      Status h = Health();
      for (Op* op : ops) {
        if (op->status.ok()) op->status = h;
        op->discard_spool = false;
      }
      return;
    }
  }
  if (ctx.sync && !ctx.enqueued.empty()) QSEAL_CRASH_POINT("queue.synced_before_ack");
  for (const std::string& path : ctx.unlink_after) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      LogWarn("queue could not remove spool file", {{"file", path}, {"error", ErrnoText(errno)}});
    }
  }
  {
    MutexLock lock(state_mu_);
    in_flight_.clear();
    for (const DocumentId& id : ctx.enqueued) {
      const PendingSlot* slot = index_.Find(id);
      if (slot != nullptr && slot->where == Where::kHeld) index_.SetReady(id);
    }
    if (ctx.batch.Count() > 0 && !ops.empty()) {
      ++batches_;
      operations_ += ops.size();
    }
    PublishStats();
  }
  if (ctx.work_added) work_cv_.SignalAll();
}

void Queue::Impl::PutRecord(BatchContext& ctx, const StoredRecord& stored) {
  std::string value = EncodeRecord(stored);
  if (ctx.deferred) {
    deferred_records_[stored.record.id] = std::move(value);
    return;
  }
  ctx.batch.Put(cf(kRecords), IdKey(stored.record.id), value);
  // Readers see a non-final state at once, a final one only once its batch is written.
  bool final = stored.record.state == State::kSealed || stored.record.state == State::kFailed;
  if (!final) in_flight_[stored.record.id] = std::move(value);
}

Result<StoredRecord> Queue::Impl::ReadNewestLocked(const DocumentId& id) const {
  if (auto d = deferred_records_.find(id); d != deferred_records_.end()) {
    return DecodeRecord(id, d->second);
  }
  if (auto f = in_flight_.find(id); f != in_flight_.end()) return DecodeRecord(id, f->second);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kRecords), IdKey(id), &value);
  if (s.IsNotFound()) {
    return DataLossError("queue record " + id.ToString() + " is indexed as pending but missing");
  }
  QSEAL_RETURN_IF_ERROR(FromRocksDb(s, "queue read of " + id.ToString()));
  return DecodeRecord(id, value);
}

void Queue::Impl::PrepareEnqueue(Op& op, BatchContext& ctx) {
  const NewDocument& doc = *op.doc;
  if (!doc.idempotency_key.empty()) {
    std::string key = detail::IdempotencyKey(doc.client, doc.idempotency_key);
    std::optional<std::pair<DocumentId, std::string>> first;
    if (auto it = ctx.idempotency.find(key); it != ctx.idempotency.end()) {
      first = it->second;
    } else {
      std::string value;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(kIdempotency), key, &value);
      if (s.ok()) {
        auto decoded = detail::DecodeIdempotency(value);
        if (!decoded.ok()) {
          op.status = decoded.status();
          op.discard_spool = true;
          return;
        }
        first = *decoded;
      } else if (!s.IsNotFound()) {
        op.status = FromRocksDb(s, "queue idempotency lookup");
        return;
      }
    }
    if (first.has_value()) {
      op.discard_spool = true;
      if (first->second != op.sha256_hex) {
        op.status = FailedPreconditionError("idempotency key \"" + doc.idempotency_key +
                                            "\" was already used for other content (document " +
                                            first->first.ToString() + ")");
        return;
      }
      op.enqueue_result = {first->first, true, op.sha256_hex, op.size};
      return;
    }
    ctx.idempotency[key] = {op.id, op.sha256_hex};
    ctx.batch.Put(cf(kIdempotency), key, detail::EncodeIdempotency(op.id, op.sha256_hex));
  }
  StoredRecord stored;
  Record& r = stored.record;
  r.id = op.id;
  r.profile = doc.profile;
  r.source = doc.source;
  r.client = doc.client;
  r.name = doc.name;
  r.media_type = doc.media_type;
  r.sha256_hex = op.sha256_hex;
  r.size = op.size;
  r.state = State::kQueued;
  r.created_at = ctx.now;
  r.updated_at = ctx.now;
  r.source_ref = doc.source_ref;
  r.idempotency_key = doc.idempotency_key;
  r.digest_algorithm = doc.digest_algorithm;
  stored.payload = op.spooled ? PayloadKind::kSpool : PayloadKind::kInline;
  index_.Add(op.id, op.size, ctx.now);
  std::string key = IdKey(op.id);
  if (!op.spooled) ctx.batch.Put(cf(kPayloads), key, ToSlice(op.inline_payload));
  PutRecord(ctx, stored);
  ctx.batch.Put(cf(kPending), key, rocksdb::Slice());
  ctx.enqueued.push_back(op.id);
  ++queued_count_;
  pending_bytes_ += op.size;
  ctx.sync = true;
  ctx.work_added = true;
  op.enqueue_result = {op.id, false, op.sha256_hex, op.size};
}

// Takes a pending document out of the queued or leased count (its index slot is moved or erased
// next).
void Queue::Impl::Unindex(const PendingSlot& slot) {
  if (slot.where == Where::kLeased) {
    --leased_count_;
  } else {
    --queued_count_;
  }
}

// Makes an (unindexed) pending document queued again, eligible at not_before; writes the record.
void Queue::Impl::Requeue(StoredRecord& stored, SysTime not_before, BatchContext& ctx) {
  Record& r = stored.record;
  r.state = State::kQueued;
  r.updated_at = ctx.now;
  r.not_before = not_before;
  r.lease_deadline = {};
  ++queued_count_;
  if (not_before > ctx.now) {
    index_.SetDelayed(r.id, ctx.steady_now + (not_before - ctx.now));
  } else {
    index_.SetReady(r.id);
    ctx.work_added = true;
  }
  PutRecord(ctx, stored);
}

Status Queue::Impl::DoLease(std::size_t max_count, std::uint64_t max_bytes,
                            std::chrono::milliseconds lease_duration, BatchContext& ctx,
                            std::vector<Record>* leased) {
  while (std::optional<DocumentId> id = index_.NextExpiredLease(ctx.steady_now)) {
    const PendingSlot* slot = index_.Find(*id);
    QSEAL_ASSIGN_OR_RETURN(StoredRecord stored, ReadNewestLocked(*id));
    Unindex(*slot);
    LogWarn("queue lease expired, document requeued",
            {{"id", id->ToString()}, {"attempts", stored.record.attempts}});
    Requeue(stored, ctx.now, ctx);
  }
  index_.PromoteDue(ctx.steady_now);
  std::uint64_t bytes = 0;
  while (leased->size() < max_count) {
    const PendingSlot* slot = index_.FrontReady();
    if (slot == nullptr) break;
    if (!leased->empty() && bytes + slot->size > max_bytes) break;
    DocumentId id = slot->id;
    // The full record is read here (memory holds only the slot); it is most often still in the
    // memtable or the block cache.
    QSEAL_ASSIGN_OR_RETURN(StoredRecord stored, ReadNewestLocked(id));
    Record& r = stored.record;
    bytes += slot->size;
    Unindex(*slot);
    r.state = State::kLeased;
    ++r.attempts;
    r.updated_at = ctx.now;
    r.lease_deadline = ctx.now + lease_duration;
    index_.SetLeased(id, ctx.steady_now + lease_duration);
    ++leased_count_;
    PutRecord(ctx, stored);
    leased->push_back(std::move(r));
  }
  return Status::Ok();
}

void Queue::Impl::Finalize(const PendingSlot& slot, StoredRecord& stored, State state,
                           BatchContext& ctx) {
  Record& r = stored.record;
  std::string key = IdKey(r.id);
  Unindex(slot);
  pending_bytes_ -= slot.size;
  index_.Erase(r.id);  // invalidates `slot`
  r.state = state;
  r.updated_at = ctx.now;
  r.lease_deadline = {};
  if (state == State::kSealed) r.sealed_at = ctx.now;
  if (stored.payload == PayloadKind::kInline) ctx.batch.Delete(cf(kPayloads), key);
  if (stored.payload == PayloadKind::kSpool) ctx.unlink_after.push_back(SpoolPath(r.id));
  stored.payload = PayloadKind::kNone;
  PutRecord(ctx, stored);
  ctx.batch.Delete(cf(kPending), key);
  ctx.batch.Put(cf(kExpiry), detail::ExpiryKey(ctx.now + options_.retention, r.id),
                rocksdb::Slice());
  if (state == State::kSealed) {
    ++sealed_count_;
  } else {
    ++failed_count_;
  }
  ctx.counts_changed = true;
  ctx.sync = true;
}

void Queue::Impl::PrepareComplete(Op& op, BatchContext& ctx) {
  for (Completion& c : *op.completions) {
    const PendingSlot* slot = index_.Find(c.id);
    if (slot == nullptr) {
      LogWarn("queue completion of an unknown or final document ignored",
              {{"id", c.id.ToString()}});
      continue;
    }
    auto stored = ReadNewestLocked(c.id);
    if (!stored.ok()) {
      LogError("queue completion of a record that cannot be read",
               {{"id", c.id.ToString()}, {"error", stored.status().ToString()}});
      if (op.status.ok()) op.status = stored.status();
      continue;
    }
    stored->record.seal_media_type = c.seal_media_type;
    if (c.seal_file != nullptr) {
      auto* file = static_cast<detail::PendingSealImpl*>(c.seal_file.get());
      ctx.batch.Put(cf(kResults), IdKey(c.id),
                    detail::EncodeSpooledSeal({file->size(), file->file_name()}));
      // Referenced from now on; after a failed write the next Open decides (as for payloads).
      file->Keep();
    } else {
      ctx.batch.Put(cf(kResults), IdKey(c.id), detail::EncodeSeal(c.seal));
    }
    Finalize(*slot, *stored, State::kSealed, ctx);
  }
}

void Queue::Impl::PrepareFail(Op& op, BatchContext& ctx) {
  for (Failure& f : *op.failures) {
    const PendingSlot* slot = index_.Find(f.id);
    if (slot == nullptr) {
      LogWarn("queue failure of an unknown or final document ignored", {{"id", f.id.ToString()}});
      continue;
    }
    auto stored = ReadNewestLocked(f.id);
    if (!stored.ok()) {
      LogError("queue failure of a record that cannot be read",
               {{"id", f.id.ToString()}, {"error", stored.status().ToString()}});
      if (op.status.ok()) op.status = stored.status();
      continue;
    }
    Record& r = stored->record;
    Status error = f.error.ok() ? InternalError("failed without a reason") : f.error;
    r.error_code = std::string(StatusCodeName(error.code()));
    r.error_message = error.message();
    if (f.retryable && (r.attempts < options_.max_attempts || !f.counts_as_attempt)) {
      Unindex(*slot);
      auto backoff = options_.initial_backoff;
      for (std::uint32_t i = 1; i < r.attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
      backoff = std::min(backoff, options_.max_backoff);
      Requeue(*stored, ctx.now + backoff, ctx);
      ctx.sync = true;
    } else {
      Finalize(*slot, *stored, State::kFailed, ctx);
    }
  }
}

void Queue::Impl::PrepareSweep(Op& op, BatchContext& ctx) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kExpiry)));
  for (it->SeekToFirst(); it->Valid() && op.swept < kSweepBatch; it->Next()) {
    SysTime at;
    DocumentId id;
    if (!detail::DecodeExpiryKey(std::string_view(it->key().data(), it->key().size()), &at, &id)) {
      op.status = DataLossError("queue retention index has a malformed key");
      return;
    }
    if (at > ctx.now) break;
    std::string key = IdKey(id);
    std::string value;
    rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), cf(kRecords), key, &value);
    if (gs.ok()) {
      auto stored = DecodeRecord(id, value);
      if (stored.ok()) {
        const Record& r = stored->record;
        // A spooled seal's file goes once the batch deleting its seal value is written.
        if (auto spooled = SpooledSealOf(id); r.state == State::kSealed && spooled) {
          ctx.unlink_after.push_back(spool_dir_ + "/" + spooled->file_name);
        }
        if (!r.idempotency_key.empty()) {
          ctx.batch.Delete(cf(kIdempotency), detail::IdempotencyKey(r.client, r.idempotency_key));
        }
        if (r.state == State::kSealed && sealed_count_ > 0) --sealed_count_;
        if (r.state == State::kFailed && failed_count_ > 0) --failed_count_;
        ctx.counts_changed = true;
      } else {
        LogError("queue deleting an expired record that does not decode",
                 {{"id", id.ToString()}, {"error", stored.status().ToString()}});
      }
    } else if (!gs.IsNotFound()) {
      op.status = FromRocksDb(gs, "queue retention read");
      return;
    }
    ctx.batch.Delete(cf(kRecords), key);
    ctx.batch.Delete(cf(kResults), key);
    ctx.batch.Delete(cf(kExpiry), it->key());
    ++op.swept;
  }
  if (!it->status().ok()) op.status = FromRocksDb(it->status(), "queue retention scan");
}

void Queue::Impl::PublishStats() {
  SysTime oldest = index_.OldestQueuedCreatedAt().value_or(SysTime{});
  {
    MutexLock lock(stats_mu_);
    stats_.queued = queued_count_;
    stats_.leased = leased_count_;
    stats_.sealed = sealed_count_;
    stats_.failed = failed_count_;
    stats_.pending_bytes = pending_bytes_;
    stats_.batches_committed = batches_;
    stats_.operations_committed = operations_;
    oldest_queued_ = oldest;
  }
  std::uint64_t count = queued_count_ + leased_count_;
  if (!saturated_.load()) {
    if (count >= options_.high_watermark_count || pending_bytes_ >= options_.high_watermark_bytes) {
      saturated_.store(true);
      LogWarn("queue reached its high watermark, refusing new documents",
              {{"pending", count}, {"pending_bytes", pending_bytes_}});
    }
  } else if (count <= options_.low_watermark_count &&
             pending_bytes_ <= options_.low_watermark_bytes) {
    saturated_.store(false);
    LogInfo("queue drained below its low watermark, accepting documents",
            {{"pending", count}, {"pending_bytes", pending_bytes_}});
  }
  MutexLock lock(work_mu_);
  ready_count_ = index_.count(Where::kReady);
  if (ready_count_ > 0) ++work_generation_;
}

}  // namespace qseal::queue
