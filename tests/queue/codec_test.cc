#include "queue/detail/codec.h"

#include <gtest/gtest.h>

namespace qseal::queue::detail {
namespace {

DocumentId TestId(std::uint8_t seed) {
  Bytes b(DocumentId::kSize);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(seed + i);
  return DocumentId::FromBytes(b);
}

StoredRecord Sample() {
  StoredRecord s;
  Record& r = s.record;
  r.id = TestId(7);
  r.profile = "invoices";
  r.source = Source::kWatch;
  r.client = "acme";
  r.name = "inv-1.pdf";
  r.media_type = "application/pdf";
  r.sha256_hex = std::string(64, 'a');
  r.size = 123456789;
  r.state = State::kLeased;
  r.attempts = 3;
  r.created_at = FromMicros(1'700'000'000'000'001);
  r.updated_at = FromMicros(1'700'000'000'000'002);
  r.sealed_at = FromMicros(0);
  r.lease_deadline = FromMicros(1'700'000'000'500'000);
  r.not_before = FromMicros(1'700'000'000'000'003);
  r.error_code = "UNAVAILABLE";
  r.error_message = "HSM down";
  r.source_ref = "/watch/processing/inv-1.pdf";
  r.idempotency_key = "k1";
  r.seal_media_type = "";
  s.payload = PayloadKind::kSpool;
  return s;
}

TEST(CodecTest, RecordRoundTripsEveryField) {
  StoredRecord in = Sample();
  auto out = DecodeRecord(in.record.id, EncodeRecord(in));
  ASSERT_TRUE(out.ok()) << out.status();
  const Record& a = in.record;
  const Record& b = out->record;
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.profile, b.profile);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.client, b.client);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.media_type, b.media_type);
  EXPECT_EQ(a.sha256_hex, b.sha256_hex);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.sealed_at, b.sealed_at);
  EXPECT_EQ(a.lease_deadline, b.lease_deadline);
  EXPECT_EQ(a.not_before, b.not_before);
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.error_message, b.error_message);
  EXPECT_EQ(a.source_ref, b.source_ref);
  EXPECT_EQ(a.idempotency_key, b.idempotency_key);
  EXPECT_EQ(a.seal_media_type, b.seal_media_type);
  EXPECT_EQ(out->payload, PayloadKind::kSpool);
}

// Digest-only records are version 2 (digest_algorithm after seal_media_type); every other record
// stays version 1, exactly as written before the field existed, and decodes with it empty.
TEST(CodecTest, DigestOnlyRecordIsVersionTwoAndOthersStayVersionOne) {
  StoredRecord plain = Sample();
  std::string v1 = EncodeRecord(plain);
  EXPECT_EQ(v1[0], 1);
  auto decoded = DecodeRecord(plain.record.id, v1);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->record.digest_algorithm, "");

  StoredRecord digest = Sample();
  digest.record.digest_algorithm = "sha384";
  std::string v2 = EncodeRecord(digest);
  EXPECT_EQ(v2[0], 2);
  EXPECT_EQ(v2.size(), v1.size() + 4 + 6);
  auto out = DecodeRecord(digest.record.id, v2);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->record.digest_algorithm, "sha384");
  EXPECT_EQ(out->record.seal_media_type, digest.record.seal_media_type);
  EXPECT_EQ(out->record.idempotency_key, digest.record.idempotency_key);

  // A version 1 body relabelled 2 (no digest_algorithm) is truncated; a version 2 body relabelled
  // 1 has trailing bytes: neither decodes.
  auto relabel = [](std::string encoded, char version) {
    std::string body = encoded.substr(0, encoded.size() - 4);
    body[0] = version;
    std::uint32_t crc = Crc32c(AsBytes(body));
    for (int i = 3; i >= 0; --i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
    return body;
  };
  EXPECT_EQ(DecodeRecord(plain.record.id, relabel(v1, 2)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRecord(plain.record.id, relabel(v2, 1)).status().code(), StatusCode::kDataLoss);
}

TEST(CodecTest, EverySourceRoundTrips) {
  for (Source source : {Source::kApi, Source::kWatch, Source::kBroker}) {
    StoredRecord in = Sample();
    in.record.source = source;
    auto out = DecodeRecord(in.record.id, EncodeRecord(in));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->record.source, source);
  }
}

TEST(CodecTest, EveryFlippedByteIsDataLoss) {
  StoredRecord in = Sample();
  std::string encoded = EncodeRecord(in);
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    std::string bad = encoded;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    auto out = DecodeRecord(in.record.id, bad);
    ASSERT_FALSE(out.ok()) << "byte " << i;
    EXPECT_EQ(out.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(out.status().message().find(in.record.id.ToString()), std::string::npos);
  }
}

TEST(CodecTest, TruncatedRecordIsDataLoss) {
  StoredRecord in = Sample();
  std::string encoded = EncodeRecord(in);
  for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{20}, encoded.size() - 1}) {
    auto out = DecodeRecord(in.record.id, encoded.substr(0, n));
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kDataLoss);
  }
}

TEST(CodecTest, UnknownVersionIsDataLossEvenWithAValidChecksum) {
  StoredRecord in = Sample();
  std::string encoded = EncodeRecord(in);
  std::string body = encoded.substr(0, encoded.size() - 4);
  body[0] = 9;
  std::uint32_t crc = Crc32c(AsBytes(body));
  for (int i = 3; i >= 0; --i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  auto out = DecodeRecord(in.record.id, body);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(out.status().message().find("version 9"), std::string::npos);
}

// Regression (fuzzing, queue_codec_fuzzer): a value with a valid checksum but a time beyond what a
// time_point holds overflowed (undefined behaviour) while decoding instead of being kDataLoss.
TEST(CodecTest, FuzzTimeOutOfRangeIsDataLoss) {
  StoredRecord in = Sample();
  std::string encoded = EncodeRecord(in);
  std::string body = encoded.substr(0, encoded.size() - 4);
  // created_at: after version (1), id (16), state, source, payload (3), attempts (4), size (8).
  const std::size_t created_at = 1 + 16 + 3 + 4 + 8;
  for (std::size_t i = 0; i < 8; ++i) body[created_at + i] = i == 0 ? '\x74' : '\x00';
  std::uint32_t crc = Crc32c(AsBytes(body));
  for (int i = 3; i >= 0; --i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  auto out = DecodeRecord(in.record.id, body);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(out.status().message().find("time is out of range"), std::string::npos);

  std::string key = ExpiryKey(FromMicros(0), in.record.id);
  key[0] = '\x74';
  std::chrono::system_clock::time_point at;
  DocumentId id;
  EXPECT_FALSE(DecodeExpiryKey(key, &at, &id));
}

TEST(CodecTest, RecordUnderAnotherIdIsDataLoss) {
  StoredRecord in = Sample();
  auto out = DecodeRecord(TestId(8), EncodeRecord(in));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kDataLoss);
}

TEST(CodecTest, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c(AsBytes("123456789")), 0xE3069283U);
}

TEST(CodecTest, SealRoundTripsAndDetectsCorruption) {
  Bytes seal = {0x30, 0x82, 0x01, 0x00, 0xFF};
  std::string v = EncodeSeal(seal);
  auto out = DecodeSeal(TestId(1), v);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, seal);
  v[2] = static_cast<char>(v[2] ^ 1);
  EXPECT_EQ(DecodeSeal(TestId(1), v).status().code(), StatusCode::kDataLoss);
}

TEST(CodecTest, ExpiryKeysSortByTime) {
  auto early = ExpiryKey(FromMicros(1000), TestId(9));
  auto late = ExpiryKey(FromMicros(1'000'000'000), TestId(1));
  EXPECT_LT(early, late);
  std::chrono::system_clock::time_point at;
  DocumentId id;
  ASSERT_TRUE(DecodeExpiryKey(late, &at, &id));
  EXPECT_EQ(at, FromMicros(1'000'000'000));
  EXPECT_EQ(id, TestId(1));
}

TEST(CodecTest, IdempotencyKeysOfDifferentClientsDiffer) {
  EXPECT_NE(IdempotencyKey("a", "bc"), IdempotencyKey("ab", "c"));
  auto v = EncodeIdempotency(TestId(3), std::string(64, 'f'));
  auto d = DecodeIdempotency(v);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->first, TestId(3));
  EXPECT_EQ(d->second, std::string(64, 'f'));
  EXPECT_EQ(DecodeIdempotency("short").status().code(), StatusCode::kDataLoss);
}

TEST(CodecTest, CountsAreTwoBigEndianWords) {
  std::string v = EncodeCounts(0x0102030405060708ULL, 5);
  EXPECT_EQ(v, std::string("\x01\x02\x03\x04\x05\x06\x07\x08\0\0\0\0\0\0\0\x05", 16));
  std::uint64_t sealed = 0;
  std::uint64_t failed = 0;
  ASSERT_TRUE(DecodeCounts(v, &sealed, &failed));
  EXPECT_EQ(sealed, 0x0102030405060708ULL);
  EXPECT_EQ(failed, 5u);
  EXPECT_FALSE(DecodeCounts(v.substr(0, 15), &sealed, &failed));
  EXPECT_FALSE(DecodeCounts(v + "x", &sealed, &failed));
}

}  // namespace
}  // namespace qseal::queue::detail
