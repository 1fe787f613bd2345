#include "engine/detail/format_stages.h"

#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

namespace qseal::engine::detail {

formats::Content PayloadContent(const queue::Queue* queue, const queue::Record& record,
                                std::size_t read_chunk_bytes) {
  formats::Content c;
  c.size = record.size;
  c.name = record.name;
  c.media_type = record.media_type;
  c.read_chunk_bytes = read_chunk_bytes;
  c.open = [queue, id = record.id]() -> Result<formats::ReadFn> {
    QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<queue::PayloadReader> reader, queue->OpenPayload(id));
    // shared_ptr: a ReadFn is a std::function, which must be copyable.
    std::shared_ptr<queue::PayloadReader> r = std::move(reader);
    return formats::ReadFn([r](std::span<std::uint8_t> buf) { return r->Read(buf); });
  };
  // One reader for every positional read of this document, opened at the first one (most formats
  // never call it). The mutex guards only the opening: PayloadReader::ReadAt is thread-safe.
  struct Positional {
    std::mutex mu;
    std::shared_ptr<queue::PayloadReader> reader;
  };
  auto positional = std::make_shared<Positional>();
  c.read_at = [queue, id = record.id, positional](
                  std::uint64_t offset, std::span<std::uint8_t> buf) -> Result<std::size_t> {
    std::shared_ptr<queue::PayloadReader> r;
    {
      std::lock_guard<std::mutex> lock(positional->mu);
      if (positional->reader == nullptr) {
        QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<queue::PayloadReader> opened,
                               queue->OpenPayload(id));
        positional->reader = std::move(opened);
      }
      r = positional->reader;
    }
    return r->ReadAt(offset, buf);
  };
  return c;
}

Status LoadPrecomputedDigest(const queue::Queue* queue, const queue::Record& record,
                             DigestAlgorithm profile_digest, formats::Content* content) {
  if (record.digest_algorithm.empty()) return Status::Ok();
  std::optional<DigestAlgorithm> alg = ParseDigest(record.digest_algorithm);
  if (!alg) {
    return InvalidArgumentError("digest-only document with unknown digest algorithm \"" +
                                record.digest_algorithm + "\"");
  }
  if (*alg != profile_digest) {
    return InvalidArgumentError("digest-only document hashed with " + record.digest_algorithm +
                                " but profile \"" + record.profile + "\" seals " +
                                std::string(DigestName(profile_digest)));
  }
  const std::size_t want = DigestSize(*alg);
  if (record.size != want) {
    return InvalidArgumentError("digest-only document holds " + std::to_string(record.size) +
                                " bytes, not one " + record.digest_algorithm + " digest");
  }
  QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<queue::PayloadReader> reader,
                         queue->OpenPayload(record.id));
  // One byte more than a digest, so a payload longer than its record says is seen.
  Bytes digest(want + 1);
  std::size_t got = 0;
  while (got < digest.size()) {
    QSEAL_ASSIGN_OR_RETURN(std::size_t n,
                           reader->Read(std::span<std::uint8_t>(digest).subspan(got)));
    if (n == 0) break;
    got += n;
  }
  if (got != want) {
    return DataLossError("digest-only document's payload is " + std::to_string(got) +
                         " bytes, its record says " + std::to_string(want));
  }
  digest.resize(want);
  content->precomputed_digest = std::move(digest);
  return Status::Ok();
}

Status AssembleSeal(const formats::Format& format, const formats::ToBeSigned& tbs,
                    ByteSpan signature, const formats::Content& content, const SealSpool& spool,
                    Bytes* seal, std::unique_ptr<queue::PendingSeal>* seal_file) {
  seal->clear();
  seal_file->reset();
  std::uint64_t hint = format.OutputSizeHint(tbs, signature.size(), content.size);
  if (spool.queue != nullptr && hint >= spool.min_bytes) {
    QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<queue::PendingSeal> file,
                           spool.queue->BeginSeal(spool.id));
    Status s = format.Assemble(tbs, signature, content,
                               [&file](ByteSpan bytes) { return file->Append(bytes); });
    if (s.ok()) s = spool.queue->FinishSeal(*file);
    if (s.ok()) *seal_file = std::move(file);  // else destroying it removes the file
    return s;
  }
  seal->reserve(hint);
  Status s = format.Assemble(tbs, signature, content, [seal](ByteSpan bytes) {
    seal->insert(seal->end(), bytes.begin(), bytes.end());
    return Status::Ok();
  });
  if (!s.ok()) seal->clear();
  return s;
}

}  // namespace qseal::engine::detail
