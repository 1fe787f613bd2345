// Binary encodings of what the queue stores in RocksDB (see docs/queue.md for the layout).
// Pure functions, no I/O; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/status.h"
#include "queue/queue.h"

namespace qseal::queue::detail {

// Where a record's document bytes live.
enum class PayloadKind : std::uint8_t {
  kNone = 0,    // deleted (the document is final)
  kInline = 1,  // value in the payloads column family under the id
  kSpool = 2,   // file <queue>/spool/<ID>.payload
};

struct StoredRecord {
  Record record;
  PayloadKind payload = PayloadKind::kNone;
};

// Version 1 records end after seal_media_type. Version 2 adds digest_algorithm after it and is
// written only for digest-only documents, so every other record stays version 1, byte for byte.
inline constexpr std::uint8_t kRecordFormatVersion = 1;
inline constexpr std::uint8_t kRecordFormatVersionDigest = 2;
inline constexpr std::uint8_t kSealFormatVersion = 1;
inline constexpr std::uint8_t kSpooledSealFormatVersion = 2;

// CRC-32C (Castagnoli), software table implementation.
std::uint32_t Crc32c(ByteSpan data);

// Record value: version byte, fixed fields, length-prefixed strings, CRC-32C trailer.
std::string EncodeRecord(const StoredRecord& stored);
// kDataLoss naming the id when the value is truncated, has a bad checksum, an unknown version or an
// out-of-range field, or when the decoded id differs from `id`.
Result<StoredRecord> DecodeRecord(const DocumentId& id, std::string_view value);

// Seal value: version byte, seal bytes, CRC-32C trailer.
std::string EncodeSeal(ByteSpan seal);
Result<Bytes> DecodeSeal(const DocumentId& id, std::string_view value);

// A seal kept in a spool file (Queue::BeginSeal): its size and its file's name in <queue>/spool.
struct SpooledSeal {
  std::uint64_t size = 0;
  std::string file_name;
};
// Spooled seal value: version byte 2, the size (u64), the file name (length-prefixed), CRC-32C.
std::string EncodeSpooledSeal(const SpooledSeal& seal);
// The spooled seal `value` names; std::nullopt for an inline seal (version 1, see DecodeSeal).
// kDataLoss when it does not decode or the name is not a plain file name.
Result<std::optional<SpooledSeal>> DecodeSpooledSeal(const DocumentId& id, std::string_view value);

// Idempotency value: the id (16 bytes) then the sha256 hex (64 characters).
std::string EncodeIdempotency(const DocumentId& id, std::string_view sha256_hex);
Result<std::pair<DocumentId, std::string>> DecodeIdempotency(std::string_view value);
std::string IdempotencyKey(std::string_view client, std::string_view key);

// Retention index key: big-endian microseconds since the epoch, then the id. Sorts by time.
std::string ExpiryKey(std::chrono::system_clock::time_point at, const DocumentId& id);
bool DecodeExpiryKey(std::string_view key, std::chrono::system_clock::time_point* at,
                     DocumentId* id);

// The meta "counts" value: sealed count, failed count, two big-endian u64. Decode is false unless
// the value is exactly 16 bytes.
std::string EncodeCounts(std::uint64_t sealed, std::uint64_t failed);
bool DecodeCounts(std::string_view in, std::uint64_t* sealed, std::uint64_t* failed);

std::string IdKey(const DocumentId& id);  // the 16 id bytes
bool DecodeIdKey(std::string_view key, DocumentId* id);

std::int64_t ToMicros(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point FromMicros(std::int64_t us);

}  // namespace qseal::queue::detail
