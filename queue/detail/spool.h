// A document's bytes on their way in and out of the queue: the pending document writer (memory up
// to the inline limit, then a spool file made durable before the record referencing it is
// committed) and the two payload readers (inline bytes from RocksDB, a spool file).
// Spool files live in <queue>/spool: <ID>.tmp while streaming, <ID>.payload once committed; a
// large seal is <ID>-<NONCE>.seal (.tmp while written), the nonce telling apart the seals of two
// attempts at one document (the first completion wins; the other's file is removed).
// See docs/queue.md, "Life of a document". Internal to queue/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/status.h"
#include "queue/queue.h"

namespace qseal::queue::detail {

// <spool_dir>/<ID>.payload: where the bytes of a committed spooled document are.
std::string SpoolPayloadPath(const std::string& spool_dir, const DocumentId& id);

// Buffers up to inline_max bytes in memory; beyond that everything goes to <spool>/<ID>.tmp, which
// Finish() fdatasyncs and renames to <ID>.payload (then fsyncs the directory). Destroying it
// unfinished removes the .tmp file. The first I/O or digest error sticks: every later Append or
// Finish returns it. Not thread-safe; owned by one ingest connection at a time.
class PendingDocumentImpl final : public PendingDocument {
 public:
  // `owner` identifies the queue that made it (Commit refuses another queue's documents).
  PendingDocumentImpl(const void* owner, NewDocument doc, DocumentId id, std::string spool_dir,
                      std::uint64_t inline_max);
  ~PendingDocumentImpl() override;

  Status Append(ByteSpan chunk) override;
  std::uint64_t size() const override { return size_; }
  const DocumentId& id() const override { return id_; }

  // Computes the digest and, when spooled, makes the spool file durable under its final name.
  // kUnavailable on an I/O error, kFailedPrecondition when called twice.
  Status Finish();

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
  Fd fd_;
  std::string tmp_path_;
  std::string final_path_;
  std::uint64_t size_ = 0;
  Hasher sha_;
  std::string sha256_hex_;
  Status broken_;
  bool finished_ = false;
};

// Writes a seal to <spool>/<ID>-<NONCE>.seal.tmp; Finish() fdatasyncs and renames it to
// <ID>-<NONCE>.seal (the directory is fsynced by the caller, once per batch). Destroying it
// removes the file unless Keep() was called (the queue references it). Errors stick.
class PendingSealImpl final : public PendingSeal {
 public:
  PendingSealImpl(const void* owner, DocumentId id, std::string spool_dir);
  ~PendingSealImpl() override;

  Status Append(ByteSpan chunk) override;
  std::uint64_t size() const override { return size_; }
  const DocumentId& id() const override { return id_; }
  Result<std::unique_ptr<PayloadReader>> Open() const override;

  // kUnavailable on an I/O error, kFailedPrecondition when called twice.
  Status Finish();
  bool finished() const { return finished_; }
  // The file is referenced by a committed seal value: the destructor leaves it.
  void Keep() { keep_ = true; }
  const void* owner() const { return owner_; }
  const std::string& file_name() const { return file_name_; }

 private:
  Status Broken(Status s) {
    broken_ = s;
    return s;
  }

  const void* owner_;
  DocumentId id_;
  std::string spool_dir_;
  std::string file_name_;
  std::string tmp_path_;
  Fd fd_;
  std::uint64_t size_ = 0;
  Status broken_;
  bool finished_ = false;
  bool keep_ = false;
};

// The document id a seal file's name (<ID>-<NONCE>.seal) starts with; false for other names.
bool ParseSealFileName(std::string_view file_name, DocumentId* id);

// A reader over a document's bytes already in memory (an inline payload read from RocksDB).
std::unique_ptr<PayloadReader> NewInlineReader(std::string bytes);

// Opens the spool file at `path` holding document `id`, which must have exactly `size` bytes.
// kNotFound when the file is gone (the document was finalised), kDataLoss when its size differs,
// kUnavailable on other I/O errors.
Result<std::unique_ptr<PayloadReader>> OpenSpoolReader(const std::string& path,
                                                       const DocumentId& id, std::uint64_t size);

// Opens the seal file at `path` of document `id`, which must have exactly `size` bytes.
// kDataLoss when it is missing or its size differs, kUnavailable on other I/O errors.
Result<std::unique_ptr<PayloadReader>> OpenSealFile(const std::string& path, const DocumentId& id,
                                                    std::uint64_t size);

}  // namespace qseal::queue::detail
