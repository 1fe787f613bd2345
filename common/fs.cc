#include "common/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <dirent.h>

namespace qseal {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

void Fd::Reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name != nullptr ? name : "errno " + std::to_string(err)) + " (" +
         std::strerror(err) + ")";
}

Status ErrnoStatus(std::string_view what, int err) {
  return UnavailableError(std::string(what) + ": " + ErrnoText(err));
}

Status WriteAll(int fd, ByteSpan data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + std::string(what), errno);
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

Status FsyncFd(int fd, std::string_view what) {
  if (::fsync(fd) != 0) return ErrnoStatus("fsync " + std::string(what), errno);
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open directory " + dir, errno);
  return FsyncFd(fd.get(), "directory " + dir);
}

Result<std::vector<std::string>> ListDir(int dir_fd) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoStatus("duplicate a directory descriptor", errno);
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return ErrnoStatus("open a directory for listing", err);
  }
  // The duplicate shares the offset of dir_fd, which an earlier listing left at the end.
  ::rewinddir(dir);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  return names;
}

}  // namespace qseal
