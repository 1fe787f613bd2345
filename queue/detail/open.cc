// Opening a queue (options, directory and database checks, column families), loading its
// pending records back into memory, and closing it.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "common/log.h"
#include "queue/detail/codec.h"
#include "queue/detail/queue_impl.h"
#include "queue/detail/rocksdb_status.h"

namespace qseal::queue {

using detail::DecodeCounts;
using detail::DecodeRecord;
using detail::FromRocksDb;
using detail::IdKey;
using detail::PayloadKind;
using detail::StoredRecord;

namespace {

constexpr char kFormatKey[] = "format";
constexpr char kFormatValue[] = "qseal-queue/1";

// Any RocksDB background error (flush, compaction, WAL write) makes the queue read-only.
class BackgroundErrorListener final : public rocksdb::EventListener {
 public:
  explicit BackgroundErrorListener(Queue::Impl* impl) : impl_(impl) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason /*reason*/,
                         rocksdb::Status* bg_error) override {
    if (bg_error != nullptr && !bg_error->ok()) {
      impl_->SetUnhealthy(FromRocksDb(*bg_error, "rocksdb background error"));
    }
  }

 private:
  Queue::Impl* impl_;
};

Status ValidateOptions(const QueueOptions& o) {
  if (o.path.empty()) return InvalidArgumentError("queue path is empty");
  if (o.low_watermark_count > o.high_watermark_count ||
      o.low_watermark_bytes > o.high_watermark_bytes) {
    return InvalidArgumentError("queue low watermark above high watermark");
  }
  if (o.max_attempts == 0) return InvalidArgumentError("queue max_attempts must be at least 1");
  if (o.max_batch_ops == 0) return InvalidArgumentError("queue max_batch_ops must be at least 1");
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Queue::Impl>> Queue::Impl::Open(QueueOptions options, Clock& clock,
                                                       rocksdb::Env* env) {
  QSEAL_RETURN_IF_ERROR(ValidateOptions(options));
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(options.path + "/spool", ec);
  if (ec) {
    return UnavailableError("cannot create queue directory " + options.path + ": " + ec.message());
  }

  auto impl = std::make_unique<Impl>(std::move(options), clock);
  const std::string& path = impl->options_.path;

  // A database without CURRENT but with its files would silently be recreated empty.
  bool exists = fs::exists(path + "/CURRENT", ec);
  if (!exists) {
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      std::string name = entry.path().filename().string();
      if (name.rfind("MANIFEST-", 0) == 0 || entry.path().extension() == ".sst" ||
          entry.path().extension() == ".log" || entry.path().extension() == ".blob") {
        return DataLossError("queue database at " + path +
                             " is corrupt: the CURRENT file is missing but database files (" +
                             name + ") are present; refusing to open");
      }
    }
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = !exists;
  db_options.create_missing_column_families = !exists;
  db_options.paranoid_checks = true;
  // A torn tail (a crash mid-write of unacknowledged data) is tolerated; corruption anywhere
  // else in the WAL refuses to open instead of dropping acknowledged records.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 4;
  db_options.max_total_wal_size = 256ull << 20;
  if (env != nullptr) db_options.env = env;
  impl->listener_ = std::make_shared<BackgroundErrorListener>(impl.get());
  db_options.listeners.push_back(impl->listener_);

  if (exists) {
    std::vector<std::string> names;
    rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options, path, &names);
    if (!ls.ok()) {
      Status s = FromRocksDb(ls, "queue database at " + path + " cannot be read");
      if (s.code() == StatusCode::kDataLoss) {
        return DataLossError("queue database at " + path + " is corrupt: " + s.message());
      }
      return s;
    }
    for (const char* want : kCfNames) {
      if (std::find(names.begin(), names.end(), want) == names.end()) {
        return FailedPreconditionError("directory " + path +
                                       " holds a RocksDB database that is not a qseal queue "
                                       "(no column family \"" +
                                       want + "\")");
      }
    }
  }

  rocksdb::ColumnFamilyOptions base;
  base.compression = rocksdb::kNoCompression;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kCfCount; ++i) {
    rocksdb::ColumnFamilyOptions cf_options = base;
    if (i == kPayloads) {
      cf_options.enable_blob_files = true;
      cf_options.min_blob_size = impl->options_.blob_min_bytes;
      cf_options.blob_file_size = 256ull << 20;
      cf_options.enable_blob_garbage_collection = true;
    }
    descriptors.emplace_back(kCfNames[i], cf_options);
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status os = rocksdb::DB::Open(db_options, path, descriptors, &impl->cf_, &raw);
  if (!os.ok()) {
    Status s = FromRocksDb(os, "queue database at " + path + " failed to open");
    if (s.code() == StatusCode::kDataLoss) {
      return DataLossError("queue database at " + path +
                           " is corrupt, refusing to open: " + s.message());
    }
    return s;
  }
  impl->db_.reset(raw);

  if (!exists) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    QSEAL_RETURN_IF_ERROR(FromRocksDb(impl->db_->Put(wo, impl->cf(kMeta), kFormatKey, kFormatValue),
                                      "queue format marker"));
  } else {
    std::string format;
    rocksdb::Status gs =
        impl->db_->Get(rocksdb::ReadOptions(), impl->cf(kMeta), kFormatKey, &format);
    if (gs.IsNotFound()) {
      return FailedPreconditionError("queue database at " + path + " has no format marker");
    }
    QSEAL_RETURN_IF_ERROR(FromRocksDb(gs, "queue format marker"));
    if (format != kFormatValue) {
      return FailedPreconditionError("queue database at " + path + " has format \"" + format +
                                     "\", this build reads \"" + kFormatValue + "\"");
    }
  }
  QSEAL_RETURN_IF_ERROR(impl->Load());
  impl->committer_ = std::thread([p = impl.get()] { p->Run(); });
  return impl;
}

// Rebuilds the in-memory index from the pending column family, requeues every leased record in
// one synced batch, and removes spool files no pending record references.
Status Queue::Impl::Load() {
  std::string counts;
  rocksdb::Status cs = db_->Get(rocksdb::ReadOptions(), cf(kMeta), kCountsKey, &counts);
  if (cs.ok()) {
    if (!DecodeCounts(counts, &sealed_count_, &failed_count_)) {
      return DataLossError("queue counters in " + options_.path + " do not decode");
    }
  } else if (!cs.IsNotFound()) {
    return FromRocksDb(cs, "queue counters");
  }

  BatchContext ctx;
  ctx.now = clock_.Now();
  ctx.steady_now = clock_.SteadyNow();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf(kPending)));
  std::size_t requeued = 0;
  std::vector<DocumentId> spooled;  // in id order, as the scan goes
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    DocumentId id;
    if (!detail::DecodeIdKey(std::string_view(it->key().data(), it->key().size()), &id)) {
      return DataLossError("queue pending index in " + options_.path + " has a malformed key");
    }
    std::string value;
    rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), cf(kRecords), IdKey(id), &value);
    if (gs.IsNotFound()) {
      return DataLossError("queue record " + id.ToString() + " is indexed as pending but missing");
    }
    QSEAL_RETURN_IF_ERROR(FromRocksDb(gs, "queue record " + id.ToString()));
    QSEAL_ASSIGN_OR_RETURN(StoredRecord stored, DecodeRecord(id, value));
    if (stored.record.state == State::kSealed || stored.record.state == State::kFailed) {
      return DataLossError("queue record " + id.ToString() + " is indexed as pending but is " +
                           std::string(StateName(stored.record.state)));
    }
    Record& r = stored.record;
    index_.Add(id, r.size, r.created_at);
    pending_bytes_ += r.size;
    if (stored.payload == PayloadKind::kSpool) spooled.push_back(id);
    if (r.state == State::kLeased) {
      Requeue(stored, ctx.now, ctx);
      ++requeued;
    } else {
      ++queued_count_;
      if (r.not_before > ctx.now) {
        index_.SetDelayed(id, ctx.steady_now + (r.not_before - ctx.now));
      } else {
        index_.SetReady(id);
      }
    }
  }
  QSEAL_RETURN_IF_ERROR(FromRocksDb(it->status(), "queue pending index scan"));
  it.reset();

  if (ctx.batch.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    QSEAL_RETURN_IF_ERROR(FromRocksDb(db_->Write(wo, &ctx.batch), "queue requeue on open"));
  }
  in_flight_.clear();
  if (requeued > 0) LogInfo("queue requeued leased documents", {{"count", requeued}});

  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(spool_dir_, ec)) {
    std::string name = entry.path().filename().string();
    bool keep = false;
    DocumentId seal_of;
    if (entry.path().extension() == ".payload") {
      auto id = DocumentId::Parse(entry.path().stem().string());
      if (id.ok()) keep = std::binary_search(spooled.begin(), spooled.end(), *id);
    } else if (detail::ParseSealFileName(name, &seal_of)) {
      // Kept only when it is the document's stored seal: not the file of an attempt that lost,
      // or of a completion whose batch never reached the disk.
      auto stored = SpooledSealOf(seal_of);
      keep = stored.has_value() && stored->file_name == name;
    }
    if (!keep) {
      std::filesystem::remove(entry.path(), ec);
      LogInfo("queue removed unreferenced spool file", {{"file", name}});
    }
  }
  for (const DocumentId& id : spooled) {
    if (!std::filesystem::exists(SpoolPath(id), ec)) {
      return DataLossError("queue record " + id.ToString() + " references spool file " +
                           SpoolPath(id) + ", which is missing");
    }
  }
  PublishStats();
  return Status::Ok();
}

Status Queue::Impl::Close() {
  {
    MutexLock lock(submit_mu_);
    if (closed_.load()) return Status::Ok();
    closed_.store(true);
    stopping_ = true;
  }
  committer_cv_.SignalAll();
  if (committer_.joinable()) committer_.join();
  {
    MutexLock lock(work_mu_);
    ++work_generation_;
  }
  work_cv_.SignalAll();
  Status result;
  if (db_ != nullptr) {
    if (!read_only_.load()) {
      // Lease writes are unsynced; syncing them here saves requeues after a clean restart.
      result = FromRocksDb(db_->SyncWAL(), "queue WAL sync on close");
    }
    for (auto* handle : cf_) {
      Status s = FromRocksDb(db_->DestroyColumnFamilyHandle(handle), "queue close");
      if (result.ok()) result = s;
    }
    cf_.clear();
    Status s = FromRocksDb(db_->Close(), "queue close");
    if (result.ok()) result = s;
    db_.reset();
  }
  return result;
}

}  // namespace qseal::queue
