// File-system helpers shared by every component that writes durably (queue spool, folder outbox,
// audit segments): an owned descriptor, full writes, fsync of files and directories, and errno
// turned into a Status once, here. Every failure is kUnavailable (I/O: the caller decides whether
// to retry; an fsync failure must never be retried on the same file, DESIGN.md §6).
// Pure functions and a move-only handle; thread-compatible.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"

namespace qseal {

// An owned file descriptor: closed on destruction or Reset(). Move-only. Thread-compatible.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes the descriptor now (close errors are ignored: durability comes from fsync, not close).
  void Reset() noexcept;
  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// "ENOENT (No such file or directory)".
std::string ErrnoText(int err);
// kUnavailable "<what>: ENOENT (No such file or directory)".
Status ErrnoStatus(std::string_view what, int err);

// Writes all of `data`, retrying short writes and EINTR. `what` names the file in the error.
Status WriteAll(int fd, ByteSpan data, std::string_view what);
// fsync(fd); `what` names the file in the error.
Status FsyncFd(int fd, std::string_view what);
// Opens `dir` and fsyncs it, so renames and creations inside it are durable.
Status FsyncDir(const std::string& dir);
// The names in the directory open as `dir_fd` (without "." and ".."), in no particular order.
// Reads through a duplicate descriptor, rewound first, so `dir_fd` stays usable; symlinks are
// listed, never followed.
Result<std::vector<std::string>> ListDir(int dir_fd);

}  // namespace qseal
