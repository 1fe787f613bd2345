#include "common/secret.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <openssl/crypto.h>

#include "common/fs.h"

namespace qseal {
namespace {

std::size_t PageSize() {
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

// The size a secret read as `data, size` keeps: without one trailing "\n" or "\r\n".
std::size_t WithoutNewline(const char* data, std::size_t size) {
  if (size > 0 && data[size - 1] == '\n') --size;
  if (size > 0 && data[size - 1] == '\r') --size;
  return size;
}

}  // namespace

Secret::Secret(Secret&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      locked_(std::exchange(other.locked_, false)) {}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    locked_ = std::exchange(other.locked_, false);
  }
  return *this;
}

Result<Secret> Secret::Of(const char* data, std::size_t size) {
  if (size > kMaxBytes) {
    return InvalidArgumentError("secret longer than " + std::to_string(kMaxBytes) + " bytes");
  }
  Secret s;
  if (size == 0) return s;
  // A page of its own, so that locking it and excluding it from dumps touches nothing else.
  void* page =
      ::mmap(nullptr, PageSize(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return ResourceExhaustedError("mmap for a secret: " + ErrnoText(errno));
  (void)::madvise(page, PageSize(), MADV_DONTDUMP);
  // Not inherited by a forked child (which could otherwise dump or swap it).
  (void)::madvise(page, PageSize(), MADV_WIPEONFORK);
  s.locked_ = ::mlock(page, PageSize()) == 0;
  s.data_ = static_cast<char*>(page);
  std::memcpy(s.data_, data, size);
  s.size_ = size;
  return s;
}

bool Secret::Equals(const char* other, std::size_t size) const {
  if (size != size_) return false;
  return size == 0 || CRYPTO_memcmp(data_, other, size) == 0;
}

void Secret::Wipe() noexcept {
  if (data_ == nullptr) return;
  OPENSSL_cleanse(data_, PageSize());
  if (locked_) (void)::munlock(data_, PageSize());
  (void)::munmap(data_, PageSize());
  data_ = nullptr;
  size_ = 0;
  locked_ = false;
}

namespace {

// kInvalidArgument naming the mode when `mode` gives group or other any permission.
Status CheckMode(mode_t mode, const std::string& what) {
  if ((mode & 077) == 0) return Status::Ok();
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return InvalidArgumentError(what + " is accessible to group or other (mode " + text +
                              "); chmod 600 it");
}

// Reads at most `capacity` bytes of `fd` into `buf`; the count, or the read error.
Result<std::size_t> ReadUpTo(int fd, char* buf, std::size_t capacity, const std::string& path) {
  std::size_t size = 0;
  while (size < capacity) {
    ssize_t n = ::read(fd, buf + size, capacity - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return InvalidArgumentError("cannot read " + path + ": " + ErrnoText(errno));
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  return size;
}

}  // namespace

Status CheckSecretFileMode(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return InvalidArgumentError(what + " " + path + ": " + ErrnoText(errno));
  }
  return CheckMode(st.st_mode, what + " " + path);
}

Result<Secret> ReadSecretFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return InvalidArgumentError("cannot read " + path + ": " + ErrnoText(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return InvalidArgumentError(path + ": not a regular file");
  }
  // Checked on the open file, so a file swapped after a path check is not read either.
  QSEAL_RETURN_IF_ERROR(CheckMode(st.st_mode, path));
  // Room for a full secret and its "\r\n", plus one byte to tell a longer file. The stack buffer
  // is wiped on every path out.
  char buf[Secret::kMaxBytes + 3];
  Result<std::size_t> size = ReadUpTo(fd.get(), buf, sizeof(buf), path);
  Result<Secret> out = size.ok() ? Result<Secret>(InvalidArgumentError(path + ": too long"))
                                 : Result<Secret>(size.status());
  if (size.ok() && WithoutNewline(buf, *size) <= Secret::kMaxBytes) {
    out = Secret::Of(buf, WithoutNewline(buf, *size));
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  return out;
}

Result<Secret> ReadSecretEnv(const std::string& name) {
  char* value = std::getenv(name.c_str());
  if (value == nullptr) return InvalidArgumentError("environment variable " + name + " unset");
  const std::size_t size = std::strlen(value);
  Result<Secret> out = Secret::Of(value, size);
  // Overwrite the value where it lives (for a variable from execve, the block /proc/PID/environ
  // shows), then drop the variable.
  OPENSSL_cleanse(value, size);
  ::unsetenv(name.c_str());
  return out;
}

Status DisableCoreDumps() {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return InternalError("prctl(PR_SET_DUMPABLE, 0): " + ErrnoText(errno));
  }
  struct rlimit none {};
  if (::setrlimit(RLIMIT_CORE, &none) != 0) {
    return InternalError("setrlimit(RLIMIT_CORE, 0): " + ErrnoText(errno));
  }
  return Status::Ok();
}

}  // namespace qseal
