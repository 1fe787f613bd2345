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
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <optional>
#include <set>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <dirent.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/crash_point.h"
#include "common/log.h"
#include "common/mutex.h"
#include "ingest/detail/names.h"
#include "metrics/metrics.h"

namespace qseal::ingest {
namespace {

using detail::IsIgnoredName;
using detail::IsSafeName;
using detail::SuffixedName;

constexpr const char* kInbox = "inbox";
constexpr const char* kProcessing = "processing";
constexpr const char* kOutbox = "outbox";
constexpr const char* kFailed = "failed";
constexpr std::size_t kReadChunk = 256 << 10;
constexpr std::size_t kMaxClaimBatch = 64;
constexpr std::size_t kEnqueueThreads = 8;

Status ErrnoError(const std::string& what, int err) {
  return UnavailableError(what + ": " + std::strerror(err));
}

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// True when something (anything, even a dangling symlink) has this name in the folder.
bool Exists(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  return errno != ENOENT;  // be conservative: an unreadable entry counts as taken
}

bool IsRegularFile(int dir_fd, const std::string& name, struct stat* st) {
  return ::fstatat(dir_fd, name.c_str(), st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode);
}

Status FsyncFd(int fd, const std::string& what) {
  if (::fsync(fd) != 0) return ErrnoError("fsync " + what, errno);
  return Status::Ok();
}

Status WriteAll(int fd, ByteSpan data, const std::string& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write " + what, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

// True when dir/name still holds exactly the accepted bytes (size and SHA-256 as the queue
// recorded them). A claimed file can still change through a second hard link or a writer that
// opened it before the claim; publishing it then would put bytes beside the seal that it does not
// cover.
Result<bool> HoldsAcceptedBytes(int dir_fd, const std::string& name, const queue::Record& record) {
  Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open processing/" + name, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("stat processing/" + name, errno);
  if (static_cast<std::uint64_t>(st.st_size) != record.size) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return InternalError("cannot start SHA-256");
  }
  std::vector<std::uint8_t> buffer(kReadChunk);
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read processing/" + name, errno);
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(n));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) return InternalError("SHA-256 failed");
  return HexEncode(ByteSpan(digest, length)) == record.sha256_hex;
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

std::vector<std::string> ListDir(int dir_fd) {
  std::vector<std::string> names;
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return names;
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    ::close(dup_fd);
    return names;
  }
  ::rewinddir(dir);
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  return names;
}

}  // namespace

class FolderWatcher::Impl {
 public:
  Impl(WatchOptions options, queue::Queue* queue, Clock& clock)
      : options_(std::move(options)), queue_(queue), clock_(clock) {}

  ~Impl() { Stop(); }

  Status Start();
  void Stop();
  WatcherStats Stats() const;
  const std::string& root() const { return options_.root; }
  Status Publish(const queue::Record& record, ByteSpan seal, std::string_view extension);
  std::vector<Status> PublishBatch(std::span<const engine::PublishItem> items);
  Status PublishFailure(const queue::Record& record, const std::string& code,
                        const std::string& message);
  // Streams the queue's copy of the record's bytes into a new temp file in outbox/.
  Status WriteAcceptedCopy(const queue::Record& record, std::string* temp, Fd* fd);
  // Renames that copy to outbox/<out> and moves the changed original to failed/ with the reason.
  Status PublishAcceptedCopy(const queue::Record& record, const std::string& temp,
                             const std::string& out);

 private:
  // Creates and opens the folders once; the descriptors live as long as the Impl.
  Status EnsureFolders();
  void Run();
  // Scans inbox/ into the candidate list.
  void ScanInbox();
  void AddCandidate(const std::string& name);
  // Renames one inbox entry into processing/ (not yet fsynced nor enqueued) and returns its
  // claimed name; nullopt when the entry is left alone or went to failed/ (oversized).
  Result<std::optional<std::string>> ClaimOne(const std::string& name);
  // EnqueueClaimed for each name, on up to kEnqueueThreads threads; one Status per name.
  std::vector<Status> EnqueueMany(const std::vector<std::string>& names);
  // Streams processing/<name> into the queue. `reconcile`: found at Start (publish from the queue
  // record if it is already final).
  Status EnqueueClaimed(const std::string& name, bool reconcile);
  Status MoveOversized(const std::string& name, std::uint64_t size);
  // A name not used by anything in processing/, outbox/ or failed/.
  std::string ChooseFreeName(const std::string& name) const;
  Status WriteAtomic(int dir_fd, const std::string& final_name, ByteSpan data,
                     const std::string& what);
  std::string TempName();
  void LogOnce(const std::string& name, const struct stat& st, const char* reason);
  std::string ErrorJson(const std::string& code, const std::string& message,
                        const std::string& sha256, std::uint32_t attempts) const;

  const WatchOptions options_;
  queue::Queue* const queue_;
  Clock& clock_;

  Mutex folders_mu_;
  std::atomic<bool> folders_ready_{false};
  Fd inbox_fd_, processing_fd_, outbox_fd_, failed_fd_;  // set once under folders_mu_

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

  std::atomic<std::uint64_t> temp_counter_{0};
  std::atomic<std::uint64_t> claimed_{0}, reconciled_{0}, duplicates_{0}, published_{0}, failed_{0},
      skipped_{0}, scans_{0}, pending_{0};
  std::atomic<bool> paused_{false};
  std::atomic<bool> lease_warned_{false};
};

Status FolderWatcher::Impl::EnsureFolders() {
  if (folders_ready_.load(std::memory_order_acquire)) return Status::Ok();
  MutexLock lock(folders_mu_);
  if (folders_ready_.load(std::memory_order_relaxed)) return Status::Ok();
  if (options_.root.empty()) return InvalidArgumentError("watch root is empty");
  if (::mkdir(options_.root.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoError("cannot create watch root " + options_.root, errno);
  }
  Fd root(::open(options_.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError("cannot open watch root " + options_.root, errno);
  Fd* fds[] = {&inbox_fd_, &processing_fd_, &outbox_fd_, &failed_fd_};
  const char* names[] = {kInbox, kProcessing, kOutbox, kFailed};
  for (int i = 0; i < 4; ++i) {
    if (::mkdirat(root.get(), names[i], 0750) != 0 && errno != EEXIST) {
      return ErrnoError("cannot create " + options_.root + "/" + names[i], errno);
    }
    Fd fd(::openat(root.get(), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      return ErrnoError("cannot open " + options_.root + "/" + names[i] + " (a directory)", errno);
    }
    *fds[i] = std::move(fd);
  }
  QSEAL_RETURN_IF_ERROR(FsyncFd(root.get(), options_.root));
  folders_ready_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status FolderWatcher::Impl::Start() {
  if (options_.profile.empty())
    return InvalidArgumentError("watch " + options_.root + ": no profile");
  if (queue_ == nullptr) return InvalidArgumentError("watch " + options_.root + ": no queue");
  {
    MutexLock lock(run_mu_);
    if (started_) return FailedPreconditionError("watch " + options_.root + ": already started");
  }
  QSEAL_RETURN_IF_ERROR(EnsureFolders());

  // Temp files of an earlier process that died mid-write.
  const std::string own_prefix = ".qseal-" + std::to_string(::getpid()) + "-";
  for (int dir_fd : {outbox_fd_.get(), failed_fd_.get()}) {
    for (const auto& name : ListDir(dir_fd)) {
      if (name.rfind(".qseal-", 0) == 0 && EndsWith(name, ".tmp") &&
          name.rfind(own_prefix, 0) != 0) {
        (void)::unlinkat(dir_fd, name.c_str(), 0);
      }
    }
  }

  // Watch before reconciling and scanning, so nothing renamed in meanwhile is missed.
  Fd ifd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!ifd.valid()) return ErrnoError("inotify_init1", errno);
  std::string inbox_path = options_.root + "/" + kInbox;
  if (::inotify_add_watch(ifd.get(), inbox_path.c_str(),
                          IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW) < 0) {
    return ErrnoError("inotify_add_watch " + inbox_path, errno);
  }
  Fd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd.valid()) return ErrnoError("eventfd", errno);

  // Reconcile processing/: every file there was claimed by an earlier run.
  retry_.clear();
  candidates_.clear();
  candidate_set_.clear();
  batch_limit_ = 1;
  std::uint64_t found = 0;
  for (const auto& name : ListDir(processing_fd_.get())) {
    if (IsIgnoredName(name)) continue;
    struct stat st;
    if (!IsRegularFile(processing_fd_.get(), name, &st)) continue;
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
  s.published = published_.load();
  s.failed = failed_.load();
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
  std::vector<std::string> names = ListDir(inbox_fd_.get());
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

std::string FolderWatcher::Impl::ChooseFreeName(const std::string& name) const {
  for (int k = 0;; ++k) {
    std::string candidate = SuffixedName(name, k);
    if (!Exists(processing_fd_.get(), candidate) && !Exists(outbox_fd_.get(), candidate) &&
        !Exists(outbox_fd_.get(), candidate + ".p7s") &&
        !Exists(outbox_fd_.get(), candidate + ".p7m") && !Exists(failed_fd_.get(), candidate) &&
        !Exists(failed_fd_.get(), candidate + ".error.json")) {
      return candidate;
    }
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
    QSEAL_RETURN_IF_ERROR(MoveOversized(name, static_cast<std::uint64_t>(st.st_size)));
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
    std::string target = ChooseFreeName(name);
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
    return ErrnoError("open processing/" + name, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("fstat processing/" + name, errno);
  if (!S_ISREG(st.st_mode)) return Status::Ok();

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
  std::vector<std::uint8_t> buf(kReadChunk);
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read processing/" + name, errno);
    }
    if (n == 0) break;
    QSEAL_RETURN_IF_ERROR((*pending)->Append(ByteSpan(buf.data(), static_cast<std::size_t>(n))));
  }
  auto result = queue_->Commit(std::move(*pending));
  if (!result.ok()) {
    if (result.status().code() == StatusCode::kFailedPrecondition ||
        result.status().code() == StatusCode::kInvalidArgument) {
      // Permanent (e.g. the same claimed file changed its bytes): not sealable as is.
      queue::Record r;
      r.client = options_.root;
      r.name = name;
      LogWarn("watch could not enqueue a claimed file",
              {{"root", options_.root}, {"name", name}, {"error", result.status().ToString()}});
      return PublishFailure(r, std::string(StatusCodeName(result.status().code())),
                            result.status().message());
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
  if (record->state == queue::State::kSealed) {
    auto seal = queue_->GetSeal(record->id);
    if (!seal.ok()) return seal.status();
    std::string ext = record->seal_media_type == "application/pkcs7-mime" ? "p7m" : "p7s";
    return Publish(*record, *seal, ext);
  }
  if (record->state == queue::State::kFailed) {
    return PublishFailure(*record, record->error_code, record->error_message);
  }
  return Status::Ok();
}

std::string FolderWatcher::Impl::ErrorJson(const std::string& code, const std::string& message,
                                           const std::string& sha256,
                                           std::uint32_t attempts) const {
  nlohmann::json j;
  j["code"] = code.empty() ? "UNKNOWN" : code;
  j["message"] = message;
  if (sha256.empty()) {
    j["sha256"] = nullptr;
  } else {
    j["sha256"] = sha256;
  }
  j["attempts"] = attempts;
  j["failed_at"] = FormatUtc(clock_.Now());
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Status FolderWatcher::Impl::MoveOversized(const std::string& name, std::uint64_t size) {
  std::string target = ChooseFreeName(name);
  std::string json = ErrorJson("INVALID_ARGUMENT",
                               "file is " + std::to_string(size) + " bytes, above max_file_bytes " +
                                   std::to_string(options_.max_file_bytes) + "; not read",
                               "", 0);
  QSEAL_RETURN_IF_ERROR(WriteAtomic(failed_fd_.get(), target + ".error.json", AsBytes(json),
                                    "failed/" + target + ".error.json"));
  if (::renameat2(inbox_fd_.get(), name.c_str(), failed_fd_.get(), target.c_str(),
                  RENAME_NOREPLACE) != 0) {
    int err = errno;
    (void)::unlinkat(failed_fd_.get(), (target + ".error.json").c_str(), 0);
    if (err == ENOENT) return Status::Ok();
    return ErrnoError("move oversized " + name + " to failed/", err);
  }
  QSEAL_RETURN_IF_ERROR(FsyncFd(failed_fd_.get(), "failed/"));
  failed_.fetch_add(1);
  if (options_.metrics != nullptr) options_.metrics->DocumentRejected("watch", "too_large");
  LogWarn("watch moved an oversized file to failed/",
          {{"root", options_.root}, {"name", target}, {"bytes", size}});
  return Status::Ok();
}

std::string FolderWatcher::Impl::TempName() {
  return ".qseal-" + std::to_string(::getpid()) + "-" + std::to_string(temp_counter_.fetch_add(1)) +
         ".tmp";
}

Status FolderWatcher::Impl::WriteAtomic(int dir_fd, const std::string& final_name, ByteSpan data,
                                        const std::string& what) {
  std::string temp = TempName();
  Fd fd(::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640));
  if (!fd.valid()) return ErrnoError("create temp file for " + what, errno);
  Status s = WriteAll(fd.get(), data, what);
  if (s.ok()) s = FsyncFd(fd.get(), what);
  fd.Reset();
  if (s.ok()) QSEAL_CRASH_POINT("watch.written_before_rename");
  if (s.ok() && ::renameat(dir_fd, temp.c_str(), dir_fd, final_name.c_str()) != 0) {
    s = ErrnoError("rename " + what, errno);
  }
  if (!s.ok()) (void)::unlinkat(dir_fd, temp.c_str(), 0);
  return s;
}

Status FolderWatcher::Impl::Publish(const queue::Record& record, ByteSpan seal,
                                    std::string_view extension) {
  engine::PublishItem item{&record, seal, extension};
  return PublishBatch(std::span<const engine::PublishItem>(&item, 1)).front();
}

// The seals of a batch share their syncs: every seal is written to a temp file first (writeback
// started at once), then each is fsynced (mostly finding its data already on disk and its journal
// transaction already committed), renamed into outbox/ and its original moved beside it; one
// fsync of outbox/ and one of processing/ then make every rename of the batch durable. The order
// per document is the one of a single Publish: seal durable, seal renamed, original moved,
// directories synced, and only then does the engine commit the queue.
std::vector<Status> FolderWatcher::Impl::PublishBatch(std::span<const engine::PublishItem> items) {
  std::vector<Status> result(items.size(), Status::Ok());
  struct Pending {
    std::size_t index;
    bool in_processing;
    std::string temp;
    Fd fd;
    // Set when processing/<name> no longer holds the accepted bytes: a temp file in outbox/ with
    // the queue's copy, published in its place.
    std::string accepted_temp;
    Fd accepted_fd;
  };
  std::vector<Pending> pending;
  Status folders = EnsureFolders();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const queue::Record& record = *items[i].record;
    std::string_view extension = items[i].extension;
    if (!folders.ok()) {
      result[i] = folders;
    } else if (record.client != options_.root) {
      result[i] = InvalidArgumentError("record " + record.id.ToString() +
                                       " is not from watch root " + options_.root);
    } else if (extension != "p7s" && extension != "p7m") {
      result[i] = InvalidArgumentError("unknown seal extension \"" + std::string(extension) + "\"");
    } else if (!IsSafeName(record.name)) {
      result[i] = InvalidArgumentError("record " + record.id.ToString() + " has an unusable name");
    }
    if (!result[i].ok()) continue;
    const std::string& name = record.name;
    struct stat st;
    bool in_processing = IsRegularFile(processing_fd_.get(), name, &st);
    if (!in_processing) {
      if (Exists(outbox_fd_.get(), name + "." + std::string(extension))) continue;  // published
      LogWarn("watch publishing a seal whose original is no longer in processing/",
              {{"root", options_.root}, {"name", name}, {"id", record.id.ToString()}});
    }
    std::string what = "seal of " + name;
    Pending p{i, in_processing, TempName(), Fd(), "", Fd()};
    if (in_processing) {
      Result<bool> same = HoldsAcceptedBytes(processing_fd_.get(), name, record);
      if (!same.ok()) {
        result[i] = same.status();
        continue;
      }
      if (!*same) {
        Status copied = WriteAcceptedCopy(record, &p.accepted_temp, &p.accepted_fd);
        if (!copied.ok()) {
          result[i] = copied;
          continue;
        }
      }
    }
    p.fd = Fd(::openat(outbox_fd_.get(), p.temp.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640));
    if (!p.fd.valid()) {
      result[i] = ErrnoError("create temp file for " + what, errno);
      continue;
    }
    Status s = WriteAll(p.fd.get(), items[i].seal, what);
    // Start writeback now so the fsyncs below overlap (a hint; fsync is what makes it durable).
    if (s.ok()) (void)::sync_file_range(p.fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
    if (!s.ok()) {
      p.fd.Reset();
      (void)::unlinkat(outbox_fd_.get(), p.temp.c_str(), 0);
      result[i] = s;
      continue;
    }
    pending.push_back(std::move(p));
  }
  bool renamed_any = false;
  for (Pending& p : pending) {
    const queue::Record& record = *items[p.index].record;
    const std::string& name = record.name;
    std::string ext(items[p.index].extension);
    Status s = FsyncFd(p.fd.get(), "seal of " + name);
    p.fd.Reset();
    if (s.ok() && p.accepted_fd.valid())
      s = FsyncFd(p.accepted_fd.get(), "accepted copy of " + name);
    p.accepted_fd.Reset();
    if (s.ok()) QSEAL_CRASH_POINT("watch.written_before_rename");
    // A foreign file in the way of the original: move the pair to a free name instead.
    std::string out = name;
    if (s.ok() && p.in_processing && Exists(outbox_fd_.get(), name)) out = ChooseFreeName(name);
    // The seal first, so the original appearing in outbox/ means its seal is there. A seal left
    // by an earlier attempt for this document (same claimed name) is replaced.
    if (s.ok() && ::renameat(outbox_fd_.get(), p.temp.c_str(), outbox_fd_.get(),
                             (out + "." + ext).c_str()) != 0) {
      s = ErrnoError("rename outbox/" + out + "." + ext, errno);
    }
    if (!s.ok()) {
      (void)::unlinkat(outbox_fd_.get(), p.temp.c_str(), 0);
      if (!p.accepted_temp.empty()) (void)::unlinkat(outbox_fd_.get(), p.accepted_temp.c_str(), 0);
      result[p.index] = s;
      continue;
    }
    renamed_any = true;
    if (!p.accepted_temp.empty()) {
      result[p.index] = PublishAcceptedCopy(record, p.accepted_temp, out);
      continue;
    }
    if (p.in_processing &&
        ::renameat2(processing_fd_.get(), name.c_str(), outbox_fd_.get(), out.c_str(),
                    RENAME_NOREPLACE) != 0 &&
        errno != ENOENT) {
      result[p.index] = ErrnoError("move processing/" + name + " to outbox/" + out, errno);
    }
  }
  if (renamed_any) {
    Status synced = FsyncFd(outbox_fd_.get(), "outbox/");
    if (synced.ok()) synced = FsyncFd(processing_fd_.get(), "processing/");
    if (!synced.ok()) {
      for (const Pending& p : pending) {
        if (result[p.index].ok()) result[p.index] = synced;
      }
    }
    QSEAL_CRASH_POINT("watch.renamed_before_commit");
  }
  for (const Pending& p : pending) {
    if (result[p.index].ok()) published_.fetch_add(1);
  }
  return result;
}

Status FolderWatcher::Impl::WriteAcceptedCopy(const queue::Record& record, std::string* temp,
                                              Fd* fd) {
  Result<std::unique_ptr<queue::PayloadReader>> reader = queue_->OpenPayload(record.id);
  if (!reader.ok()) return reader.status();
  *temp = TempName();
  *fd = Fd(::openat(outbox_fd_.get(), temp->c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640));
  if (!fd->valid()) {
    int err = errno;
    temp->clear();
    return ErrnoError("create temp file for the accepted copy of " + record.name, err);
  }
  std::vector<std::uint8_t> buffer(kReadChunk);
  Status s = Status::Ok();
  for (;;) {
    Result<std::size_t> n = (*reader)->Read(buffer);
    if (!n.ok()) s = n.status();
    if (!n.ok() || *n == 0) break;
    s = WriteAll(fd->get(), ByteSpan(buffer.data(), *n), "accepted copy of " + record.name);
    if (!s.ok()) break;
  }
  if (s.ok()) (void)::sync_file_range(fd->get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  if (!s.ok()) {
    fd->Reset();
    (void)::unlinkat(outbox_fd_.get(), temp->c_str(), 0);
    temp->clear();
  }
  return s;
}

Status FolderWatcher::Impl::PublishAcceptedCopy(const queue::Record& record,
                                                const std::string& temp, const std::string& out) {
  const std::string& name = record.name;
  if (::renameat(outbox_fd_.get(), temp.c_str(), outbox_fd_.get(), out.c_str()) != 0) {
    int err = errno;
    (void)::unlinkat(outbox_fd_.get(), temp.c_str(), 0);
    return ErrnoError("rename the accepted copy to outbox/" + out, err);
  }
  std::string changed = Exists(failed_fd_.get(), name) ? ChooseFreeName(name) : name;
  std::string json = ErrorJson("FAILED_PRECONDITION",
                               "the file changed after it was accepted; outbox/" + out +
                                   " holds the accepted bytes and their seal; this changed "
                                   "version was not sealed",
                               record.sha256_hex, record.attempts);
  QSEAL_RETURN_IF_ERROR(WriteAtomic(failed_fd_.get(), changed + ".error.json", AsBytes(json),
                                    "failed/" + changed + ".error.json"));
  if (::renameat2(processing_fd_.get(), name.c_str(), failed_fd_.get(), changed.c_str(),
                  RENAME_NOREPLACE) != 0 &&
      errno != ENOENT) {
    return ErrnoError("move the changed processing/" + name + " to failed/" + changed, errno);
  }
  QSEAL_RETURN_IF_ERROR(FsyncFd(failed_fd_.get(), "failed/"));
  LogWarn("watch published the accepted bytes of a file that changed after acceptance",
          {{"root", options_.root}, {"name", out}, {"changed_copy", "failed/" + changed}});
  return Status::Ok();
}

Status FolderWatcher::Impl::PublishFailure(const queue::Record& record, const std::string& code,
                                           const std::string& message) {
  if (record.client != options_.root) {
    return InvalidArgumentError("record " + record.id.ToString() + " is not from watch root " +
                                options_.root);
  }
  if (!IsSafeName(record.name)) {
    return InvalidArgumentError("record " + record.id.ToString() + " has an unusable name");
  }
  QSEAL_RETURN_IF_ERROR(EnsureFolders());
  const std::string& name = record.name;
  struct stat st;
  bool in_processing = IsRegularFile(processing_fd_.get(), name, &st);
  if (!in_processing && Exists(failed_fd_.get(), name + ".error.json")) return Status::Ok();
  std::string out = name;
  if (in_processing && Exists(failed_fd_.get(), name)) out = ChooseFreeName(name);
  std::string json = ErrorJson(code, message, record.sha256_hex, record.attempts);
  QSEAL_RETURN_IF_ERROR(WriteAtomic(failed_fd_.get(), out + ".error.json", AsBytes(json),
                                    "failed/" + out + ".error.json"));
  if (in_processing) {
    if (::renameat2(processing_fd_.get(), name.c_str(), failed_fd_.get(), out.c_str(),
                    RENAME_NOREPLACE) != 0 &&
        errno != ENOENT) {
      return ErrnoError("move processing/" + name + " to failed/" + out, errno);
    }
  }
  QSEAL_RETURN_IF_ERROR(FsyncFd(failed_fd_.get(), "failed/"));
  QSEAL_RETURN_IF_ERROR(FsyncFd(processing_fd_.get(), "processing/"));
  failed_.fetch_add(1);
  LogWarn("watch moved a document to failed/",
          {{"root", options_.root}, {"name", out}, {"code", code}, {"message", message}});
  return Status::Ok();
}

FolderWatcher::FolderWatcher(WatchOptions options, queue::Queue* queue, Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(options), queue, clock)) {}

FolderWatcher::~FolderWatcher() = default;

Status FolderWatcher::Start() { return impl_->Start(); }
void FolderWatcher::Stop() { impl_->Stop(); }
WatcherStats FolderWatcher::Stats() const { return impl_->Stats(); }
const std::string& FolderWatcher::root() const { return impl_->root(); }

Status FolderWatcher::Publish(const queue::Record& record, ByteSpan seal,
                              std::string_view extension) {
  return impl_->Publish(record, seal, extension);
}

std::vector<Status> FolderWatcher::PublishBatch(std::span<const engine::PublishItem> items) {
  return impl_->PublishBatch(items);
}

Status FolderWatcher::PublishFailure(const queue::Record& record, const Status& error) {
  return impl_->PublishFailure(record, std::string(StatusCodeName(error.code())), error.message());
}

}  // namespace qseal::ingest
