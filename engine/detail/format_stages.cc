#include "engine/detail/format_stages.h"

#include <memory>
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
