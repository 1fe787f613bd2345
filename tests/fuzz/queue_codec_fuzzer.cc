// Fuzzes the queue's record decoders on arbitrary stored values (a corrupted or foreign RocksDB
// value): each either fails with kDataLoss or decodes to something that encodes back to the same
// bytes, so a value the queue accepts is exactly one it could have written.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "queue/detail/codec.h"

namespace {

using qseal::queue::DocumentId;
namespace detail = qseal::queue::detail;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "queue_codec_fuzzer: %s\n", what);
    std::abort();
  }
}

}  // namespace

// Input: one mode byte, then the stored value. Mode bit 0 set: the value is a body and gets a
// correct CRC-32C trailer appended, so mutations reach the field decoding behind the checksum.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool fix_crc = (data[0] & 1) != 0;
  std::string owned(reinterpret_cast<const char*>(data + 1), size - 1);
  if (fix_crc) {
    std::uint32_t crc = detail::Crc32c(qseal::AsBytes(owned));
    for (int i = 3; i >= 0; --i) owned.push_back(static_cast<char>((crc >> (8 * i)) & 0xFFU));
  }
  std::string_view value(owned);
  // The id the record is stored under: the 16 bytes after the version byte when there are enough
  // (so a record encoded with its own id decodes), otherwise zeros.
  qseal::Bytes id_bytes(DocumentId::kSize, 0);
  if (value.size() > DocumentId::kSize + 1) {
    for (std::size_t i = 0; i < DocumentId::kSize; ++i) {
      id_bytes[i] = static_cast<std::uint8_t>(value[i + 1]);
    }
  }
  DocumentId id = DocumentId::FromBytes(id_bytes);

  auto record = detail::DecodeRecord(id, value);
  if (record.ok()) {
    Check(record->record.id == id, "a record decoded under another id");
    Check(detail::EncodeRecord(*record) == value, "a decoded record does not encode back");
  } else {
    Check(record.status().code() == qseal::StatusCode::kDataLoss, "record error is not kDataLoss");
  }

  auto seal = detail::DecodeSeal(id, value);
  if (seal.ok()) {
    Check(detail::EncodeSeal(*seal) == value, "a decoded seal does not encode back");
  } else {
    Check(seal.status().code() == qseal::StatusCode::kDataLoss, "seal error is not kDataLoss");
  }

  auto idem = detail::DecodeIdempotency(value);
  if (idem.ok()) {
    Check(detail::EncodeIdempotency(idem->first, idem->second) == value,
          "a decoded idempotency value does not encode back");
  }

  std::chrono::system_clock::time_point at;
  DocumentId expiry_id;
  if (detail::DecodeExpiryKey(value, &at, &expiry_id)) {
    Check(detail::ExpiryKey(at, expiry_id) == value, "an expiry key does not encode back");
  }
  DocumentId key_id;
  if (detail::DecodeIdKey(value, &key_id)) {
    Check(detail::IdKey(key_id) == value, "an id key does not encode back");
  }
  return 0;
}
