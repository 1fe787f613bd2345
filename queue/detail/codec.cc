#include "queue/detail/codec.h"

#include <array>
#include <cstring>
#include <limits>

namespace qseal::queue::detail {
namespace {

constexpr std::array<std::uint32_t, 256> MakeCrcTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0x82F63B78U ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = MakeCrcTable();

void PutU8(std::string* out, std::uint8_t v) { out->push_back(static_cast<char>(v)); }
void PutU32(std::string* out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}
void PutU64(std::string* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}
void PutI64(std::string* out, std::int64_t v) { PutU64(out, static_cast<std::uint64_t>(v)); }
void PutString(std::string* out, std::string_view s) {
  PutU32(out, static_cast<std::uint32_t>(s.size()));
  out->append(s);
}

// Reads fields front to back; any overrun sets failed_ and yields zeros.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool failed() const { return failed_; }
  bool done() const { return pos_ == data_.size(); }

  std::uint64_t Uint(int bytes) {
    if (failed_ || data_.size() - pos_ < static_cast<std::size_t>(bytes)) {
      failed_ = true;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(data_[pos_++]);
    return v;
  }
  std::string String() {
    auto n = static_cast<std::size_t>(Uint(4));
    if (failed_ || data_.size() - pos_ < n) {
      failed_ = true;
      return {};
    }
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::string_view Rest() {
    auto r = data_.substr(pos_);
    pos_ = data_.size();
    return r;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

// A time_point holds nanoseconds: microseconds beyond +-2^63/1000 cannot have been encoded from
// one, and FromMicros would overflow on them.
bool MicrosFitATimePoint(std::int64_t us) {
  constexpr std::int64_t kMaxMicros = std::numeric_limits<std::int64_t>::max() / 1000;
  return us <= kMaxMicros && us >= -kMaxMicros;
}

void AppendCrc(std::string* out) { PutU32(out, Crc32c(AsBytes(*out))); }

// Splits off and checks the CRC trailer; returns the body or an error message.
Result<std::string_view> CheckCrc(const DocumentId& id, std::string_view what,
                                  std::string_view value) {
  if (value.size() < 5) {
    return DataLossError(std::string(what) + " " + id.ToString() + " does not decode: truncated (" +
                         std::to_string(value.size()) + " bytes)");
  }
  std::string_view body = value.substr(0, value.size() - 4);
  Reader trailer(value.substr(value.size() - 4));
  auto stored = static_cast<std::uint32_t>(trailer.Uint(4));
  if (stored != Crc32c(AsBytes(body))) {
    return DataLossError(std::string(what) + " " + id.ToString() +
                         " does not decode: checksum mismatch");
  }
  return body;
}

}  // namespace

std::uint32_t Crc32c(ByteSpan data) {
  std::uint32_t c = 0xFFFFFFFFU;
  for (std::uint8_t b : data) c = kCrcTable[(c ^ b) & 0xFFU] ^ (c >> 8);
  return c ^ 0xFFFFFFFFU;
}

std::int64_t ToMicros(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
std::chrono::system_clock::time_point FromMicros(std::int64_t us) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(us)));
}

std::string EncodeRecord(const StoredRecord& stored) {
  const Record& r = stored.record;
  std::string out;
  out.reserve(128 + r.profile.size() + r.client.size() + r.name.size() + r.media_type.size() +
              r.error_message.size() + r.source_ref.size() + r.idempotency_key.size());
  const bool digest_only = !r.digest_algorithm.empty();
  PutU8(&out, digest_only ? kRecordFormatVersionDigest : kRecordFormatVersion);
  out.append(reinterpret_cast<const char*>(r.id.data()), DocumentId::kSize);
  PutU8(&out, static_cast<std::uint8_t>(r.state));
  PutU8(&out, static_cast<std::uint8_t>(r.source));
  PutU8(&out, static_cast<std::uint8_t>(stored.payload));
  PutU32(&out, r.attempts);
  PutU64(&out, r.size);
  PutI64(&out, ToMicros(r.created_at));
  PutI64(&out, ToMicros(r.updated_at));
  PutI64(&out, ToMicros(r.sealed_at));
  PutI64(&out, ToMicros(r.lease_deadline));
  PutI64(&out, ToMicros(r.not_before));
  for (const std::string* s :
       {&r.profile, &r.client, &r.name, &r.media_type, &r.sha256_hex, &r.error_code,
        &r.error_message, &r.source_ref, &r.idempotency_key, &r.seal_media_type}) {
    PutString(&out, *s);
  }
  if (digest_only) PutString(&out, r.digest_algorithm);
  AppendCrc(&out);
  return out;
}

Result<StoredRecord> DecodeRecord(const DocumentId& id, std::string_view value) {
  QSEAL_ASSIGN_OR_RETURN(std::string_view body, CheckCrc(id, "record", value));
  auto bad = [&](std::string_view why) {
    return DataLossError("record " + id.ToString() + " does not decode: " + std::string(why));
  };
  Reader in(body);
  auto version = in.Uint(1);
  if (!in.failed() && version != kRecordFormatVersion && version != kRecordFormatVersionDigest) {
    return bad("unknown format version " + std::to_string(version));
  }
  StoredRecord stored;
  Record& r = stored.record;
  std::string id_bytes;
  for (std::size_t i = 0; i < DocumentId::kSize; ++i) {
    id_bytes.push_back(static_cast<char>(in.Uint(1)));
  }
  r.id = DocumentId::FromBytes(AsBytes(id_bytes));
  auto state = in.Uint(1);
  auto source = in.Uint(1);
  auto payload = in.Uint(1);
  r.attempts = static_cast<std::uint32_t>(in.Uint(4));
  r.size = in.Uint(8);
  bool time_out_of_range = false;
  for (auto* t : {&r.created_at, &r.updated_at, &r.sealed_at, &r.lease_deadline, &r.not_before}) {
    auto us = static_cast<std::int64_t>(in.Uint(8));
    if (!MicrosFitATimePoint(us)) {
      time_out_of_range = true;
      us = 0;
    }
    *t = FromMicros(us);
  }
  for (std::string* s :
       {&r.profile, &r.client, &r.name, &r.media_type, &r.sha256_hex, &r.error_code,
        &r.error_message, &r.source_ref, &r.idempotency_key, &r.seal_media_type}) {
    *s = in.String();
  }
  if (version == kRecordFormatVersionDigest) {
    r.digest_algorithm = in.String();
    if (!in.failed() && r.digest_algorithm.empty()) return bad("empty digest algorithm");
  }
  if (in.failed()) return bad("truncated");
  if (!in.done()) return bad("trailing bytes");
  if (time_out_of_range) return bad("a time is out of range");
  if (state < 1 || state > 4) return bad("state " + std::to_string(state) + " out of range");
  if (source < 1 || source > 3) return bad("source " + std::to_string(source) + " out of range");
  if (payload > 2) return bad("payload kind " + std::to_string(payload) + " out of range");
  if (r.id != id) return bad("it carries another id, " + r.id.ToString());
  r.state = static_cast<State>(state);
  r.source = static_cast<Source>(source);
  stored.payload = static_cast<PayloadKind>(payload);
  return stored;
}

std::string EncodeSeal(ByteSpan seal) {
  std::string out;
  out.reserve(seal.size() + 5);
  PutU8(&out, kSealFormatVersion);
  out.append(AsChars(seal));
  AppendCrc(&out);
  return out;
}

Result<Bytes> DecodeSeal(const DocumentId& id, std::string_view value) {
  QSEAL_ASSIGN_OR_RETURN(std::string_view body, CheckCrc(id, "seal of", value));
  if (static_cast<std::uint8_t>(body[0]) != kSealFormatVersion) {
    return DataLossError("seal of " + id.ToString() + " does not decode: unknown format version");
  }
  ByteSpan bytes = AsBytes(body.substr(1));
  return Bytes(bytes.begin(), bytes.end());
}

std::string EncodeSpooledSeal(const SpooledSeal& seal) {
  std::string out;
  PutU8(&out, kSpooledSealFormatVersion);
  PutU64(&out, seal.size);
  PutString(&out, seal.file_name);
  AppendCrc(&out);
  return out;
}

Result<std::optional<SpooledSeal>> DecodeSpooledSeal(const DocumentId& id, std::string_view value) {
  QSEAL_ASSIGN_OR_RETURN(std::string_view body, CheckCrc(id, "seal of", value));
  if (static_cast<std::uint8_t>(body[0]) == kSealFormatVersion) {
    return std::optional<SpooledSeal>();
  }
  if (static_cast<std::uint8_t>(body[0]) != kSpooledSealFormatVersion) {
    return DataLossError("seal of " + id.ToString() + " does not decode: unknown format version");
  }
  Reader r(body.substr(1));
  SpooledSeal seal;
  seal.size = r.Uint(8);
  seal.file_name = r.String();
  if (r.failed() || !r.done() || seal.file_name.empty() ||
      seal.file_name.find('/') != std::string::npos || seal.file_name[0] == '.') {
    return DataLossError("seal of " + id.ToString() + " does not decode: bad spooled seal");
  }
  return std::optional<SpooledSeal>(std::move(seal));
}

std::string EncodeIdempotency(const DocumentId& id, std::string_view sha256_hex) {
  std::string out(reinterpret_cast<const char*>(id.data()), DocumentId::kSize);
  out.append(sha256_hex);
  return out;
}

Result<std::pair<DocumentId, std::string>> DecodeIdempotency(std::string_view value) {
  if (value.size() != DocumentId::kSize + 64) {
    return DataLossError("idempotency entry does not decode: " + std::to_string(value.size()) +
                         " bytes");
  }
  return std::make_pair(DocumentId::FromBytes(AsBytes(value.substr(0, DocumentId::kSize))),
                        std::string(value.substr(DocumentId::kSize)));
}

std::string IdempotencyKey(std::string_view client, std::string_view key) {
  std::string out;
  PutString(&out, client);
  out.append(key);
  return out;
}

std::string ExpiryKey(std::chrono::system_clock::time_point at, const DocumentId& id) {
  std::string out;
  std::int64_t us = ToMicros(at);
  PutU64(&out, us < 0 ? 0 : static_cast<std::uint64_t>(us));
  out.append(reinterpret_cast<const char*>(id.data()), DocumentId::kSize);
  return out;
}

bool DecodeExpiryKey(std::string_view key, std::chrono::system_clock::time_point* at,
                     DocumentId* id) {
  if (key.size() != 8 + DocumentId::kSize) return false;
  Reader in(key.substr(0, 8));
  auto us = static_cast<std::int64_t>(in.Uint(8));
  if (us < 0 || !MicrosFitATimePoint(us)) return false;  // ExpiryKey never writes those
  *at = FromMicros(us);
  *id = DocumentId::FromBytes(AsBytes(key.substr(8)));
  return true;
}

std::string EncodeCounts(std::uint64_t sealed, std::uint64_t failed) {
  std::string out;
  PutU64(&out, sealed);
  PutU64(&out, failed);
  return out;
}

bool DecodeCounts(std::string_view in, std::uint64_t* sealed, std::uint64_t* failed) {
  if (in.size() != 16) return false;
  Reader r(in);
  *sealed = r.Uint(8);
  *failed = r.Uint(8);
  return true;
}

std::string IdKey(const DocumentId& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), DocumentId::kSize);
}

bool DecodeIdKey(std::string_view key, DocumentId* id) {
  if (key.size() != DocumentId::kSize) return false;
  *id = DocumentId::FromBytes(AsBytes(key));
  return true;
}

}  // namespace qseal::queue::detail
