#include "publish/folder_outbox.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <utility>

#include <limits.h>
#include <nlohmann/json.hpp>

#include "common/crash_point.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/sha256.h"
#include "publish/folder_names.h"

namespace qseal::publish {
namespace {

constexpr const char* kProcessing = "processing";
constexpr const char* kOutbox = "outbox";
constexpr const char* kFailed = "failed";
constexpr const char* kTempPrefix = ".qseal-";
constexpr std::size_t kReadChunk = 256 << 10;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// True when something (anything, even a dangling symlink) has this name in the folder.
bool Exists(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return true;
  return errno != ENOENT;  // be conservative: an unreadable entry counts as taken
}

bool IsRegularFile(int dir_fd, const std::string& name) {
  struct stat st;
  return ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

Fd CreateTemp(int dir_fd, const std::string& temp) {
  return Fd(
      ::openat(dir_fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640));
}

// True when dir/name still holds exactly the accepted bytes (size and SHA-256 as the queue
// recorded them). A claimed file can still change through a second hard link or a writer that
// opened it before the claim; publishing it then would put bytes beside the seal that it does not
// cover.
Result<bool> HoldsAcceptedBytes(int dir_fd, const std::string& name, const queue::Record& record) {
  Fd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open processing/" + name, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat processing/" + name, errno);
  if (static_cast<std::uint64_t>(st.st_size) != record.size) return false;
  Hasher hasher(DigestAlgorithm::kSha256);
  std::vector<std::uint8_t> buffer(kReadChunk);
  // A file still growing is not the accepted one: stop at the first byte past the accepted size
  // instead of reading whatever a writer keeps appending.
  std::uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read processing/" + name, errno);
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (total > record.size) return false;
    QSEAL_RETURN_IF_ERROR(hasher.Update(ByteSpan(buffer.data(), static_cast<std::size_t>(n))));
  }
  QSEAL_ASSIGN_OR_RETURN(std::string hex, hasher.FinalHex());
  return hex == record.sha256_hex;
}

}  // namespace

class FolderOutbox::Impl {
 public:
  Impl(std::string root, queue::Queue* queue, const SealNamer* namer, Clock& clock)
      : root_(std::move(root)), queue_(queue), namer_(namer), clock_(clock) {}

  Status Open();
  const std::string& root() const { return root_; }
  FolderOutboxStats Stats() const { return {published_.load(), failed_.load()}; }
  std::vector<Status> PublishBatch(std::span<const PublishItem> items);
  Status PublishFailure(const queue::Record& record, const std::string& code,
                        const std::string& message);
  Status PublishFinished(const queue::Record& record);
  Result<std::string> FreeName(const std::string& name) const;
  Result<std::string> MoveUnreadToFailed(int from_dir_fd, const std::string& name,
                                         const Status& reason);

 private:
  // Creates and opens the folders once; the descriptors live as long as the Impl.
  Status EnsureFolders();
  // Checks what PublishBatch and PublishFailure refuse (kInvalidArgument).
  Status CheckRecord(const queue::Record& record) const;
  // The name of the seal of `record`'s document published as `name` (its profile's format):
  // kInvalidArgument for a profile without a format or a seal name that could leave outbox/,
  // be taken for a temp file or replace the original.
  Result<std::string> SealName(const queue::Record& record, const std::string& name) const;
  // A name not used by anything in processing/, outbox/ or failed/. Folders must be open.
  std::string ChooseFreeName(const std::string& name) const;
  Status WriteAtomic(int dir_fd, const std::string& final_name, ByteSpan data,
                     const std::string& what);
  std::string TempName();
  std::string ErrorJson(const std::string& code, const std::string& message,
                        const std::string& sha256, std::uint32_t attempts) const;
  // Streams the queue's copy of the record's bytes into a new temp file in outbox/.
  Status WriteAcceptedCopy(const queue::Record& record, std::string* temp, Fd* fd);
  // Renames that copy to outbox/<out> and moves the changed original to failed/ with the reason.
  Status PublishAcceptedCopy(const queue::Record& record, const std::string& temp,
                             const std::string& out);

  const std::string root_;
  queue::Queue* const queue_;
  const SealNamer* const namer_;
  Clock& clock_;

  Mutex folders_mu_;
  std::atomic<bool> folders_ready_{false};
  Fd processing_fd_, outbox_fd_, failed_fd_;  // set once under folders_mu_

  std::atomic<std::uint64_t> temp_counter_{0};
  std::atomic<std::uint64_t> published_{0}, failed_{0};
};

Status FolderOutbox::Impl::EnsureFolders() {
  if (folders_ready_.load(std::memory_order_acquire)) return Status::Ok();
  MutexLock lock(folders_mu_);
  if (folders_ready_.load(std::memory_order_relaxed)) return Status::Ok();
  if (root_.empty()) return InvalidArgumentError("watch root is empty");
  if (::mkdir(root_.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoStatus("cannot create watch root " + root_, errno);
  }
  Fd root(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoStatus("cannot open watch root " + root_, errno);
  Fd* fds[] = {&processing_fd_, &outbox_fd_, &failed_fd_};
  const char* names[] = {kProcessing, kOutbox, kFailed};
  for (int i = 0; i < 3; ++i) {
    if (::mkdirat(root.get(), names[i], 0750) != 0 && errno != EEXIST) {
      return ErrnoStatus("cannot create " + root_ + "/" + names[i], errno);
    }
    Fd fd(::openat(root.get(), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      return ErrnoStatus("cannot open " + root_ + "/" + names[i] + " (a directory)", errno);
    }
    *fds[i] = std::move(fd);
  }
  QSEAL_RETURN_IF_ERROR(FsyncFd(root.get(), root_));
  folders_ready_.store(true, std::memory_order_release);
  return Status::Ok();
}

Status FolderOutbox::Impl::Open() {
  QSEAL_RETURN_IF_ERROR(EnsureFolders());
  // Temp files of an earlier process that died mid-write (this process's own may be in use).
  const std::string own_prefix = kTempPrefix + std::to_string(::getpid()) + "-";
  for (int dir_fd : {outbox_fd_.get(), failed_fd_.get()}) {
    for (const auto& name : ListDir(dir_fd).value_or(std::vector<std::string>())) {
      if (name.rfind(kTempPrefix, 0) == 0 && EndsWith(name, ".tmp") &&
          name.rfind(own_prefix, 0) != 0) {
        (void)::unlinkat(dir_fd, name.c_str(), 0);
      }
    }
  }
  return Status::Ok();
}

Status FolderOutbox::Impl::CheckRecord(const queue::Record& record) const {
  if (record.client != root_) {
    return InvalidArgumentError("record " + record.id.ToString() + " is not from watch root " +
                                root_);
  }
  if (!IsSafeName(record.name)) {
    return InvalidArgumentError("record " + record.id.ToString() + " has an unusable name");
  }
  return Status::Ok();
}

Result<std::string> FolderOutbox::Impl::SealName(const queue::Record& record,
                                                 const std::string& name) const {
  QSEAL_ASSIGN_OR_RETURN(std::string seal, namer_->SealName(record, name));
  // Format::OutputName promises a name, never a path; checked anyway, since a wrong one would
  // escape outbox/, hide as a temp file or replace the original.
  if (seal.size() > NAME_MAX || seal.find('/') != std::string::npos ||
      seal.find('\0') != std::string::npos || IsIgnoredName(seal) || seal == name) {
    return InvalidArgumentError("record " + record.id.ToString() + ": unusable seal name \"" +
                                seal + "\"");
  }
  return seal;
}

std::string FolderOutbox::Impl::ChooseFreeName(const std::string& name) const {
  for (int k = 0;; ++k) {
    std::string candidate = SuffixedName(name, k);
    if (Exists(processing_fd_.get(), candidate) || Exists(outbox_fd_.get(), candidate) ||
        Exists(failed_fd_.get(), candidate) ||
        Exists(failed_fd_.get(), candidate + ".error.json")) {
      continue;
    }
    // Nor may any seal a configured format would give it be there.
    std::vector<std::string> seals = namer_->SealNames(candidate);
    if (std::none_of(seals.begin(), seals.end(),
                     [&](const std::string& s) { return Exists(outbox_fd_.get(), s); })) {
      return candidate;
    }
  }
}

Result<std::string> FolderOutbox::Impl::FreeName(const std::string& name) const {
  if (!folders_ready_.load(std::memory_order_acquire)) {
    return FailedPreconditionError("outbox " + root_ + " is not open");
  }
  return ChooseFreeName(name);
}

std::string FolderOutbox::Impl::TempName() {
  return kTempPrefix + std::to_string(::getpid()) + "-" +
         std::to_string(temp_counter_.fetch_add(1)) + ".tmp";
}

std::string FolderOutbox::Impl::ErrorJson(const std::string& code, const std::string& message,
                                          const std::string& sha256, std::uint32_t attempts) const {
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

Status FolderOutbox::Impl::WriteAtomic(int dir_fd, const std::string& final_name, ByteSpan data,
                                       const std::string& what) {
  std::string temp = TempName();
  Fd fd = CreateTemp(dir_fd, temp);
  if (!fd.valid()) return ErrnoStatus("create temp file for " + what, errno);
  Status s = WriteAll(fd.get(), data, what);
  if (s.ok()) s = FsyncFd(fd.get(), what);
  fd.Reset();
  if (s.ok()) QSEAL_CRASH_POINT("watch.written_before_rename");
  if (s.ok() && ::renameat(dir_fd, temp.c_str(), dir_fd, final_name.c_str()) != 0) {
    s = ErrnoStatus("rename " + what, errno);
  }
  if (!s.ok()) (void)::unlinkat(dir_fd, temp.c_str(), 0);
  return s;
}

// The seals of a batch share their syncs: every seal is written to a temp file first (writeback
// started at once), then each is fsynced (mostly finding its data already on disk and its journal
// transaction already committed), renamed into outbox/ and its original moved beside it; one
// fsync of outbox/ and one of processing/ then make every rename of the batch durable. The order
// per document is the one of a single Publish: seal durable, seal renamed, original moved,
// directories synced, and only then does the engine commit the queue.
std::vector<Status> FolderOutbox::Impl::PublishBatch(std::span<const PublishItem> items) {
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
    result[i] = folders.ok() ? CheckRecord(record) : folders;
    if (!result[i].ok()) continue;
    const std::string& name = record.name;
    Result<std::string> seal_name = SealName(record, name);
    if (!seal_name.ok()) {
      result[i] = seal_name.status();
      continue;
    }
    bool in_processing = IsRegularFile(processing_fd_.get(), name);
    if (!in_processing) {
      if (Exists(outbox_fd_.get(), *seal_name)) continue;  // published
      LogWarn("watch publishing a seal whose original is no longer in processing/",
              {{"root", root_}, {"name", name}, {"id", record.id.ToString()}});
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
    p.fd = CreateTemp(outbox_fd_.get(), p.temp);
    if (!p.fd.valid()) {
      result[i] = ErrnoStatus("create temp file for " + what, errno);
      continue;
    }
    Status s =
        StreamSeal(items[i], [&](ByteSpan piece) { return WriteAll(p.fd.get(), piece, what); });
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
    Status s = FsyncFd(p.fd.get(), "seal of " + name);
    p.fd.Reset();
    if (s.ok() && p.accepted_fd.valid())
      s = FsyncFd(p.accepted_fd.get(), "accepted copy of " + name);
    p.accepted_fd.Reset();
    if (s.ok()) QSEAL_CRASH_POINT("watch.written_before_rename");
    // A foreign file in the way of the original: move the pair to a free name instead.
    std::string out = name;
    if (s.ok() && p.in_processing && Exists(outbox_fd_.get(), name)) out = ChooseFreeName(name);
    std::string seal_name;
    if (s.ok()) {
      Result<std::string> n = SealName(record, out);
      if (n.ok()) seal_name = std::move(*n);
      s = n.status();
    }
    // The seal first, so the original appearing in outbox/ means its seal is there. A seal left
    // by an earlier attempt for this document (same claimed name) is replaced.
    if (s.ok() &&
        ::renameat(outbox_fd_.get(), p.temp.c_str(), outbox_fd_.get(), seal_name.c_str()) != 0) {
      s = ErrnoStatus("rename outbox/" + seal_name, errno);
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
      result[p.index] = ErrnoStatus("move processing/" + name + " to outbox/" + out, errno);
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

Status FolderOutbox::Impl::WriteAcceptedCopy(const queue::Record& record, std::string* temp,
                                             Fd* fd) {
  Result<std::unique_ptr<queue::PayloadReader>> reader = queue_->OpenPayload(record.id);
  if (!reader.ok()) return reader.status();
  *temp = TempName();
  *fd = CreateTemp(outbox_fd_.get(), *temp);
  if (!fd->valid()) {
    int err = errno;
    temp->clear();
    return ErrnoStatus("create temp file for the accepted copy of " + record.name, err);
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

Status FolderOutbox::Impl::PublishAcceptedCopy(const queue::Record& record, const std::string& temp,
                                               const std::string& out) {
  const std::string& name = record.name;
  if (::renameat(outbox_fd_.get(), temp.c_str(), outbox_fd_.get(), out.c_str()) != 0) {
    int err = errno;
    (void)::unlinkat(outbox_fd_.get(), temp.c_str(), 0);
    return ErrnoStatus("rename the accepted copy to outbox/" + out, err);
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
    return ErrnoStatus("move the changed processing/" + name + " to failed/" + changed, errno);
  }
  QSEAL_RETURN_IF_ERROR(FsyncFd(failed_fd_.get(), "failed/"));
  LogWarn("watch published the accepted bytes of a file that changed after acceptance",
          {{"root", root_}, {"name", out}, {"changed_copy", "failed/" + changed}});
  return Status::Ok();
}

Status FolderOutbox::Impl::PublishFailure(const queue::Record& record, const std::string& code,
                                          const std::string& message) {
  QSEAL_RETURN_IF_ERROR(CheckRecord(record));
  QSEAL_RETURN_IF_ERROR(EnsureFolders());
  const std::string& name = record.name;
  bool in_processing = IsRegularFile(processing_fd_.get(), name);
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
      return ErrnoStatus("move processing/" + name + " to failed/" + out, errno);
    }
  }
  QSEAL_RETURN_IF_ERROR(FsyncFd(failed_fd_.get(), "failed/"));
  QSEAL_RETURN_IF_ERROR(FsyncFd(processing_fd_.get(), "processing/"));
  failed_.fetch_add(1);
  LogWarn("watch moved a document to failed/",
          {{"root", root_}, {"name", out}, {"code", code}, {"message", message}});
  return Status::Ok();
}

Status FolderOutbox::Impl::PublishFinished(const queue::Record& record) {
  if (record.state == queue::State::kSealed) {
    Result<Bytes> seal = queue_->GetSeal(record.id);
    if (!seal.ok()) return seal.status();
    PublishItem item{&record, *seal};
    return PublishBatch(std::span<const PublishItem>(&item, 1)).front();
  }
  if (record.state == queue::State::kFailed) {
    return PublishFailure(record, record.error_code, record.error_message);
  }
  return Status::Ok();
}

Result<std::string> FolderOutbox::Impl::MoveUnreadToFailed(int from_dir_fd, const std::string& name,
                                                           const Status& reason) {
  QSEAL_ASSIGN_OR_RETURN(std::string target, FreeName(name));
  std::string json = ErrorJson(std::string(StatusCodeName(reason.code())), reason.message(), "", 0);
  QSEAL_RETURN_IF_ERROR(WriteAtomic(failed_fd_.get(), target + ".error.json", AsBytes(json),
                                    "failed/" + target + ".error.json"));
  if (::renameat2(from_dir_fd, name.c_str(), failed_fd_.get(), target.c_str(), RENAME_NOREPLACE) !=
      0) {
    int err = errno;
    (void)::unlinkat(failed_fd_.get(), (target + ".error.json").c_str(), 0);
    if (err == ENOENT) return std::string();
    return ErrnoStatus("move " + name + " to failed/", err);
  }
  QSEAL_RETURN_IF_ERROR(FsyncFd(failed_fd_.get(), "failed/"));
  failed_.fetch_add(1);
  return target;
}

FolderOutbox::FolderOutbox(std::string root, queue::Queue* queue, const SealNamer* namer,
                           Clock& clock)
    : impl_(std::make_unique<Impl>(std::move(root), queue, namer, clock)) {}

FolderOutbox::~FolderOutbox() = default;

Status FolderOutbox::Open() { return impl_->Open(); }
const std::string& FolderOutbox::root() const { return impl_->root(); }
FolderOutboxStats FolderOutbox::Stats() const { return impl_->Stats(); }

Status FolderOutbox::Publish(const queue::Record& record, ByteSpan seal) {
  PublishItem item{&record, seal};
  return impl_->PublishBatch(std::span<const PublishItem>(&item, 1)).front();
}

std::vector<Status> FolderOutbox::PublishBatch(std::span<const PublishItem> items) {
  return impl_->PublishBatch(items);
}

Status FolderOutbox::PublishFailure(const queue::Record& record, const Status& error) {
  return impl_->PublishFailure(record, std::string(StatusCodeName(error.code())), error.message());
}

Status FolderOutbox::PublishFinished(const queue::Record& record) {
  return impl_->PublishFinished(record);
}

Result<std::string> FolderOutbox::FreeName(const std::string& name) const {
  return impl_->FreeName(name);
}

Result<std::string> FolderOutbox::MoveUnreadToFailed(int from_dir_fd, const std::string& name,
                                                     const Status& reason) {
  return impl_->MoveUnreadToFailed(from_dir_fd, name, reason);
}

}  // namespace qseal::publish
