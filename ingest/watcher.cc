#include "ingest/watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <set>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/fs.h"
#include "common/log.h"
#include "common/mutex.h"
#include "metrics/metrics.h"
#include "publish/folder_names.h"
#include "publish/folder_outbox.h"

namespace qseal::ingest {
namespace {

using publish::IsIgnoredName;

constexpr const char* kInbox = "inbox";
constexpr const char* kProcessing = "processing";
constexpr std::size_t kReadChunk = 256 << 10;
constexpr std::size_t kMaxClaimBatch = 64;
constexpr std::size_t kEnqueueThreads = 8;

bool IsRegularFile(int dir_fd, const std::string& name) {
  struct stat st;
  return ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

// Another process holds the file open for writing: a read lease cannot be taken then. The lease
// is dropped at once; a lease break in between is signalled with SIGURG (ignored by default)
// instead of SIGIO (which would terminate the process).
enum class WriteState { kClosed, kOpenForWriting, kUnknown };
WriteState ProbeWriters(int fd) {
  if (::fcntl(fd, F_SETSIG, SIGURG) != 0) return WriteState::kUnknown;
  if (::fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
    (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
    return WriteState::kClosed;
  }
  if (errno == EAGAIN || errno == EBUSY) return WriteState::kOpenForWriting;
  return WriteState::kUnknown;
}

std::string MediaTypeFor(const std::string& name) {
  std::size_t dot = name.rfind('.');
  if (dot == std::string::npos) return "";
  std::string ext = name.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == "pdf") return "application/pdf";
  if (ext == "xml") return "application/xml";
  if (ext == "json") return "application/json";
  if (ext == "txt") return "text/plain";
  return "";
}

}  // namespace

class FolderWatcher::Impl {
 public:
  Impl(WatchOptions options, queue::Queue* queue, publish::FolderOutbox* outbox)
      : options_(std::move(options)), queue_(queue), outbox_(outbox) {}

  ~Impl() { Stop(); }

  Status Start();
  void Stop();
  WatcherStats Stats() const;
  const std::string& root() const { return options_.root; }

 private:
  // Opens the outbox (which creates the root, processing/, outbox/ and failed/), then creates
  // inbox/ and opens inbox/ and processing/ once; the descriptors live as long as the Impl.
  Status OpenFolders();
  void Run();
  // Scans inbox/ into the candidate list.
  void ScanInbox();
  void AddCandidate(const std::string& name);
  // Renames one inbox entry into processing/ (not yet fsynced nor enqueued) and returns its
  // claimed name; nullopt when the entry is left alone or went to failed/ (oversized).
  Result<std::optional<std::string>> ClaimOne(const std::string& name);
  // EnqueueClaimed for each name, on up to kEnqueueThreads threads; one Status per name.
  std::vector<Status> EnqueueMany(const std::vector<std::string>& names);
  // Streams processing/<name> into the queue. `reconcile`: found at Start (the outbox publishes
  // the queue's record if it is already final).
  Status EnqueueClaimed(const std::string& name, bool reconcile);
  // Why a claim candidate opened as `st` is refused (more than one hard link, another owner than
  // WatchOptions::owner_uid), or OK; RefusalLabel is the metric code of a refusal.
  Status Refusal(const struct stat& st) const;
  static const char* RefusalLabel(const struct stat& st);
  // Moves inbox/<name> to failed/ unread with `reason`, counted under the metric code `label`.
  Status MoveUnread(const std::string& name, const Status& reason, const char* label);
  // After the claim: `reason` to failed/ through the outbox (the document was never accepted).
  Status FailClaimed(const std::string& name, const Status& reason);
  void LogOnce(const std::string& name, const struct stat& st, const char* reason);

  const WatchOptions options_;
  queue::Queue* const queue_;
  publish::FolderOutbox* const outbox_;

  Fd inbox_fd_, processing_fd_;  // opened by the first Start, before the watcher thread runs

  Mutex run_mu_;
  bool started_ QSEAL_GUARDED_BY(run_mu_) = false;
  std::thread thread_;
  Fd inotify_fd_;
  Fd stop_fd_;

  // Watcher-thread state.
  std::deque<std::string> candidates_;
  std::unordered_set<std::string> candidate_set_;
  std::deque<std::string> retry_;  // claimed names in processing/ waiting to be enqueued
  std::set<std::pair<std::string, ino_t>> logged_;
  std::size_t batch_limit_ = 1;

  std::atomic<std::uint64_t> claimed_{0}, reconciled_{0}, duplicates_{0}, skipped_{0}, scans_{0},
      pending_{0};
  std::atomic<bool> paused_{false};
  std::atomic<bool> lease_warned_{false};
};

Status FolderWatcher::Impl::OpenFolders() {
  QSEAL_RETURN_IF_ERROR(outbox_->Open());
  if (inbox_fd_.valid()) return Status::Ok();
  Fd root(::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("cannot open watch root " + options_.root, errno);
  if (::mkdirat(root.get(), kInbox, 0750) != 0 && errno != EEXIST) {
    return ErrnoStatus("cannot create " + options_.root + "/" + kInbox, errno);
  }
  Fd* fds[] = {&inbox_fd_, &processing_fd_};
  const char* names[] = {kInbox, kProcessing};
  for (int i = 0; i < 2; ++i) {
    Fd fd(::openat(root.get(), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      return ErrnoStatus("cannot open " + options_.root + "/" + names[i] + " (a directory)", errno);
    }
    *fds[i] = std::move(fd);
  }
  return FsyncFd(root.get(), options_.root);
}

Status FolderWatcher::Impl::Start() {
  if (options_.profile.empty())
    return InvalidArgumentError("watch " + options_.root + ": no profile");
  if (queue_ == nullptr) return InvalidArgumentError("watch " + options_.root + ": no queue");
  if (outbox_ == nullptr || outbox_->root() != options_.root) {
    return InvalidArgumentError("watch " + options_.root + ": no outbox for this root");
  }
  {
    MutexLock lock(run_mu_);
    if (started_) return FailedPreconditionError("watch " + options_.root + ": already started");
  }
  QSEAL_RETURN_IF_ERROR(OpenFolders());

  // Watch before reconciling and scanning, so nothing renamed in meanwhile is missed.
  Fd ifd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!ifd.valid()) return ErrnoStatus("inotify_init1", errno);
  std::string inbox_path = options_.root + "/" + kInbox;
  if (::inotify_add_watch(ifd.get(), inbox_path.c_str(),
                          IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW) < 0) {
    return ErrnoStatus("inotify_add_watch " + inbox_path, errno);
  }
  Fd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd.valid()) return ErrnoStatus("eventfd", errno);

  // Reconcile processing/: every file there was claimed by an earlier run.
  retry_.clear();
  candidates_.clear();
  candidate_set_.clear();
  batch_limit_ = 1;
  std::uint64_t found = 0;
  for (const auto& name : ListDir(processing_fd_.get()).value_or(std::vector<std::string>())) {
    if (IsIgnoredName(name)) continue;
    if (!IsRegularFile(processing_fd_.get(), name)) continue;
    ++found;
    Status s = EnqueueClaimed(name, /*reconcile=*/true);
    if (s.code() == StatusCode::kResourceExhausted) {
      retry_.push_back(name);
      continue;
    }
    if (!s.ok()) return s.WithContext("watch " + options_.root + ": reconciling processing/");
    reconciled_.fetch_add(1);
  }
  if (found > 0) {
    LogInfo("watch reconciled processing/",
            {{"root", options_.root}, {"files", found}, {"waiting", retry_.size()}});
  }

  inotify_fd_ = std::move(ifd);
  stop_fd_ = std::move(efd);
  MutexLock lock(run_mu_);
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  LogInfo("watch started", {{"root", options_.root}, {"profile", options_.profile}});
  return Status::Ok();
}

void FolderWatcher::Impl::Stop() {
  MutexLock lock(run_mu_);
  if (!started_) return;
  std::uint64_t one = 1;
  ssize_t n = ::write(stop_fd_.get(), &one, sizeof(one));
  (void)n;
  if (thread_.joinable()) thread_.join();
  inotify_fd_.Reset();
  stop_fd_.Reset();
  started_ = false;
  LogInfo("watch stopped", {{"root", options_.root}});
}

WatcherStats FolderWatcher::Impl::Stats() const {
  WatcherStats s;
  s.claimed = claimed_.load();
  s.reconciled = reconciled_.load();
  s.duplicates = duplicates_.load();
  publish::FolderOutboxStats outbox = outbox_->Stats();
  s.published = outbox.published;
  s.failed = outbox.failed;
  s.skipped = skipped_.load();
  s.scans = scans_.load();
  s.pending_in_inbox = pending_.load();
  s.paused = paused_.load();
  return s;
}

void FolderWatcher::Impl::AddCandidate(const std::string& name) {
  if (IsIgnoredName(name)) return;
  if (candidate_set_.insert(name).second) candidates_.push_back(name);
}

void FolderWatcher::Impl::ScanInbox() {
  std::vector<std::string> names = ListDir(inbox_fd_.get()).value_or(std::vector<std::string>());
  // Forget "logged once" entries whose file is gone, so a new file with that name is logged.
  std::set<std::pair<std::string, ino_t>> still;
  for (const auto& name : names) {
    AddCandidate(name);
    for (auto it = logged_.lower_bound({name, 0}); it != logged_.end() && it->first == name; ++it) {
      still.insert(*it);
    }
  }
  logged_ = std::move(still);
  scans_.fetch_add(1);
}

void FolderWatcher::Impl::Run() {
  bool rescan = true;
  auto next_poll = std::chrono::steady_clock::now() + options_.poll_interval;
  while (true) {
    bool paused = paused_.load();
    if (paused && queue_->Admit().ok()) {
      paused = false;
      paused_.store(false);
      rescan = true;
      LogInfo("watch resumed claiming", {{"root", options_.root}});
    }
    if (!paused) {
      while (!retry_.empty()) {
        Status s = EnqueueClaimed(retry_.front(), /*reconcile=*/true);
        if (s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kUnavailable) {
          // Rotate, so one unreadable file does not hold back the others.
          retry_.push_back(std::move(retry_.front()));
          retry_.pop_front();
          paused = true;
          break;
        }
        if (s.ok()) claimed_.fetch_add(1);
        retry_.pop_front();
      }
    }
    if (!paused && rescan) {
      ScanInbox();
      rescan = false;
    }
    while (!paused && !candidates_.empty()) {
      if (!queue_->Admit().ok()) {
        paused = true;
        break;
      }
      // Rename a batch into processing/, make the renames durable with one directory fsync, then
      // stream the batch into the queue concurrently so its commits share group commits. The
      // batch starts at one file and doubles while the queue admits, so a pause overshoots the
      // watermark by little.
      std::vector<std::string> batch;
      Status claim_error;
      while (batch.size() < batch_limit_ && !candidates_.empty()) {
        std::string name = std::move(candidates_.front());
        candidates_.pop_front();
        candidate_set_.erase(name);
        auto claimed = ClaimOne(name);
        if (!claimed.ok()) {
          claim_error = claimed.status();
          break;
        }
        if (claimed->has_value()) batch.push_back(std::move(**claimed));
      }
      if (!batch.empty()) {
        Status synced = FsyncFd(processing_fd_.get(), "processing/");
        std::vector<Status> results =
            synced.ok() ? EnqueueMany(batch) : std::vector<Status>(batch.size(), synced);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const Status& s = results[i];
          if (s.ok()) {
            claimed_.fetch_add(1);
          } else if (s.code() == StatusCode::kResourceExhausted ||
                     s.code() == StatusCode::kUnavailable) {
            if (s.code() == StatusCode::kUnavailable) {
              LogWarn("watch claimed a file it could not enqueue yet; retrying",
                      {{"root", options_.root}, {"name", batch[i]}, {"error", s.ToString()}});
            }
            retry_.push_back(batch[i]);
            paused = true;
          }
        }
        // Grow only under a sustained backlog (a full batch), so a trickle stays at one file.
        if (!paused && batch.size() == batch_limit_) {
          batch_limit_ = std::min(batch_limit_ * 2, kMaxClaimBatch);
        }
      }
      if (!claim_error.ok()) {
        LogError("watch cannot claim from inbox/",
                 {{"root", options_.root}, {"error", claim_error.ToString()}});
        paused = true;
      }
      pending_.store(candidates_.size());
      // Stay responsive to Stop during a long backlog.
      struct pollfd pfd = {stop_fd_.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 0) > 0) return;
    }
    if (paused) batch_limit_ = 1;
    if (paused && !paused_.load()) {
      // Forget the backlog: the rescan after resuming finds it again, so memory stays bounded
      // however long the pause.
      paused_.store(true);
      candidates_.clear();
      candidate_set_.clear();
      LogWarn("watch paused claiming: queue not admitting", {{"root", options_.root}});
    }
    pending_.store(candidates_.size());

    int timeout_ms = -1;
    if (paused || !retry_.empty()) {
      timeout_ms = static_cast<int>(options_.backpressure_recheck.count());
    }
    if (options_.poll_interval.count() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      next_poll - std::chrono::steady_clock::now())
                      .count();
      int poll_ms = static_cast<int>(std::max<std::int64_t>(0, left));
      timeout_ms = timeout_ms < 0 ? poll_ms : std::min(timeout_ms, poll_ms);
    }
    struct pollfd fds[2] = {{stop_fd_.get(), POLLIN, 0}, {inotify_fd_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) {
      LogError("watch poll failed", {{"root", options_.root}, {"error", std::strerror(errno)}});
      return;
    }
    if (n > 0 && (fds[0].revents & POLLIN) != 0) return;
    if (n > 0 && (fds[1].revents & POLLIN) != 0) {
      alignas(struct inotify_event) char buf[64 << 10];
      while (true) {
        ssize_t len = ::read(inotify_fd_.get(), buf, sizeof(buf));
        if (len <= 0) break;
        for (ssize_t off = 0; off < len;) {
          const auto* ev = reinterpret_cast<const struct inotify_event*>(buf + off);
          off += static_cast<ssize_t>(sizeof(struct inotify_event) + ev->len);
          if ((ev->mask & IN_Q_OVERFLOW) != 0) {
            rescan = true;
          } else if ((ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) != 0 &&
                     (ev->mask & IN_ISDIR) == 0 && ev->len > 0 && !paused_.load()) {
            AddCandidate(ev->name);
          } else if ((ev->mask & IN_IGNORED) != 0) {
            LogError("watch inbox/ disappeared", {{"root", options_.root}});
          }
        }
      }
    }
    if (options_.poll_interval.count() > 0 && std::chrono::steady_clock::now() >= next_poll) {
      rescan = true;
      next_poll = std::chrono::steady_clock::now() + options_.poll_interval;
    }
  }
}

void FolderWatcher::Impl::LogOnce(const std::string& name, const struct stat& st,
                                  const char* reason) {
  skipped_.fetch_add(1);
  if (logged_.insert({name, st.st_ino}).second) {
    LogWarn("watch left an inbox entry alone",
            {{"root", options_.root}, {"name", name}, {"reason", reason}});
  }
}

Result<std::optional<std::string>> FolderWatcher::Impl::ClaimOne(const std::string& name) {
  using Claimed = std::optional<std::string>;
  if (IsIgnoredName(name)) return Claimed();
  struct stat st;
  if (::fstatat(inbox_fd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Claimed();  // gone (or unreadable: the next scan tries again)
  }
  if (S_ISLNK(st.st_mode)) {
    LogOnce(name, st, "symbolic link");
    return Claimed();
  }
  if (!S_ISREG(st.st_mode)) {
    LogOnce(name, st, S_ISDIR(st.st_mode) ? "directory" : "not a regular file");
    return Claimed();
  }
  if (static_cast<std::uint64_t>(st.st_size) > options_.max_file_bytes) {
    QSEAL_RETURN_IF_ERROR(
        MoveUnread(name,
                   InvalidArgumentError("file is " + std::to_string(st.st_size) +
                                        " bytes, above max_file_bytes " +
                                        std::to_string(options_.max_file_bytes) + "; not read"),
                   "too_large"));
    return Claimed();
  }
  {
    Fd fd(::openat(inbox_fd_.get(), name.c_str(),
                   O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) return Claimed();
    struct stat fst;
    if (::fstat(fd.get(), &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino) {
      return Claimed();  // replaced under us; the event for the new file brings it back
    }
    // A second hard link lets whoever holds it change the bytes after the claim, or makes the
    // watcher seal and move a file that lives elsewhere (a link to a file the producer may not
    // read); a file of another user than the configured owner is not this producer's to submit.
    if (Status refused = Refusal(fst); !refused.ok()) {
      QSEAL_RETURN_IF_ERROR(MoveUnread(name, refused, RefusalLabel(fst)));
      return Claimed();
    }
    WriteState ws = ProbeWriters(fd.get());
    if (ws == WriteState::kOpenForWriting) {
      // Still being written; its IN_CLOSE_WRITE (or the next scan) brings it back.
      skipped_.fetch_add(1);
      return Claimed();
    }
    if (ws == WriteState::kUnknown && !lease_warned_.exchange(true)) {
      LogWarn(
          "watch cannot tell whether inbox files are still open for writing (no leases); "
          "producers must write under a temporary name and rename in",
          {{"root", options_.root}, {"error", std::strerror(errno)}});
    }
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    QSEAL_ASSIGN_OR_RETURN(std::string target, outbox_->FreeName(name));
    if (::renameat2(inbox_fd_.get(), name.c_str(), processing_fd_.get(), target.c_str(),
                    RENAME_NOREPLACE) == 0) {
      return Claimed(std::move(target));
    }
    if (errno == ENOENT) return Claimed();  // taken by someone else
    if (errno != EEXIST) {
      // Specific to this entry (permissions, an immutable file, ...): leave it, keep claiming.
      LogOnce(name, st, std::strerror(errno));
      return Claimed();
    }
  }
  return UnavailableError("claim " + name + ": no free name");
}

std::vector<Status> FolderWatcher::Impl::EnqueueMany(const std::vector<std::string>& names) {
  std::vector<Status> results(names.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next.fetch_add(1); i < names.size(); i = next.fetch_add(1)) {
      results[i] = EnqueueClaimed(names[i], /*reconcile=*/false);
    }
  };
  std::size_t threads = std::min(names.size(), kEnqueueThreads);
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return results;
}

Status FolderWatcher::Impl::EnqueueClaimed(const std::string& name, bool reconcile) {
  Fd fd(
      ::openat(processing_fd_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    if (errno == ENOENT) return Status::Ok();  // published meanwhile
    return ErrnoStatus("open processing/" + name, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat processing/" + name, errno);
  if (!S_ISREG(st.st_mode)) return Status::Ok();
  // A link made between the claim's check and this open is refused here too. Not on
  // reconciliation: a file found there may be accepted already, and the outbox checks its bytes
  // before it publishes it.
  if (!reconcile) {
    if (Status refused = Refusal(st); !refused.ok()) return FailClaimed(name, refused);
  }

  queue::NewDocument doc;
  doc.profile = options_.profile;
  doc.source = queue::Source::kWatch;
  doc.client = options_.root;
  doc.name = name;
  doc.media_type = MediaTypeFor(name);
  auto mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                  static_cast<std::int64_t>(st.st_mtim.tv_nsec);
  // Root is the queue's idempotency scope (client); name, inode, size and mtime identify this
  // claimed file across restarts (none of them changes by the claim's rename).
  doc.idempotency_key = "watch:v1:" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) +
                        ":" + std::to_string(mtime_ns) + ":" + name;
  doc.source_ref = options_.root + "/" + kProcessing + "/" + name;

  auto pending = queue_->Begin(doc);
  if (!pending.ok()) return pending.status();
  // The size was checked before the claim, but a writer may still append (one the lease probe
  // could not see: leases need the file's owner): the limit holds for the bytes read, and a file
  // past it is failed, its partial copy dropped with `pending`. One byte more than the limit is
  // enough to know.
  std::vector<std::uint8_t> buf(kReadChunk);
  std::uint64_t total = 0;
  while (true) {
    const std::uint64_t room = options_.max_file_bytes - total;  // total <= max here
    ssize_t n = ::read(fd.get(), buf.data(), room < buf.size() ? room + 1 : buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read processing/" + name, errno);
    }
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (total > options_.max_file_bytes) {
      pending->reset();
      return FailClaimed(
          name, InvalidArgumentError("file grew past max_file_bytes " +
                                     std::to_string(options_.max_file_bytes) +
                                     " while it was read (it was " + std::to_string(st.st_size) +
                                     " bytes when opened); not accepted"));
    }
    QSEAL_RETURN_IF_ERROR((*pending)->Append(ByteSpan(buf.data(), static_cast<std::size_t>(n))));
  }
  auto result = queue_->Commit(std::move(*pending));
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kFailedPrecondition ||
        result.status().code() == StatusCode::kInvalidArgument) {
      // Permanent (e.g. the same claimed file changed its bytes): not sealable as is.
      return FailClaimed(name, result.status());
    }
    return result.status();
  }
  if (!result->duplicate) {
    if (options_.metrics != nullptr)
      options_.metrics->DocumentAccepted("watch", options_.profile, result->size);
    return Status::Ok();
  }
  duplicates_.fetch_add(1);
  if (!reconcile) return Status::Ok();
  // An earlier run enqueued it; if the queue already finished it, publish that outcome now.
  auto record = queue_->Get(result->id);
  if (!record.ok()) return Status::Ok();
  return outbox_->PublishFinished(*record);
}

Status FolderWatcher::Impl::Refusal(const struct stat& st) const {
  if (st.st_nlink > 1) {
    return InvalidArgumentError("file has " + std::to_string(st.st_nlink) +
                                " hard links; only a file with one link is accepted; not read");
  }
  if (options_.owner_uid.has_value() && st.st_uid != *options_.owner_uid) {
    return InvalidArgumentError("file is owned by uid " + std::to_string(st.st_uid) +
                                ", not by the watch's owner uid " +
                                std::to_string(*options_.owner_uid) + "; not read");
  }
  return Status::Ok();
}

const char* FolderWatcher::Impl::RefusalLabel(const struct stat& st) {
  return st.st_nlink > 1 ? "hard_link" : "owner";
}

Status FolderWatcher::Impl::MoveUnread(const std::string& name, const Status& reason,
                                       const char* label) {
  Result<std::string> target = outbox_->MoveUnreadToFailed(inbox_fd_.get(), name, reason);
  if (!target.ok()) return target.status().WithContext("refused " + name);
  if (target->empty()) return Status::Ok();  // gone before the move
  if (options_.metrics != nullptr) options_.metrics->DocumentRejected("watch", label);
  LogWarn("watch moved a refused file to failed/ unread",
          {{"root", options_.root}, {"name", *target}, {"reason", reason.message()}});
  return Status::Ok();
}

Status FolderWatcher::Impl::FailClaimed(const std::string& name, const Status& reason) {
  queue::Record r;
  r.client = options_.root;
  r.name = name;
  LogWarn("watch could not enqueue a claimed file",
          {{"root", options_.root}, {"name", name}, {"error", reason.ToString()}});
  return outbox_->PublishFailure(r, reason);
}

FolderWatcher::FolderWatcher(WatchOptions options, queue::Queue* queue,
                             publish::FolderOutbox* outbox)
    : impl_(std::make_unique<Impl>(std::move(options), queue, outbox)) {}

FolderWatcher::~FolderWatcher() = default;

Status FolderWatcher::Start() { return impl_->Start(); }
void FolderWatcher::Stop() { impl_->Stop(); }
WatcherStats FolderWatcher::Stats() const { return impl_->Stats(); }
const std::string& FolderWatcher::root() const { return impl_->root(); }

}  // namespace qseal::ingest
