#include "queue/detail/spool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>

namespace qseal::queue::detail {
namespace {

class InlineReader final : public PayloadReader {
 public:
  explicit InlineReader(std::string value) : value_(std::move(value)) {}
  Result<std::size_t> Read(std::span<std::uint8_t> buffer) override {
    std::size_t n = std::min(buffer.size(), value_.size() - pos_);
    std::memcpy(buffer.data(), value_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  Result<std::size_t> ReadAt(std::uint64_t offset, std::span<std::uint8_t> buffer) override {
    if (offset >= value_.size()) return std::size_t{0};
    std::size_t n = std::min<std::uint64_t>(buffer.size(), value_.size() - offset);
    std::memcpy(buffer.data(), value_.data() + offset, n);
    return n;
  }
  std::uint64_t size() const override { return value_.size(); }

 private:
  std::string value_;
  std::size_t pos_ = 0;
};

class SpoolReader final : public PayloadReader {
 public:
  SpoolReader(Fd fd, std::string path, std::uint64_t size)
      : fd_(std::move(fd)), path_(std::move(path)), size_(size) {}

  Result<std::size_t> Read(std::span<std::uint8_t> buffer) override {
    for (;;) {
      ssize_t n = ::read(fd_.get(), buffer.data(), buffer.size());
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return ErrnoStatus("read spool file " + path_, errno);
    }
  }
  Result<std::size_t> ReadAt(std::uint64_t offset, std::span<std::uint8_t> buffer) override {
    for (;;) {
      ssize_t n = ::pread(fd_.get(), buffer.data(), buffer.size(), static_cast<off_t>(offset));
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return ErrnoStatus("read spool file " + path_, errno);
    }
  }
  std::uint64_t size() const override { return size_; }

 private:
  Fd fd_;
  std::string path_;
  std::uint64_t size_;
};

}  // namespace

std::string SpoolPayloadPath(const std::string& spool_dir, const DocumentId& id) {
  return spool_dir + "/" + id.ToString() + ".payload";
}

PendingDocumentImpl::PendingDocumentImpl(const void* owner, NewDocument doc, DocumentId id,
                                         std::string spool_dir, std::uint64_t inline_max)
    : owner_(owner),
      doc_(std::move(doc)),
      id_(id),
      spool_dir_(std::move(spool_dir)),
      inline_max_(inline_max) {}

PendingDocumentImpl::~PendingDocumentImpl() {
  fd_.Reset();
  if (!finished_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
}

Status PendingDocumentImpl::Append(ByteSpan chunk) {
  if (!broken_.ok()) return broken_;
  if (finished_) return FailedPreconditionError("document already committed");
  if (Status s = sha_.Update(chunk); !s.ok()) return Broken(s);
  size_ += chunk.size();
  if (!fd_.valid() && buffer_.size() + chunk.size() <= inline_max_) {
    buffer_.insert(buffer_.end(), chunk.begin(), chunk.end());
    return Status::Ok();
  }
  if (!fd_.valid()) {
    tmp_path_ = spool_dir_ + "/" + id_.ToString() + ".tmp";
    fd_ = Fd(::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd_.valid()) return Broken(ErrnoStatus("create spool file " + tmp_path_, errno));
    Status s = WriteAll(fd_.get(), buffer_, tmp_path_);
    Bytes().swap(buffer_);
    if (!s.ok()) return Broken(s);
  }
  Status s = WriteAll(fd_.get(), chunk, tmp_path_);
  if (!s.ok()) return Broken(s);
  return Status::Ok();
}

Status PendingDocumentImpl::Finish() {
  if (!broken_.ok()) return broken_;
  if (finished_) return FailedPreconditionError("document already committed");
  Result<std::string> hex = sha_.FinalHex();
  if (!hex.ok()) return Broken(hex.status());
  sha256_hex_ = std::move(hex).value();
  if (fd_.valid()) {
    if (::fdatasync(fd_.get()) != 0) {
      return Broken(ErrnoStatus("fdatasync spool file " + tmp_path_, errno));
    }
    // Closed by hand, not by Fd: a close error here is reported (the bytes may not be on disk).
    if (::close(fd_.Release()) != 0) {
      return Broken(ErrnoStatus("close spool file " + tmp_path_, errno));
    }
    final_path_ = SpoolPayloadPath(spool_dir_, id_);
    if (::rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
      return Broken(ErrnoStatus("rename spool file " + tmp_path_, errno));
    }
    finished_ = true;
    QSEAL_RETURN_IF_ERROR(FsyncDir(spool_dir_));
  }
  finished_ = true;
  return Status::Ok();
}

PendingSealImpl::PendingSealImpl(const void* owner, DocumentId id, std::string spool_dir)
    : owner_(owner), id_(id), spool_dir_(std::move(spool_dir)) {
  // The nonce only has to differ between attempts at one document; 64 random bits do.
  std::random_device rd;
  std::uint64_t nonce = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(nonce));
  file_name_ = id_.ToString() + "-" + hex + ".seal";
  tmp_path_ = spool_dir_ + "/" + file_name_ + ".tmp";
}

PendingSealImpl::~PendingSealImpl() {
  fd_.Reset();
  if (keep_) return;
  ::unlink(tmp_path_.c_str());
  if (finished_) ::unlink((spool_dir_ + "/" + file_name_).c_str());
}

Status PendingSealImpl::Append(ByteSpan chunk) {
  if (!broken_.ok()) return broken_;
  if (finished_) return FailedPreconditionError("seal already finished");
  if (!fd_.valid()) {
    fd_ = Fd(::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd_.valid()) return Broken(ErrnoStatus("create seal spool file " + tmp_path_, errno));
  }
  if (Status s = WriteAll(fd_.get(), chunk, tmp_path_); !s.ok()) return Broken(s);
  size_ += chunk.size();
  return Status::Ok();
}

Status PendingSealImpl::Finish() {
  if (!broken_.ok()) return broken_;
  if (finished_) return FailedPreconditionError("seal already finished");
  if (!fd_.valid()) {  // an empty seal still gets its (empty) file
    if (Status s = Append(ByteSpan()); !s.ok()) return s;
  }
  if (::fdatasync(fd_.get()) != 0) {
    return Broken(ErrnoStatus("fdatasync seal spool file " + tmp_path_, errno));
  }
  if (::close(fd_.Release()) != 0) {
    return Broken(ErrnoStatus("close seal spool file " + tmp_path_, errno));
  }
  std::string final_path = spool_dir_ + "/" + file_name_;
  if (::rename(tmp_path_.c_str(), final_path.c_str()) != 0) {
    return Broken(ErrnoStatus("rename seal spool file " + tmp_path_, errno));
  }
  finished_ = true;
  return Status::Ok();
}

Result<std::unique_ptr<PayloadReader>> PendingSealImpl::Open() const {
  if (!finished_) return FailedPreconditionError("seal of " + id_.ToString() + " not finished");
  return OpenSealFile(spool_dir_ + "/" + file_name_, id_, size_);
}

bool ParseSealFileName(std::string_view file_name, DocumentId* id) {
  constexpr std::string_view kSuffix = ".seal";
  std::size_t dash = file_name.find('-');
  if (dash == std::string_view::npos || file_name.size() < kSuffix.size() ||
      file_name.substr(file_name.size() - kSuffix.size()) != kSuffix) {
    return false;
  }
  auto parsed = DocumentId::Parse(file_name.substr(0, dash));
  if (!parsed.ok()) return false;
  *id = *parsed;
  return true;
}

Result<std::unique_ptr<PayloadReader>> OpenSealFile(const std::string& path, const DocumentId& id,
                                                    std::uint64_t size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      return DataLossError("seal file " + path + " of document " + id.ToString() + " is missing");
    }
    return ErrnoStatus("open seal file " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != size) {
    return DataLossError("seal file " + path + " does not have the recorded size " +
                         std::to_string(size));
  }
  return std::unique_ptr<PayloadReader>(std::make_unique<SpoolReader>(std::move(fd), path, size));
}

std::unique_ptr<PayloadReader> NewInlineReader(std::string bytes) {
  return std::make_unique<InlineReader>(std::move(bytes));
}

Result<std::unique_ptr<PayloadReader>> OpenSpoolReader(const std::string& path,
                                                       const DocumentId& id, std::uint64_t size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) {
      return NotFoundError("payload of document " + id.ToString() + " was deleted");
    }
    return ErrnoStatus("open spool file " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != size) {
    return DataLossError("spool file " + path + " does not have the recorded size " +
                         std::to_string(size));
  }
  return std::unique_ptr<PayloadReader>(std::make_unique<SpoolReader>(std::move(fd), path, size));
}

}  // namespace qseal::queue::detail
