#include "audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "audit/detail/checkpoint_key.h"
#include "audit/detail/record.h"
#include "audit/verifier.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mutex.h"

namespace qseal::audit {

std::string_view EventName(Event e) {
  switch (e) {
    case Event::kStartup:
      return "startup";
    case Event::kShutdown:
      return "shutdown";
    case Event::kConfigLoaded:
      return "config_loaded";
    case Event::kSignIntent:
      return "sign_intent";
    case Event::kSealed:
      return "sealed";
    case Event::kFailed:
      return "failed";
    case Event::kRejected:
      return "rejected";
    case Event::kAuthDenied:
      return "auth_denied";
    case Event::kPartitionUp:
      return "partition_up";
    case Event::kPartitionDown:
      return "partition_down";
    case Event::kSegmentStart:
      return "segment_start";
    case Event::kCheckpoint:
      return "checkpoint";
    case Event::kCheckpointKeyNew:
      return "checkpoint_key_new";
  }
  return "unknown";
}

namespace {

using detail::LineBuilder;

// The errno of the call that just failed, as a kUnavailable Status naming `what`.
Status Errno(const std::string& what) { return ErrnoStatus(what, errno); }

// The old key's public half, when the key itself is gone: its key_id for the record, and the file
// kept as `<key>.<16 hex>.pub.pem` so the segments it signed can still be verified.
Result<std::string> KeepOldPublicKey(const std::string& key_file) {
  const std::string pub = key_file + ".pub.pem";
  std::error_code ec;
  if (!std::filesystem::exists(pub, ec)) return "unknown (no " + pub + ")";
  Result<detail::CheckpointKey> old = detail::CheckpointKey::LoadPublic(pub);
  if (!old.ok()) return "unknown (" + old.status().message() + ")";
  const std::string kept = key_file + "." + old->key_id().substr(0, 16) + ".pub.pem";
  std::filesystem::rename(pub, kept, ec);
  if (ec)
    return UnavailableError("audit: cannot keep " + pub + " as " + kept + ": " + ec.message());
  return old->key_id();
}

struct Head {
  std::uint64_t seq = 0;  // 0: empty log
  std::string hash = std::string(detail::kZeroHash);
};

// The last record of the chain in a segment file: complete lines that parse, hash correctly and
// follow each other. A torn or abandoned tail is skipped (the next segment's header will name
// the head found here). nullopt when the file holds no valid record.
std::optional<Head> ReadHead(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::optional<Head> head;
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline: torn
    Result<detail::ParsedLine> p = detail::ParseLine(line);
    if (!p.ok() || !p->hash_ok) break;
    if (head && (p->seq != head->seq + 1 || p->prev != head->hash)) break;
    head = Head{p->seq, p->hash};
  }
  return head;
}

// The key_id the header (first record) of a segment file names: the checkpoint key of the run
// that wrote it. Empty when the header does not parse.
std::string HeaderKeyId(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!std::getline(in, line)) return "";
  Result<detail::ParsedLine> p = detail::ParseLine(line);
  return p.ok() && p->hash_ok ? p->key_id : "";
}

Status WriteAt(int fd, std::string_view data, std::uint64_t offset, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write " + path);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

class AuditLog::Impl {
 public:
  Impl(AuditOptions options, Clock& clock, detail::CheckpointKey key, Head head)
      : options_(std::move(options)),
        clock_(clock),
        key_(std::move(key)),
        head_(head),
        durable_(head) {}

  ~Impl() { Close().IgnoreError(); }

  // Starts the first segment of this run and the writer thread.
  Status Start() {
    Status s = StartSegment();
    if (!s.ok()) return s;
    writer_ = std::thread([this] { WriterLoop(); });
    return Status::Ok();
  }

  void AppendAsync(std::vector<Entry> entries, AppendCallback done) {
    {
      MutexLock lock(mu_);
      if (!closing_) {
        pending_.push_back({std::move(entries), std::move(done)});
        cv_.Signal();
        return;
      }
    }
    if (done) done(CancelledError("audit log closed"));
  }

  Status Append(std::vector<Entry> entries) {
    std::promise<Status> p;
    std::future<Status> f = p.get_future();
    AppendAsync(std::move(entries), [&p](Status s) { p.set_value(std::move(s)); });
    return f.get();
  }

  Status Health() const {
    MutexLock lock(mu_);
    return health_;
  }

  AuditStats Stats() const {
    MutexLock lock(mu_);
    AuditStats s = stats_;
    s.healthy = health_.ok();
    return s;
  }

  Status Close() {
    {
      MutexLock lock(mu_);
      if (closing_ && !writer_.joinable()) return Status::Ok();
      closing_ = true;
      cv_.SignalAll();
    }
    if (writer_.joinable()) writer_.join();
    CloseSegment();
    AuditStats st = Stats();
    LogInfo("audit log closed", {{"records", static_cast<std::int64_t>(st.records)},
                                 {"syncs", static_cast<std::int64_t>(st.syncs)},
                                 {"checkpoints", static_cast<std::int64_t>(st.checkpoints)},
                                 {"last_seq", static_cast<std::int64_t>(st.last_seq)}});
    return Health();
  }

 private:
  struct Request {
    std::vector<Entry> entries;
    AppendCallback done;
  };

  void WriterLoop() {
    while (true) {
      std::deque<Request> batch;
      bool closing = false;
      {
        MutexLock lock(mu_);
        while (pending_.empty() && !closing_) {
          auto deadline = NextDeadline();
          if (!deadline) {
            cv_.Wait(mu_);
          } else if (!cv_.WaitUntil(mu_, *deadline)) {
            break;  // timer: checkpoint or retry due
          }
        }
        batch.swap(pending_);
        closing = closing_;
      }
      Status status = WriteGroup(batch, closing);
      for (auto& r : batch) {
        if (r.done) r.done(status);
      }
      if (closing) {
        MutexLock lock(mu_);
        if (pending_.empty()) return;
      }
    }
  }

  // When the writer must wake up without requests: a checkpoint falls due, or a retry.
  std::optional<std::chrono::steady_clock::time_point> NextDeadline() const QSEAL_REQUIRES(mu_) {
    if (!health_.ok()) return std::chrono::steady_clock::now() + options_.retry_interval;
    if (uncovered_ > 0) {
      auto due = std::max(first_uncovered_ + options_.checkpoint_interval, next_checkpoint_try_);
      // Translate the injected clock's steady time into the real one used by the condvar.
      return std::chrono::steady_clock::now() + (due - clock_.SteadyNow());
    }
    return std::nullopt;
  }

  // Writes every entry of `batch` plus a checkpoint when one is due, with one write and one
  // fdatasync. Only the writer thread runs this.
  Status WriteGroup(const std::deque<Request>& batch, bool closing) {
    std::size_t count = 0;
    for (const auto& r : batch) count += r.entries.size();
    if (!Healthy()) {
      if (!TryRecover()) {
        MutexLock lock(mu_);
        stats_.failures += count;
        return health_;
      }
    }
    auto steady_now = clock_.SteadyNow();
    if (count > 0 && (segment_bytes_ >= options_.segment_bytes ||
                      steady_now - segment_started_ >= options_.segment_age)) {
      Status s = StartSegment();
      if (!s.ok()) return Fail(s, count);
    }
    std::string out;
    out.reserve(count * 320);
    std::string time = FormatUtc(clock_.Now());
    Head head = head_;
    std::uint64_t uncovered = uncovered_;
    for (const auto& r : batch) {
      for (const Entry& e : r.entries) {
        LineBuilder b(head.seq + 1, time, EventName(e.event));
        b.Str("id", e.id);
        b.Str("profile", e.profile);
        b.Str("client", e.client);
        b.Str("key", e.key);
        b.Str("document_sha256", e.document_sha256);
        b.Str("signature_sha256", e.signature_sha256);
        b.Str("detail", e.detail);
        b.Str("source", e.source);
        out += b.Finish(head.hash);
        head = Head{head.seq + 1, b.hash()};
      }
    }
    if (uncovered == 0 && count > 0) first_uncovered_ = steady_now;
    uncovered += count;
    const bool due = uncovered >= options_.checkpoint_records ||
                     steady_now - first_uncovered_ >= options_.checkpoint_interval;
    bool checkpoint = uncovered > 0 && (closing || (due && steady_now >= next_checkpoint_try_));
    if (checkpoint) {
      Result<std::string> line = CheckpointLine(head, time);
      if (line.ok()) {
        out += *line;
        head = Head{head.seq + 1, last_line_hash_};
      } else if (options_.checkpoint_signer) {
        // The HSM key is out of reach: the records still go out; a later checkpoint covers them.
        if (next_checkpoint_try_ == std::chrono::steady_clock::time_point{}) {
          LogWarn("audit: checkpoint not signed, tried again later",
                  {{"error", line.status().ToString()}});
        }
        checkpoint = false;
        next_checkpoint_try_ = steady_now + options_.retry_interval;
        MutexLock lock(mu_);
        stats_.checkpoints_skipped++;
      } else {
        return Fail(line.status(), count);
      }
    }
    if (checkpoint) next_checkpoint_try_ = {};
    if (out.empty()) return Status::Ok();
    Status s = Reserve(fd_, segment_bytes_ + out.size(), segment_path_);
    if (s.ok()) s = WriteAt(fd_, out, segment_bytes_, segment_path_);
    if (s.ok() && ::fdatasync(fd_) != 0) s = Errno("fdatasync " + segment_path_);
    if (!s.ok()) return Fail(s, count);
    segment_bytes_ += out.size();
    head_ = head;
    durable_ = head;
    uncovered_ = checkpoint ? 0 : uncovered;
    MutexLock lock(mu_);
    stats_.records += count + (checkpoint ? 1 : 0);
    stats_.syncs++;
    if (checkpoint) stats_.checkpoints++;
    stats_.last_seq = head.seq;
    return Status::Ok();
  }

  Result<std::string> CheckpointLine(const Head& head, const std::string& time) {
    std::uint64_t seq = head.seq + 1;
    QSEAL_ASSIGN_OR_RETURN(std::string sig,
                           key_.Sign(detail::CheckpointMessage(seq, time, head.seq, head.hash)));
    LineBuilder b(seq, time, EventName(Event::kCheckpoint));
    b.Num("head_seq", head.seq);
    b.Str("key_id", key_.key_id());
    b.Str("sig", sig);
    std::string line = b.Finish(head.hash);
    last_line_hash_ = b.hash();
    return line;
  }

  bool Healthy() const {
    MutexLock lock(mu_);
    return health_.ok();
  }

  // The segment is broken: nothing more goes into it. Later appends fail until TryRecover opens
  // a new segment that continues from the last durable record.
  Status Fail(const Status& cause, std::size_t count) {
    LogError("audit log write failed; sealing stops until it can be written",
             {{"error", cause.ToString()}});
    if (fd_ >= 0) {
      // Best effort: cut what the failed group left behind. Whatever stays is abandoned; the
      // next segment's header names the last durable record, and the verifier skips the rest.
      (void)!::ftruncate(fd_, static_cast<off_t>(segment_bytes_));
      ::close(fd_);
      fd_ = -1;
    }
    head_ = durable_;
    uncovered_ = 0;  // the new segment's header starts a fresh stretch to cover
    Status s = UnavailableError("audit log not writable: " + cause.message());
    MutexLock lock(mu_);
    health_ = s;
    stats_.failures += count;
    next_retry_ = clock_.SteadyNow() + options_.retry_interval;
    return s;
  }

  bool TryRecover() {
    {
      MutexLock lock(mu_);
      if (clock_.SteadyNow() < next_retry_) return false;
      next_retry_ = clock_.SteadyNow() + options_.retry_interval;
    }
    Status s = StartSegment();
    if (!s.ok()) {
      LogWarn("audit log still not writable", {{"error", s.ToString()}});
      return false;
    }
    LogInfo("audit log writable again", {{"segment", segment_path_}});
    MutexLock lock(mu_);
    health_ = Status::Ok();
    return true;
  }

  // Appends overwrite zeros written ahead (preallocate_bytes at a time), so most fdatasync calls
  // flush data only: no file size change, no file-system journal commit, which would also delay
  // the queue's own syncs on the same file system. Readers ignore a zero-filled tail.
  Status Reserve(int fd, std::uint64_t end, const std::string& path) {
    if (end <= allocated_ || options_.preallocate_bytes == 0) return Status::Ok();
    std::uint64_t chunk = options_.preallocate_bytes;
    std::uint64_t target = (end + chunk - 1) / chunk * chunk;
    static const std::string kZeros(64 << 10, '\0');
    for (std::uint64_t at = allocated_; at < target;) {
      std::uint64_t n = std::min<std::uint64_t>(kZeros.size(), target - at);
      QSEAL_RETURN_IF_ERROR(WriteAt(fd, std::string_view(kZeros).substr(0, n), at, path));
      at += n;
    }
    allocated_ = target;
    return Status::Ok();
  }

  // A segment that is done is cut to its records (best effort: a zero tail left by a crash is
  // harmless) and closed.
  void CloseSegment() {
    if (fd_ < 0) return;
    if (allocated_ > segment_bytes_ &&
        (::ftruncate(fd_, static_cast<off_t>(segment_bytes_)) != 0 || ::fdatasync(fd_) != 0)) {
      LogWarn("audit segment not trimmed", {{"segment", segment_path_}});
    }
    ::close(fd_);
    fd_ = -1;
  }

  // Closes the current segment (already synced) and starts the next one with a header naming the
  // last durable record; durable itself (file synced, directory synced) before it returns.
  Status StartSegment() {
    CloseSegment();
    std::uint64_t seq = durable_.seq + 1;
    std::string path = options_.dir + "/" + detail::SegmentName(seq);
    // A file of that name can only be a segment whose header never became durable (its creation
    // failed): it holds no record, so it may go.
    std::error_code ec;
    if (std::filesystem::exists(path, ec) && !ReadHead(path)) std::filesystem::remove(path, ec);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) return Errno("create " + path);
    std::string time = FormatUtc(clock_.Now());
    LineBuilder b(seq, time, EventName(Event::kSegmentStart));
    b.Num("prev_seq", durable_.seq);
    b.Str("key_id", key_.key_id());
    std::string line = b.Finish(durable_.hash);
    allocated_ = 0;
    Status s = Reserve(fd, line.size(), path);
    if (s.ok()) s = WriteAt(fd, line, 0, path);
    if (s.ok() && ::fdatasync(fd) != 0) s = Errno("fdatasync " + path);
    if (s.ok()) s = FsyncDir(options_.dir);
    if (!s.ok()) {
      ::close(fd);
      std::filesystem::remove(path, ec);
      return s;
    }
    fd_ = fd;
    segment_path_ = path;
    segment_bytes_ = line.size();
    segment_started_ = clock_.SteadyNow();
    head_ = Head{seq, b.hash()};
    durable_ = head_;
    if (uncovered_ == 0) first_uncovered_ = segment_started_;
    uncovered_++;
    MutexLock lock(mu_);
    stats_.records++;
    stats_.syncs++;
    stats_.last_seq = seq;
    return Status::Ok();
  }

  const AuditOptions options_;
  Clock& clock_;
  const detail::CheckpointKey key_;

  // Writer thread only (and Start/Close, which run when it does not).
  int fd_ = -1;
  std::string segment_path_;
  std::uint64_t segment_bytes_ = 0;  // bytes of records in the current segment
  std::uint64_t allocated_ = 0;      // its size on disk (records + zeros written ahead)
  std::chrono::steady_clock::time_point segment_started_;
  Head head_;     // the last record written into the current group
  Head durable_;  // the last record known synced
  std::string last_line_hash_;
  std::uint64_t uncovered_ = 0;  // records after the last checkpoint
  // After a checkpoint the HSM could not sign: none is tried before this (epoch: no wait).
  std::chrono::steady_clock::time_point next_checkpoint_try_{};
  std::chrono::steady_clock::time_point first_uncovered_;
  std::thread writer_;

  mutable Mutex mu_;
  CondVar cv_;
  std::deque<Request> pending_ QSEAL_GUARDED_BY(mu_);
  bool closing_ QSEAL_GUARDED_BY(mu_) = false;
  Status health_ QSEAL_GUARDED_BY(mu_) = Status::Ok();
  std::chrono::steady_clock::time_point next_retry_ QSEAL_GUARDED_BY(mu_);
  AuditStats stats_ QSEAL_GUARDED_BY(mu_);
};

Result<std::unique_ptr<AuditLog>> AuditLog::Open(AuditOptions options, Clock& clock) {
  if (options.dir.empty()) return InvalidArgumentError("audit: dir is required");
  const bool in_hsm = static_cast<bool>(options.checkpoint_signer);
  if (options.checkpoint_key_file.empty() && !in_hsm)
    return InvalidArgumentError("audit: checkpoint_key_file is required");
  if (options.checkpoint_records == 0) options.checkpoint_records = 1;
  options.preallocate_bytes = std::min(options.preallocate_bytes, options.segment_bytes);
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return UnavailableError("audit: cannot create " + options.dir + ": " + ec.message());
  QSEAL_ASSIGN_OR_RETURN(auto segments, ListSegments(options.dir));
  const std::string& key_file = options.checkpoint_key_file;
  // A key that vanished under an existing trail is never replaced without the operator saying so:
  // a new key would let whoever deleted the old one re-sign a rewritten trail.
  const bool replace_key = !in_hsm && !segments.empty() && !std::filesystem::exists(key_file, ec);
  std::string old_key_id;
  if (replace_key) {
    if (!options.new_key) {
      return InvalidArgumentError(
          "audit: the checkpoint key " + key_file + " is missing but " + options.dir + " holds " +
          std::to_string(segments.size()) +
          " audit segment(s); it is not regenerated silently: restore the key file, or start "
          "`qseald --new-audit-key` to begin a new checkpoint key (recorded in the trail)");
    }
    QSEAL_ASSIGN_OR_RETURN(old_key_id, KeepOldPublicKey(key_file));
  }
  Result<detail::CheckpointKey> key =
      in_hsm ? detail::CheckpointKey::External(options.checkpoint_public_key_der,
                                               options.checkpoint_signer)
             : detail::CheckpointKey::LoadPrivate(key_file,
                                                  options.create_key_if_missing || replace_key);
  if (!key.ok()) return key.status().WithContext("audit");
  Head head;
  std::string trail_key_id;
  // The newest segment holding a record carries the head; one without any (a creation that
  // failed) is skipped and replaced when the new segment takes its name.
  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    std::optional<Head> h = ReadHead(options.dir + "/" + it->second);
    if (h) {
      head = *h;
      trail_key_id = HeaderKeyId(options.dir + "/" + it->second);
      break;
    }
  }
  if (!segments.empty() && head.seq == 0) {
    return DataLossError("audit: no readable record in " + options.dir +
                         "; run `qsealctl audit verify`");
  }
  const std::string new_key_id = key->key_id();
  // Another key than the one the trail was last signed with (a replaced file, another HSM key):
  // as for a missing one, only on the operator's word, and recorded.
  const bool other_key = !replace_key && !trail_key_id.empty() && trail_key_id != new_key_id;
  if (other_key) {
    if (!options.new_key) {
      return InvalidArgumentError(
          "audit: the checkpoint key (key_id " + new_key_id + ") is not the one " + options.dir +
          " was last signed with (key_id " + trail_key_id +
          "); it is not replaced silently: restore that key, or start `qseald --new-audit-key` "
          "to begin the new one (recorded in the trail)");
    }
    old_key_id = trail_key_id;
  }
  auto impl = std::make_unique<Impl>(std::move(options), clock, std::move(*key), head);
  Status s = impl->Start();
  if (!s.ok()) return s.WithContext("audit");
  auto log = std::unique_ptr<AuditLog>(new AuditLog(std::move(impl)));
  if (replace_key || other_key) {
    LogWarn(replace_key ? "audit: a new checkpoint key replaces a missing one (--new-audit-key)"
                        : "audit: a new checkpoint key replaces the trail's (--new-audit-key)",
            {{"old_key_id", old_key_id}, {"new_key_id", new_key_id}});
    QSEAL_RETURN_IF_ERROR(
        log->Append({EventEntry(Event::kCheckpointKeyNew,
                                "old key_id=" + old_key_id + "; new key_id=" + new_key_id)})
            .WithContext("audit"));
  }
  return log;
}

AuditLog::AuditLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLog::~AuditLog() = default;
void AuditLog::AppendAsync(std::vector<Entry> entries, AppendCallback done) {
  impl_->AppendAsync(std::move(entries), std::move(done));
}
Status AuditLog::Append(std::vector<Entry> entries) { return impl_->Append(std::move(entries)); }
Status AuditLog::Health() const { return impl_->Health(); }
AuditStats AuditLog::Stats() const { return impl_->Stats(); }
Status AuditLog::Close() { return impl_->Close(); }

}  // namespace qseal::audit
