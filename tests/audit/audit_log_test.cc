#include "audit/audit_log.h"

#include <sys/mount.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "audit/detail/checkpoint_key.h"
#include "audit/detail/record.h"
#include "audit/verifier.h"
#include "common/sha256.h"
#include "tests/testing/testing.h"

namespace qseal::audit {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

// A log with a checkpoint every 5 records, filled with `n` sign_intent records in groups of 3.
class AuditLogTest : public ::testing::Test {
 protected:
  AuditOptions Options() const {
    AuditOptions o;
    o.dir = dir_.path().string() + "/audit";
    o.checkpoint_key_file = dir_.path().string() + "/key.pem";
    o.create_key_if_missing = true;
    o.checkpoint_records = 5;
    o.retry_interval = std::chrono::milliseconds(20);
    o.preallocate_bytes = 4096;
    return o;
  }

  void Fill(AuditLog& log, int n) {
    for (int i = 0; i < n; i += 3) {
      std::vector<Entry> group;
      for (int j = i; j < std::min(n, i + 3); ++j) {
        Entry e;
        e.event = Event::kSignIntent;
        e.id = "doc-" + std::to_string(j);
        e.profile = "default";
        e.client = "client \"a\"\n";
        e.document_sha256 = Sha256Hex(AsBytes(e.id));
        group.push_back(e);
      }
      ASSERT_TRUE(log.Append(std::move(group)).ok());
    }
  }

  void WriteLog(int n) {
    Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(Options());
    ASSERT_TRUE(log.ok()) << log.status();
    Fill(**log, n);
    ASSERT_TRUE((*log)->Close().ok());
  }

  VerifyReport Verify(std::uint64_t expect_seq = 0, std::string expect_hash = "") {
    VerifyOptions v;
    v.dir = Options().dir;
    v.public_key_file = dir_.path().string() + "/key.pem.pub.pem";
    v.expect_seq = expect_seq;
    v.expect_hash = std::move(expect_hash);
    Result<VerifyReport> r = VerifyLog(v);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : VerifyReport{};
  }

  std::string SegmentPath(std::size_t index) {
    auto segs = ListSegments(Options().dir);
    EXPECT_TRUE(segs.ok());
    EXPECT_LT(index, segs->size());
    return Options().dir + "/" + (*segs)[index].second;
  }

  static std::vector<std::string> Lines(const std::string& path) {
    std::vector<std::string> out;
    std::ifstream in(path);
    std::string l;
    while (std::getline(in, l)) {
      if (l.find_first_not_of('\0') != std::string::npos) out.push_back(l);  // not reserved space
    }
    return out;
  }
  static void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    WriteFile(path, text);
  }
  static std::size_t IndexOfSeq(const std::vector<std::string>& lines, std::uint64_t seq) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (detail::ParseLine(lines[i])->seq == seq) return i;
    }
    ADD_FAILURE() << "no seq " << seq;
    return 0;
  }
  // What a forger without the key can do: recompute every hash from line `from` on.
  static void Rehash(std::vector<std::string>& lines, std::size_t from) {
    std::string prev = detail::ParseLine(lines[from - 1])->hash;
    for (std::size_t i = from; i < lines.size(); ++i) {
      std::string& l = lines[i];
      std::size_t p = l.find("\"prev\":\"");
      l.replace(p + 8, 64, prev);
      std::size_t h = l.rfind(",\"hash\":\"");
      std::string body = l.substr(0, h) + "}";
      prev = Sha256Hex(AsBytes(body));
      l = l.substr(0, h) + ",\"hash\":\"" + prev + "\"}";
    }
  }

  TempDir dir_;
};

TEST_F(AuditLogTest, WritesAChainThatVerifies) {
  WriteLog(20);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.reason;
  // 1 header + 20 records + checkpoints every 5 records (and one at Close).
  EXPECT_EQ(r.first_seq, 1u);
  EXPECT_GE(r.checkpoints, 4u);
  EXPECT_EQ(r.records, r.last_seq);
  EXPECT_EQ(r.unprotected, 0u);  // Close covers the tail
  std::vector<std::string> lines = Lines(SegmentPath(0));
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines[1].find("\"client\":\"client \\\"a\\\"\\u000a\""), std::string::npos) << lines[1];
}

TEST_F(AuditLogTest, ReopenContinuesTheChainInANewSegment) {
  WriteLog(7);
  WriteLog(7);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.segments, 2u);
}

TEST_F(AuditLogTest, RotatesBySize) {
  AuditOptions o = Options();
  o.segment_bytes = 1024;
  auto log = AuditLog::Open(o);
  ASSERT_TRUE(log.ok());
  Fill(**log, 30);
  ASSERT_TRUE((*log)->Close().ok());
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_GT(r.segments, 3u);
  // --from a later segment trusts its header as the anchor.
  VerifyOptions v;
  v.dir = o.dir;
  v.public_key_file = dir_.path().string() + "/key.pem.pub.pem";
  v.from_segment = (*ListSegments(o.dir))[2].first;
  Result<VerifyReport> from = VerifyLog(v);
  ASSERT_TRUE(from.ok());
  EXPECT_TRUE(from->ok) << from->reason;
  EXPECT_EQ(from->first_seq, v.from_segment);
}

TEST_F(AuditLogTest, EditedFieldIsReportedAtItsRecord) {
  WriteLog(20);
  std::string path = SegmentPath(0);
  auto lines = Lines(path);
  std::size_t i = IndexOfSeq(lines, 7);
  std::size_t p = lines[i].find("\"document_sha256\":\"") + 19;
  lines[i][p] = lines[i][p] == 'a' ? 'b' : 'a';
  WriteLines(path, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 7u);
  EXPECT_NE(r.reason.find("hash mismatch"), std::string::npos) << r.reason;
}

TEST_F(AuditLogTest, EditedAndRehashedChainFailsAtTheNextCheckpoint) {
  WriteLog(20);
  std::string path = SegmentPath(0);
  auto lines = Lines(path);
  std::size_t i = IndexOfSeq(lines, 7);
  std::size_t p = lines[i].find("\"id\":\"doc-") + 10;
  lines[i][p] = '9';
  Rehash(lines, i);
  WriteLines(path, lines);
  std::uint64_t checkpoint = 0;
  for (std::size_t k = i; k < lines.size() && checkpoint == 0; ++k) {
    if (detail::ParseLine(lines[k])->event == "checkpoint")
      checkpoint = detail::ParseLine(lines[k])->seq;
  }
  ASSERT_GT(checkpoint, 7u);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, checkpoint);
  EXPECT_NE(r.reason.find("bad checkpoint signature"), std::string::npos) << r.reason;
}

TEST_F(AuditLogTest, DeletedRecordIsAGap) {
  WriteLog(20);
  std::string path = SegmentPath(0);
  auto lines = Lines(path);
  lines.erase(lines.begin() + static_cast<std::ptrdiff_t>(IndexOfSeq(lines, 8)));
  WriteLines(path, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 8u);
  EXPECT_NE(r.reason.find("gap"), std::string::npos) << r.reason;
}

TEST_F(AuditLogTest, SwappedRecordsAreOutOfOrder) {
  WriteLog(20);
  std::string path = SegmentPath(0);
  auto lines = Lines(path);
  std::size_t i = IndexOfSeq(lines, 8);
  std::swap(lines[i], lines[i + 1]);
  WriteLines(path, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 8u);
  EXPECT_NE(r.reason.find("out of order"), std::string::npos) << r.reason;
}

TEST_F(AuditLogTest, TruncatedTailIsReported) {
  WriteLog(20);
  VerifyReport before = Verify();
  ASSERT_TRUE(before.ok);
  std::string path = SegmentPath(0);
  std::string text = ReadFile(path);
  // Cut inside the last record: visible on its own.
  std::filesystem::resize_file(path, text.size() - 10);
  VerifyReport torn = Verify();
  EXPECT_FALSE(torn.ok);
  EXPECT_EQ(torn.first_bad_seq, before.last_seq);
  EXPECT_NE(torn.reason.find("truncated"), std::string::npos) << torn.reason;
  // Cut at a record boundary: only a verifier that knows the head it saw before can tell.
  auto lines = Lines(path);
  lines.resize(lines.size() - 4);
  WriteLines(path, lines);
  EXPECT_TRUE(Verify().ok);
  VerifyReport cut = Verify(before.last_seq, before.head_hash);
  EXPECT_FALSE(cut.ok);
  EXPECT_EQ(cut.first_bad_seq, before.last_seq - 3);  // the torn line counted as one
  EXPECT_NE(cut.reason.find("truncated"), std::string::npos) << cut.reason;
}

TEST_F(AuditLogTest, OlderCopyOfASegmentFailsAtTheNextHeader) {
  auto log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok());
  Fill(**log, 6);
  std::string first = SegmentPath(0);
  std::string old_copy = ReadFile(first);
  std::uint64_t old_last = detail::ParseLine(Lines(first).back())->seq;
  Fill(**log, 9);
  ASSERT_TRUE((*log)->Close().ok());
  WriteLog(3);  // a second segment
  WriteFile(first, old_copy);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, old_last + 1);
  EXPECT_EQ(r.segment, std::filesystem::path(first).filename().string());
  EXPECT_NE(r.reason.find("older copy"), std::string::npos) << r.reason;
}

TEST_F(AuditLogTest, OlderCopyOfTheWholeLogNeedsTheExpectedHead) {
  WriteLog(6);
  std::string copy = dir_.path().string() + "/copy";
  std::filesystem::copy(Options().dir, copy);
  WriteLog(6);
  VerifyReport now = Verify();
  ASSERT_TRUE(now.ok);
  std::filesystem::remove_all(Options().dir);
  std::filesystem::rename(copy, Options().dir);
  EXPECT_TRUE(Verify().ok);  // consistent in itself
  VerifyReport r = Verify(now.last_seq, now.head_hash);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.reason.find("older copy"), std::string::npos) << r.reason;
  // A copy that reaches the expected seq but differs there is caught by the hash.
  WriteLog(20);
  VerifyReport other = Verify(now.last_seq, now.head_hash);
  EXPECT_FALSE(other.ok);
  EXPECT_EQ(other.first_bad_seq, now.last_seq);
  EXPECT_NE(other.reason.find("head mismatch"), std::string::npos) << other.reason;
}

TEST_F(AuditLogTest, ForgedCheckpointIsReported) {
  WriteLog(20);
  std::string path = SegmentPath(0);
  auto lines = Lines(path);
  std::size_t i = 0;
  while (detail::ParseLine(lines[i])->event != "checkpoint") ++i;
  detail::ParsedLine cp = *detail::ParseLine(lines[i]);
  // Signed with another P-256 key, claiming the real key's id.
  auto other = detail::CheckpointKey::LoadPrivate(dir_.path().string() + "/other.pem", true);
  ASSERT_TRUE(other.ok());
  std::string sig = *other->Sign(detail::CheckpointMessage(cp.seq, cp.time, *cp.head_seq, cp.prev));
  std::size_t p = lines[i].find("\"sig\":\"") + 7;
  lines[i].replace(p, lines[i].find('"', p) - p, sig);
  Rehash(lines, i);
  WriteLines(path, lines);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, cp.seq);
  EXPECT_NE(r.reason.find("bad checkpoint signature"), std::string::npos) << r.reason;
}

TEST_F(AuditLogTest, CheckpointKeyWithGroupOrOtherPermissionsIsRefused) {
  const std::string path = dir_.path().string() + "/loose.pem";
  ASSERT_TRUE(detail::CheckpointKey::LoadPrivate(path, true).ok());
  for (std::filesystem::perms extra :
       {std::filesystem::perms::group_read, std::filesystem::perms::others_read,
        std::filesystem::perms::group_write}) {
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | extra);
    auto loose = detail::CheckpointKey::LoadPrivate(path, false);
    ASSERT_FALSE(loose.ok());
    EXPECT_NE(loose.status().message().find("accessible to group or other"), std::string::npos)
        << loose.status();
  }
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_TRUE(detail::CheckpointKey::LoadPrivate(path, false).ok());
}

// Issue 19 item 2: a key file that vanished under an existing trail is never regenerated
// silently; only new_key (qseald --new-audit-key) starts a new one, and that is itself a record.
TEST_F(AuditLogTest, MissingCheckpointKeyWithSegmentsIsRefusedUnlessANewKeyIsAskedFor) {
  WriteLog(7);
  const std::string key = Options().checkpoint_key_file;
  const std::string pub = key + ".pub.pem";
  Result<detail::CheckpointKey> old = detail::CheckpointKey::LoadPublic(pub);
  ASSERT_TRUE(old.ok()) << old.status();
  std::filesystem::remove(key);
  const std::string before = ReadFile(SegmentPath(0));

  // create_key_if_missing (the default config) does not cover an existing trail.
  Result<std::unique_ptr<AuditLog>> refused = AuditLog::Open(Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);  // qseald: exit 78
  EXPECT_NE(refused.status().message().find("is missing"), std::string::npos) << refused.status();
  EXPECT_NE(refused.status().message().find("--new-audit-key"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(key));  // nothing generated
  EXPECT_EQ(ListSegments(Options().dir)->size(), 1u);
  EXPECT_EQ(ReadFile(SegmentPath(0)), before);  // nothing written

  AuditOptions o = Options();
  o.new_key = true;
  o.create_key_if_missing = false;  // the explicit request is enough
  Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  Fill(**log, 6);
  ASSERT_TRUE((*log)->Close().ok());
  Result<detail::CheckpointKey> fresh = detail::CheckpointKey::LoadPublic(pub);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  ASSERT_NE(fresh->key_id(), old->key_id());
  // The old public half is kept under its own name, for the segments it signed.
  const std::string kept = key + "." + old->key_id().substr(0, 16) + ".pub.pem";
  ASSERT_TRUE(detail::CheckpointKey::LoadPublic(kept).ok());
  EXPECT_EQ(detail::CheckpointKey::LoadPublic(kept)->key_id(), old->key_id());

  // The new segment: its header, then the record naming both keys, before any new checkpoint.
  auto segs = ListSegments(Options().dir);
  ASSERT_EQ(segs->size(), 2u);
  std::vector<std::string> lines = Lines(SegmentPath(1));
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(detail::ParseLine(lines[0])->event, "segment_start");
  Result<detail::ParsedLine> rec = detail::ParseLine(lines[1]);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->event, "checkpoint_key_new");
  EXPECT_NE(lines[1].find("old key_id=" + old->key_id()), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("new key_id=" + fresh->key_id()), std::string::npos) << lines[1];

  // The new key verifies the trail from the new segment on; the old key the segment before it,
  // and nothing signed by the new key.
  VerifyOptions v;
  v.dir = Options().dir;
  v.public_key_file = pub;
  v.from_segment = (*segs)[1].first;
  Result<VerifyReport> after = VerifyLog(v);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->ok) << after->reason;
  EXPECT_GE(after->checkpoints, 1u);
  EXPECT_EQ(after->unprotected, 0u);
  v.from_segment = 0;
  Result<VerifyReport> whole = VerifyLog(v);
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->ok);  // the first segment's checkpoints are the old key's
  EXPECT_NE(whole->reason.find("unknown key " + old->key_id()), std::string::npos) << whole->reason;
  v.public_key_file = kept;
  whole = VerifyLog(v);
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->ok);
  EXPECT_NE(whole->reason.find("unknown key " + fresh->key_id()), std::string::npos)
      << whole->reason;
  EXPECT_GT(whole->first_bad_seq, (*segs)[1].first);

  // Reopened with the new key present: no second record, new_key or not.
  Result<std::unique_ptr<AuditLog>> again = AuditLog::Open(o);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->Close().ok());
  EXPECT_EQ(ReadFile(SegmentPath(2)).find("checkpoint_key_new"), std::string::npos);
}

// A P-256 key pair in software, standing in for an HSM key or a replacement key file.
struct SoftwareKey {
  SoftwareKey() : key(EVP_EC_gen("P-256"), EVP_PKEY_free) {}
  Bytes Spki() const {
    unsigned char* der = nullptr;
    int n = i2d_PUBKEY(key.get(), &der);
    Bytes out(der, der + std::max(n, 0));
    OPENSSL_free(der);
    return out;
  }
  // DER ECDSA signature of a digest, as hsm::Signer returns it.
  Result<Bytes> SignDigest(ByteSpan digest) const {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
        EVP_PKEY_CTX_new(key.get(), nullptr), &EVP_PKEY_CTX_free);
    std::size_t len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1) {
      return InternalError("sign");
    }
    Bytes sig(len);
    if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) != 1) {
      return InternalError("sign");
    }
    sig.resize(len);
    return sig;
  }
  void WritePem(const std::string& path, bool is_private) const {
    std::filesystem::remove(path);
    BIO* bio = BIO_new_file(path.c_str(), "w");
    ASSERT_NE(bio, nullptr);
    if (is_private) {
      ASSERT_EQ(PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
    } else {
      ASSERT_EQ(PEM_write_bio_PUBKEY(bio, key.get()), 1);
    }
    BIO_free(bio);
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  std::string KeyId() const { return Sha256Hex(Spki()); }
  std::shared_ptr<EVP_PKEY> key;
};

// A key file replaced by another key (the public half too) is not taken silently either: the
// newest segment's header names the key the trail was signed with.
TEST_F(AuditLogTest, AnotherCheckpointKeyThanTheTrailsIsRefusedUnlessANewKeyIsAskedFor) {
  WriteLog(7);
  const std::string key = Options().checkpoint_key_file;
  Result<detail::CheckpointKey> old = detail::CheckpointKey::LoadPublic(key + ".pub.pem");
  ASSERT_TRUE(old.ok()) << old.status();
  SoftwareKey other;
  other.WritePem(key, true);
  other.WritePem(key + ".pub.pem", false);
  const std::string before = ReadFile(SegmentPath(0));

  Result<std::unique_ptr<AuditLog>> refused = AuditLog::Open(Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);  // qseald: exit 78
  EXPECT_NE(refused.status().message().find("(key_id " + other.KeyId() + ") is not the one"),
            std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("(key_id " + old->key_id() + ")"), std::string::npos);
  EXPECT_EQ(ListSegments(Options().dir)->size(), 1u);
  EXPECT_EQ(ReadFile(SegmentPath(0)), before);

  AuditOptions o = Options();
  o.new_key = true;
  Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  Fill(**log, 6);
  ASSERT_TRUE((*log)->Close().ok());
  std::vector<std::string> lines = Lines(SegmentPath(1));
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(detail::ParseLine(lines[1])->event, "checkpoint_key_new");
  EXPECT_NE(lines[1].find("old key_id=" + old->key_id() + "; new key_id=" + other.KeyId()),
            std::string::npos)
      << lines[1];
  // From then on the replacement is the trail's key.
  Result<std::unique_ptr<AuditLog>> again = AuditLog::Open(Options());
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->Close().ok());
}

// The checkpoint key in an HSM: checkpoints are signed through the function; while it fails the
// records are still written and the checkpoint is left out, then made once it answers, covering
// them. A signature that the public key does not verify is never written.
TEST_F(AuditLogTest, HsmCheckpointKeySignsThroughItsFunctionAndSkipsWhileItFails) {
  SoftwareKey hsm_key, wrong_key;
  std::atomic<bool> down{false}, wrong{false};
  std::atomic<int> calls{0};
  AuditOptions o = Options();
  o.checkpoint_key_file.clear();
  o.create_key_if_missing = false;
  o.checkpoint_public_key_der = hsm_key.Spki();
  o.checkpoint_signer = [&](ByteSpan digest) -> Result<Bytes> {
    ++calls;
    if (down) return UnavailableError("CKR_DEVICE_ERROR");
    return (wrong ? wrong_key : hsm_key).SignDigest(digest);
  };
  Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_FALSE(std::filesystem::exists(Options().checkpoint_key_file));

  Fill(**log, 6);  // a checkpoint after 5 records
  EXPECT_EQ((*log)->Stats().checkpoints, 1u);
  down = true;
  Fill(**log, 6);  // due again, but the HSM is down: records written, checkpoint skipped
  AuditStats st = (*log)->Stats();
  EXPECT_EQ(st.checkpoints, 1u);
  EXPECT_GE(st.checkpoints_skipped, 1u);
  EXPECT_EQ(st.failures, 0u);
  EXPECT_TRUE((*log)->Health().ok());
  wrong = true;
  down = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past retry_interval
  Fill(**log, 3);  // signed by another key: not verifiable, so not written
  EXPECT_EQ((*log)->Stats().checkpoints, 1u);
  wrong = false;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Fill(**log, 3);
  EXPECT_EQ((*log)->Stats().checkpoints, 2u);
  ASSERT_TRUE((*log)->Close().ok());
  EXPECT_GE(calls.load(), 4);

  const std::string pub = dir_.path().string() + "/hsm-key.pub.pem";
  hsm_key.WritePem(pub, false);
  VerifyOptions v;
  v.dir = Options().dir;
  v.public_key_file = pub;
  Result<VerifyReport> r = VerifyLog(v);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok) << r->reason;
  EXPECT_EQ(r->checkpoints, 2u);  // the last one covers every record after the first
  EXPECT_EQ(r->unprotected, 0u);
  for (const std::string& line : Lines(SegmentPath(0))) {
    EXPECT_EQ(line.find(wrong_key.KeyId()), std::string::npos) << line;
  }

  // Another HSM key under the same trail is refused as a replaced file is.
  SoftwareKey next;
  o.checkpoint_public_key_der = next.Spki();
  Result<std::unique_ptr<AuditLog>> refused = AuditLog::Open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("is not the one"), std::string::npos)
      << refused.status();
}

// A fresh trail (no segment) still creates the key, as it always did.
TEST_F(AuditLogTest, FreshTrailCreatesTheCheckpointKey) {
  Result<std::unique_ptr<AuditLog>> log = AuditLog::Open(Options());
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_TRUE((*log)->Close().ok());
  EXPECT_TRUE(std::filesystem::exists(Options().checkpoint_key_file));
  EXPECT_EQ(ReadFile(SegmentPath(0)).find("checkpoint_key_new"), std::string::npos);
  EXPECT_TRUE(Verify().ok);
}

TEST_F(AuditLogTest, TornTailOfACrashIsAbandonedOnReopen) {
  WriteLog(4);
  std::string path = SegmentPath(0);
  std::ofstream(path, std::ios::app) << "{\"seq\":99,\"time\":\"20";
  EXPECT_FALSE(Verify().ok);  // last segment torn: reported until the writer moves on
  WriteLog(4);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.abandoned, 1u);
}

TEST_F(AuditLogTest, ReservedZeroTailIsNotATornRecord) {
  WriteLog(4);
  std::string path = SegmentPath(0);
  std::ofstream(path, std::ios::app) << std::string(5000, '\0');  // as a crash before the trim
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.reason;
  WriteLog(4);
  r = Verify();
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.abandoned, 0u);
}

// Fail closed: a full file system stops appends (kUnavailable, unhealthy) and the log resumes in
// a new segment once space is back. Needs root for a small tmpfs.
TEST_F(AuditLogTest, FullDiskFailsClosedAndRecovers) {
  AuditOptions o = Options();
  std::filesystem::create_directories(o.dir);
  if (::mount("tmpfs", o.dir.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  }
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{o.dir};
  auto log = AuditLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status();
  Fill(**log, 6);
  {
    std::ofstream filler(o.dir + "/filler", std::ios::binary);
    std::string block(4096, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size())) &&
           filler.flush()) {
    }
  }
  // More than the page left in the segment's last block, so the write itself must fail.
  std::vector<Entry> group(64, EventEntry(Event::kSignIntent, "x"));
  Status s = (*log)->Append(std::move(group));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s;
  EXPECT_FALSE((*log)->Health().ok());
  EXPECT_EQ((*log)->Append({EventEntry(Event::kStartup)}).code(),
            StatusCode::kUnavailable);  // until recovered
  std::filesystem::remove(o.dir + "/filler");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!(*log)->Health().ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE((*log)->Health().ok());
  Fill(**log, 6);
  ASSERT_TRUE((*log)->Close().ok());
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.reason << " at " << r.first_bad_seq;
  EXPECT_GE(r.segments, 2u);
}

}  // namespace
}  // namespace qseal::audit
