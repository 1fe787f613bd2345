#include "queue/queue.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include <openssl/evp.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "common/crash_point.h"
#include "common/log.h"
#include "common/mutex.h"
#include "queue/detail/codec.h"
#include "queue/detail/open_with_env.h"
#include "queue/detail/pending_index.h"
#include "queue/detail/rocksdb_status.h"

namespace qseal::queue {

using detail::DecodeRecord;
using detail::EncodeRecord;
using detail::FromRocksDb;
using detail::IdKey;
using detail::PayloadKind;
using detail::PendingSlot;
using detail::StoredRecord;
using detail::Where;

namespace {

using SysTime = std::chrono::system_clock::time_point;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr char kFormatKey[] = "format";
constexpr char kFormatValue[] = "qseal-queue/1";
constexpr char kCountsKey[] = "counts";
constexpr std::size_t kSweepBatch = 10000;

// Column families, in the order of Impl::cf_. "default" holds the meta keys.
constexpr const char* kCfNames[] = {"default", "records", "pending",    "payloads",
                                    "results", "expiry",  "idempotency"};
enum Cf { kMeta = 0, kRecords, kPending, kPayloads, kResults, kExpiry, kIdempotency, kCfCount };

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name != nullptr ? name : "errno " + std::to_string(err)) + " (" +
         std::strerror(err) + ")";
}

Status IoError(std::string_view what, const std::string& path, int err) {
  return UnavailableError(std::string(what) + " " + path + ": " + ErrnoText(err));
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(ByteSpan data) { EVP_DigestUpdate(ctx_, data.data(), data.size()); }
  std::string FinalHex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return HexEncode(ByteSpan(md, len));
  }

 private:
  EVP_MD_CTX* ctx_;
};

Status WriteAll(int fd, ByteSpan data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("write", path, errno);
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open directory", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return IoError("fsync directory", dir, err);
  return Status::Ok();
}

rocksdb::Slice ToSlice(ByteSpan b) {
  return rocksdb::Slice(reinterpret_cast<const char*>(b.data()), b.size());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Streaming payloads.

namespace {

// Buffers up to inline_max bytes in memory; beyond that everything goes to <spool>/<ID>.tmp, which
// Finish() fdatasyncs and renames to <ID>.payload (then fsyncs the directory) before the record
// referencing it is committed.
class PendingDocumentImpl final : public PendingDocument {
 public:
  PendingDocumentImpl(const void* owner, NewDocument doc, DocumentId id, std::string spool_dir,
                      std::uint64_t inline_max)
      : owner_(owner),
        doc_(std::move(doc)),
        id_(id),
        spool_dir_(std::move(spool_dir)),
        inline_max_(inline_max) {}

  ~PendingDocumentImpl() override {
    if (fd_ >= 0) ::close(fd_);
    if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  }

  Status Append(ByteSpan chunk) override {
    if (!broken_.ok()) return broken_;
    if (finished_) return FailedPreconditionError("document already committed");
    sha_.Update(chunk);
    size_ += chunk.size();
    if (fd_ < 0 && buffer_.size() + chunk.size() <= inline_max_) {
      buffer_.insert(buffer_.end(), chunk.begin(), chunk.end());
      return Status::Ok();
    }
    if (fd_ < 0) {
      tmp_path_ = spool_dir_ + "/" + id_.ToString() + ".tmp";
      fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd_ < 0) return Broken(IoError("create spool file", tmp_path_, errno));
      Status s = WriteAll(fd_, buffer_, tmp_path_);
      Bytes().swap(buffer_);
      if (!s.ok()) return Broken(s);
    }
    Status s = WriteAll(fd_, chunk, tmp_path_);
    if (!s.ok()) return Broken(s);
    return Status::Ok();
  }

  std::uint64_t size() const override { return size_; }
  const DocumentId& id() const override { return id_; }

  // Computes the digest and, when spooled, makes the spool file durable under its final name.
  Status Finish() {
    if (!broken_.ok()) return broken_;
    if (finished_) return FailedPreconditionError("document already committed");
    sha256_hex_ = sha_.FinalHex();
    if (fd_ >= 0) {
      if (::fdatasync(fd_) != 0) return Broken(IoError("fdatasync spool file", tmp_path_, errno));
      if (::close(fd_) != 0) {
        fd_ = -1;
        return Broken(IoError("close spool file", tmp_path_, errno));
      }
      fd_ = -1;
      final_path_ = spool_dir_ + "/" + id_.ToString() + ".payload";
      if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
        return Broken(IoError("rename spool file", tmp_path_, errno));
      }
      finished_ = true;
      QSEAL_RETURN_IF_ERROR(FsyncDir(spool_dir_));
    }
    finished_ = true;
    return Status::Ok();
  }

  const void* owner() const { return owner_; }
  const NewDocument& doc() const { return doc_; }
  bool spooled() const { return !final_path_.empty(); }
  const std::string& final_path() const { return final_path_; }
  ByteSpan inline_bytes() const { return buffer_; }
  const std::string& sha256_hex() const { return sha256_hex_; }

 private:
  Status Broken(Status s) {
    broken_ = s;
    return s;
  }

  const void* owner_;
  NewDocument doc_;
  DocumentId id_;
  std::string spool_dir_;
  std::uint64_t inline_max_;
  Bytes buffer_;
  int fd_ = -1;
  std::string tmp_path_;
  std::string final_path_;
  std::uint64_t size_ = 0;
  Sha256 sha_;
  std::string sha256_hex_;
  Status broken_;
  bool finished_ = false;
};

class InlineReader final : public PayloadReader {
 public:
  explicit InlineReader(std::string value) : value_(std::move(value)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> buffer) override {
    std::size_t n = std::min(buffer.size(), value_.size() - pos_);
    std::memcpy(buffer.data(), value_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  std::uint64_t size() const override { return value_.size(); }

 private:
  std::string value_;
  std::size_t pos_ = 0;
};

class SpoolReader final : public PayloadReader {
 public:
  SpoolReader(int fd, std::string path, std::uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  ~SpoolReader() override { ::close(fd_); }
  SpoolReader(const SpoolReader&) = delete;
  SpoolReader& operator=(const SpoolReader&) = delete;

  Result<std::size_t> Read(std::span<std::uint8_t> buffer) override {
    for (;;) {
      ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return IoError("read spool file", path_, errno);
    }
  }
  std::uint64_t size() const override { return size_; }

 private:
  int fd_;
  std::string path_;
  std::uint64_t size_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The queue.

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
  Status Complete(std::vector<Completion> completions);
  Status Fail(std::vector<Failure> failures);
  Result<Record> Get(const DocumentId& id) const;
  Result<StoredRecord> LoadStored(const DocumentId& id) const;
  Result<Bytes> GetSeal(const DocumentId& id) const;
  Result<std::uint64_t> SweepRetention();
  QueueStats Stats() const;
  Status Health() const;
  Status Close();

  void SetUnhealthy(const Status& status);

 private:
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
  static Op EnqueueOp(PendingDocumentImpl& p);

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
  void PutRecord(BatchContext& ctx, const StoredRecord& stored);
  Result<StoredRecord> ReadNewestLocked(const DocumentId& id) const;
  void Unindex(const PendingSlot& slot);
  void Requeue(StoredRecord& stored, SysTime not_before, BatchContext& ctx);
  void Finalize(const PendingSlot& slot, StoredRecord& stored, State state, BatchContext& ctx);
  void PublishStats();
  std::string SpoolPath(const DocumentId& id) const {
    return spool_dir_ + "/" + id.ToString() + ".payload";
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

namespace {

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

Status ValidateDocument(const NewDocument& doc) {
  if (doc.profile.empty()) return InvalidArgumentError("document has no profile");
  if (doc.source != Source::kApi && doc.source != Source::kWatch) {
    return InvalidArgumentError("document source out of range");
  }
  return Status::Ok();
}

std::string EncodeCounts(std::uint64_t sealed, std::uint64_t failed) {
  std::string out;
  for (std::uint64_t v : {sealed, failed}) {
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
  }
  return out;
}

bool DecodeCounts(std::string_view in, std::uint64_t* sealed, std::uint64_t* failed) {
  if (in.size() != 16) return false;
  std::uint64_t v[2] = {0, 0};
  for (std::size_t k = 0; k < 2; ++k) {
    for (std::size_t i = 0; i < 8; ++i)
      v[k] = (v[k] << 8) | static_cast<std::uint8_t>(in[k * 8 + i]);
  }
  *sealed = v[0];
  *failed = v[1];
  return true;
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
    if (entry.path().extension() == ".payload") {
      auto id = DocumentId::Parse(entry.path().stem().string());
      if (id.ok()) keep = std::binary_search(spooled.begin(), spooled.end(), *id);
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
  Sha256 sha;
  sha.Update(content);
  op.sha256_hex = sha.FinalHex();
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

Status Queue::Impl::Complete(std::vector<Completion> completions) {
  QSEAL_RETURN_IF_ERROR(CheckOpen());
  if (completions.empty()) return Status::Ok();
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

Result<Bytes> Queue::Impl::GetSeal(const DocumentId& id) const {
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
  return detail::DecodeSeal(id, value);
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
      return std::unique_ptr<PayloadReader>(std::make_unique<InlineReader>(std::move(bytes)));
    }
    case PayloadKind::kSpool: {
      std::string path = SpoolPath(id);
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT) {
          return NotFoundError("payload of document " + id.ToString() + " was deleted");
        }
        return IoError("open spool file", path, errno);
      }
      struct stat st {};
      if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) != stored.record.size) {
        ::close(fd);
        return DataLossError("spool file " + path + " does not have the recorded size " +
                             std::to_string(stored.record.size));
      }
      return std::unique_ptr<PayloadReader>(
          std::make_unique<SpoolReader>(fd, path, stored.record.size));
    }
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

// ---------------------------------------------------------------------------------------------
// The committer thread: the only writer of queue state.

void Queue::Impl::Run() {
  const bool timed_sweep = options_.retention_sweep_interval.count() > 0;
  auto next_sweep = std::chrono::steady_clock::now() + options_.retention_sweep_interval;
  for (;;) {
    std::vector<Op*> batch;
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
    ctx.batch.Put(cf(kResults), IdKey(c.id), detail::EncodeSeal(c.seal));
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
    if (f.retryable && r.attempts < options_.max_attempts) {
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

// ---------------------------------------------------------------------------------------------
// Public facade.

Queue::Queue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Queue::~Queue() = default;

Result<std::unique_ptr<Queue>> Queue::Open(QueueOptions options, Clock& clock) {
  return detail::OpenWithEnv(std::move(options), clock, nullptr);
}

Result<std::unique_ptr<Queue>> detail::OpenWithEnv(QueueOptions options, Clock& clock,
                                                   rocksdb::Env* env) {
  QSEAL_ASSIGN_OR_RETURN(auto impl, Queue::Impl::Open(std::move(options), clock, env));
  return std::make_unique<Queue>(std::move(impl));
}

Result<EnqueueResult> Queue::Enqueue(const NewDocument& d, ByteSpan c) {
  return impl_->Enqueue(d, c);
}
Result<std::unique_ptr<PendingDocument>> Queue::Begin(const NewDocument& d) {
  return impl_->Begin(d);
}
Result<EnqueueResult> Queue::Commit(std::unique_ptr<PendingDocument> p) {
  return impl_->Commit(std::move(p));
}
std::vector<Result<EnqueueResult>> Queue::CommitMany(
    std::vector<std::unique_ptr<PendingDocument>> p) {
  return impl_->CommitMany(std::move(p));
}
Status Queue::Admit() const { return impl_->Admit(); }
Result<std::vector<Record>> Queue::Lease(std::size_t max_count, std::uint64_t max_bytes,
                                         std::chrono::milliseconds lease_duration) {
  return impl_->Lease(max_count, max_bytes, lease_duration);
}
bool Queue::WaitForWork(std::chrono::milliseconds max_wait) { return impl_->WaitForWork(max_wait); }
Result<std::unique_ptr<PayloadReader>> Queue::OpenPayload(const DocumentId& id) const {
  return impl_->OpenPayload(id);
}
Status Queue::Complete(std::vector<Completion> c) { return impl_->Complete(std::move(c)); }
Status Queue::Fail(std::vector<Failure> f) { return impl_->Fail(std::move(f)); }
Result<Record> Queue::Get(const DocumentId& id) const { return impl_->Get(id); }
Result<Bytes> Queue::GetSeal(const DocumentId& id) const { return impl_->GetSeal(id); }
Result<std::uint64_t> Queue::SweepRetention() { return impl_->SweepRetention(); }
QueueStats Queue::Stats() const { return impl_->Stats(); }
Status Queue::Health() const { return impl_->Health(); }
Status Queue::Close() { return impl_->Close(); }

}  // namespace qseal::queue
