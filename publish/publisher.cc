#include "publish/publisher.h"

#include <array>
#include <cstdint>
#include <memory>

namespace qseal::publish {

Status StreamSeal(const PublishItem& item, const std::function<Status(ByteSpan piece)>& write) {
  if (item.seal_file == nullptr) return write(item.seal);
  QSEAL_ASSIGN_OR_RETURN(std::unique_ptr<queue::PayloadReader> reader, item.seal_file->Open());
  std::vector<std::uint8_t> buffer(256 << 10);
  std::uint64_t total = 0;
  for (;;) {
    QSEAL_ASSIGN_OR_RETURN(std::size_t n, reader->Read(buffer));
    if (n == 0) break;
    QSEAL_RETURN_IF_ERROR(write(ByteSpan(buffer.data(), n)));
    total += n;
  }
  if (total != reader->size()) {
    return DataLossError("seal file of " + item.seal_file->id().ToString() + " has " +
                         std::to_string(total) + " bytes, expected " +
                         std::to_string(reader->size()));
  }
  return Status::Ok();
}

Result<Bytes> SealBytes(const PublishItem& item) {
  Bytes out;
  if (item.seal_file != nullptr) out.reserve(item.seal_file->size());
  QSEAL_RETURN_IF_ERROR(StreamSeal(item, [&out](ByteSpan piece) {
    out.insert(out.end(), piece.begin(), piece.end());
    return Status::Ok();
  }));
  return out;
}

}  // namespace qseal::publish
