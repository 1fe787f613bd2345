#include "engine/detail/format_stages.h"

#include <memory>
#include <mutex>
#include <span>

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

Status AssembleSeal(const formats::Format& format, const formats::ToBeSigned& tbs,
                    ByteSpan signature, const formats::Content& content, Bytes* seal) {
  seal->clear();
  seal->reserve(format.OutputSizeHint(tbs, signature.size(), content.size));
  Status s = format.Assemble(tbs, signature, content, [seal](ByteSpan bytes) {
    seal->insert(seal->end(), bytes.begin(), bytes.end());
    return Status::Ok();
  });
  if (!s.ok()) seal->clear();
  return s;
}

}  // namespace qseal::engine::detail
