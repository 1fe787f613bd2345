// Unit tests of formats/cades with software keys (no HSM): encoding details, determinism,
// streaming, errors, and Verify's reasons. The HSM matrix and the openssl cross-checks are in
// cades_hsm_test.cc.
#include "formats/cades/cades.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "formats/cades/detail/der.h"
#include "formats/cades/verify.h"
#include "tests/formats/cades_test_util.h"

namespace qseal::formats::cades {
namespace {

using namespace std::chrono_literals;
using formats::testing::CertSpec;
using formats::testing::GenerateKey;
using formats::testing::IssueCertificate;
using formats::testing::kSigningTime;
using formats::testing::MakePki;
using formats::testing::Pki;
using formats::testing::SoftwareSigner;
using formats::testing::SpanReader;
using std::chrono::system_clock;

Bytes Sha(DigestAlgorithm d, std::string_view s) {
  Bytes out(DigestSize(d));
  unsigned int len = 0;
  const EVP_MD* md = d == DigestAlgorithm::kSha256   ? EVP_sha256()
                     : d == DigestAlgorithm::kSha384 ? EVP_sha384()
                                                     : EVP_sha512();
  EVP_Digest(s.data(), s.size(), out.data(), &len, md, nullptr);
  return out;
}

std::shared_ptr<const SignerContext> Context(const Pki& pki, DigestAlgorithm d, SignatureScheme s) {
  auto ctx = SignerContext::Create({pki.leaf.certificate_der, pki.ca.certificate_der}, d, s);
  EXPECT_TRUE(ctx.ok()) << ctx.status();
  return ctx.ok() ? *ctx : nullptr;
}

std::map<std::string, Check> ByName(const VerifyReport& r) {
  std::map<std::string, Check> m;
  for (const Check& c : r.checks) m[c.name] = c;
  return m;
}

std::string Describe(const VerifyReport& r) {
  std::string s;
  for (const Check& c : r.checks) s += c.name + (c.ok ? " ok: " : " FAILED: ") + c.detail + "\n";
  return s;
}

bool Contains(ByteSpan haystack, ByteSpan needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

Bytes SealDetached(const SignerContext& ctx, const Pki& pki, std::string_view content,
                   system_clock::time_point t = kSigningTime) {
  auto tbs = BuildToBeSigned(ctx, Sha(ctx.digest(), content), t);
  EXPECT_TRUE(tbs.ok()) << tbs.status();
  Bytes sig =
      formats::testing::SoftwareSign(pki.leaf.key.get(), tbs->digest, ctx.digest(), ctx.scheme());
  EXPECT_TRUE(ctx.VerifySignature(tbs->signed_attributes_der, sig).ok());
  auto seal = AssembleDetached(ctx, *tbs, sig);
  EXPECT_TRUE(seal.ok()) << seal.status();
  return *seal;
}

Result<VerifyReport> VerifyDetached(ByteSpan seal, std::string_view content, const Pki& pki,
                                    VerifyOptions options = {}) {
  if (!options.validation_time) options.validation_time = kSigningTime;
  return Verify(seal, SpanReader(AsBytes(content)), {pki.ca.certificate_der}, options);
}

TEST(CadesTest, DetachedSealVerifiesWithEveryCheckHeld) {
  for (auto [key, scheme, digest] :
       {std::tuple{"ec-p256", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256},
        std::tuple{"ec-p384", SignatureScheme::kEcdsa, DigestAlgorithm::kSha384},
        std::tuple{"ec-p256", SignatureScheme::kEcdsa, DigestAlgorithm::kSha512},
        std::tuple{"rsa-2048", SignatureScheme::kRsaPkcs1v15, DigestAlgorithm::kSha256},
        std::tuple{"rsa-2048", SignatureScheme::kRsaPss, DigestAlgorithm::kSha384}}) {
    SCOPED_TRACE(std::string(key) + " " + std::string(SchemeName(scheme)) + " " +
                 std::string(DigestName(digest)));
    Pki pki = MakePki(key);
    auto ctx = Context(pki, digest, scheme);
    ASSERT_NE(ctx, nullptr);
    Bytes seal = SealDetached(*ctx, pki, "hello, invoice");
    auto report = VerifyDetached(seal, "hello, invoice", pki);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->ok) << Describe(*report);
    EXPECT_EQ(report->format, "cades-detached");
    EXPECT_EQ(report->signing_time, kSigningTime);
    EXPECT_EQ(report->signer_certificate_der, pki.leaf.certificate_der);
    auto checks = ByName(*report);
    for (const char* name :
         {"structure", "signer-certificate", "content-type", "message-digest", "signing-time",
          "signing-certificate-v2", "signature", "chain", "key-usage"}) {
      ASSERT_TRUE(checks.count(name)) << name;
      EXPECT_TRUE(checks[name].ok) << name << ": " << checks[name].detail;
    }
  }
}

TEST(CadesTest, OutputIsByteForByteDeterministic) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto a = BuildToBeSigned(*ctx, Sha(DigestAlgorithm::kSha256, "x"), kSigningTime);
  auto b = BuildToBeSigned(*ctx, Sha(DigestAlgorithm::kSha256, "x"), kSigningTime + 999ms);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->signed_attributes_der, b->signed_attributes_der);
  EXPECT_EQ(a->digest, b->digest);
  Bytes sig = formats::testing::SoftwareSign(pki.leaf.key.get(), a->digest,
                                             DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto s1 = AssembleDetached(*ctx, *a, sig);
  auto ctx2 = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto s2 = AssembleDetached(*ctx2, *b, sig);
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(*s1, *s2);
}

TEST(CadesTest, SignedAttributesAreTheFourBBAttributesInDerOrder) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  Bytes digest = Sha(DigestAlgorithm::kSha256, "abc");
  auto tbs = BuildToBeSigned(*ctx, digest, kSigningTime);
  ASSERT_TRUE(tbs.ok());
  EXPECT_EQ(tbs->content_digest, digest);
  detail::Reader top(tbs->signed_attributes_der);
  auto set = top.Expect(detail::kTagSet, "set");
  ASSERT_TRUE(set.ok());
  EXPECT_TRUE(top.empty());
  detail::Reader r(set->value);
  std::vector<std::string> oids;
  Bytes previous;
  while (!r.empty()) {
    auto attr = r.Next();
    ASSERT_TRUE(attr.ok());
    Bytes whole(attr->whole.begin(), attr->whole.end());
    EXPECT_LT(previous, whole);  // DER SET OF order
    previous = whole;
    detail::Reader a(attr->value);
    auto oid = a.Next();
    ASSERT_TRUE(oid.ok());
    oids.push_back(detail::OidToString(oid->value));
  }
  std::sort(oids.begin(), oids.end());
  EXPECT_EQ(oids, (std::vector<std::string>{"1.2.840.113549.1.9.16.2.47", "1.2.840.113549.1.9.3",
                                            "1.2.840.113549.1.9.4", "1.2.840.113549.1.9.5"}));
  // message-digest carries the content digest; the DTBS/R is the digest of the SET.
  Bytes md_value = {0x04, 0x20};
  md_value.insert(md_value.end(), digest.begin(), digest.end());
  EXPECT_TRUE(Contains(tbs->signed_attributes_der, md_value));
  EXPECT_EQ(tbs->digest, Sha(DigestAlgorithm::kSha256, AsChars(tbs->signed_attributes_der)));
}

TEST(CadesTest, SigningTimeIsUtcTimeUntil2049AndGeneralizedTimeFrom2050) {
  CertSpec spec;
  spec.not_before =
      system_clock::time_point(std::chrono::sys_days(std::chrono::year{2040} / 1 / 1));
  spec.not_after = system_clock::time_point(std::chrono::sys_days(std::chrono::year{2060} / 1 / 1));
  Pki pki = MakePki("ec-p256", spec);
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto last_utc =
      system_clock::time_point(std::chrono::sys_days(std::chrono::year{2050} / 1 / 1)) - 1s;
  auto first_gen = last_utc + 1s;
  auto a = BuildToBeSigned(*ctx, Sha(DigestAlgorithm::kSha256, ""), last_utc + 500ms);
  auto b = BuildToBeSigned(*ctx, Sha(DigestAlgorithm::kSha256, ""), first_gen);
  ASSERT_TRUE(a.ok() && b.ok());
  std::string utc =
      "\x17\x0d"
      "491231235959Z";
  std::string gen =
      "\x18\x0f"
      "20500101000000Z";
  EXPECT_TRUE(Contains(a->signed_attributes_der, AsBytes(utc)));
  EXPECT_TRUE(Contains(b->signed_attributes_der, AsBytes(gen)));
  EXPECT_EQ(a->signing_time, last_utc);

  for (auto t : {last_utc, first_gen}) {
    Bytes seal = SealDetached(*ctx, pki, "2050", t);
    VerifyOptions options;
    options.validation_time = t;
    auto report = VerifyDetached(seal, "2050", pki, options);
    ASSERT_TRUE(report.ok());
    EXPECT_TRUE(report->ok) << Describe(*report);
    EXPECT_EQ(report->signing_time, t);
  }
}

TEST(CadesTest, SigningTimeOutsideCertificateValidityIsRefused) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  Bytes d = Sha(DigestAlgorithm::kSha256, "");
  auto before = BuildToBeSigned(*ctx, d, ctx->not_before() - 1s);
  auto after = BuildToBeSigned(*ctx, d, ctx->not_after() + 1s);
  EXPECT_EQ(before.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(after.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(BuildToBeSigned(*ctx, d, ctx->not_before()).ok());
}

TEST(CadesTest, WrongDigestLengthIsInvalidArgument) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha384, SignatureScheme::kEcdsa);
  auto tbs = BuildToBeSigned(*ctx, Sha(DigestAlgorithm::kSha256, ""), kSigningTime);
  EXPECT_EQ(tbs.status().code(), StatusCode::kInvalidArgument);
}

TEST(CadesTest, CreateRefusesUnfitCertificates) {
  Pki ec = MakePki("ec-p256");
  auto rsa_on_ec = SignerContext::Create({ec.leaf.certificate_der}, DigestAlgorithm::kSha256,
                                         SignatureScheme::kRsaPss);
  EXPECT_EQ(rsa_on_ec.status().code(), StatusCode::kInvalidArgument);

  CertSpec enc_only;
  enc_only.key_usage = "critical,keyAgreement";
  Pki enc = MakePki("ec-p256", enc_only);
  auto ku = SignerContext::Create({enc.leaf.certificate_der}, DigestAlgorithm::kSha256,
                                  SignatureScheme::kEcdsa);
  EXPECT_EQ(ku.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ku.status().message().find("keyUsage"), std::string::npos);

  EXPECT_EQ(
      SignerContext::Create({}, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(SignerContext::Create({Bytes{0x30, 0x03, 0x02, 0x01, 0x01}}, DigestAlgorithm::kSha256,
                                  SignatureScheme::kEcdsa)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(CadesTest, EnvelopingSealHasAnnouncedSizeAndVerifies) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  for (std::size_t size : {0u, 1u, 127u, 128u, 255u, 256u, 65535u, 65536u, 200000u}) {
    SCOPED_TRACE(size);
    Bytes content(size);
    formats::testing::PseudoRandomStream(size).Fill(content);
    auto tbs = BuildToBeSigned(*ctx, Sha(DigestAlgorithm::kSha256, AsChars(content)), kSigningTime);
    ASSERT_TRUE(tbs.ok());
    Bytes sig = formats::testing::SoftwareSign(pki.leaf.key.get(), tbs->digest,
                                               DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
    Bytes out;
    int writes = 0;
    Status s = AssembleEnveloping(*ctx, *tbs, sig, size, SpanReader(content), [&](ByteSpan piece) {
      out.insert(out.end(), piece.begin(), piece.end());
      ++writes;
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(out.size(), EnvelopingSealSize(*ctx, *tbs, sig.size(), size));
    EXPECT_TRUE(Contains(out, content));
    VerifyOptions options;
    options.validation_time = kSigningTime;
    auto report = Verify(out, std::nullopt, {pki.ca.certificate_der}, options);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->ok) << Describe(*report);
    EXPECT_EQ(report->format, "cades-enveloping");
    // Detached and enveloping share everything but eContent.
    auto detached = AssembleDetached(*ctx, *tbs, sig);
    ASSERT_TRUE(detached.ok());
    EXPECT_LT(detached->size(), out.size());
  }
}

TEST(CadesTest, EnvelopingRefusesContentThatDiffersFromWhatWasSigned) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  std::string content = "the invoice as hashed";
  auto tbs = BuildToBeSigned(*ctx, Sha(DigestAlgorithm::kSha256, content), kSigningTime);
  ASSERT_TRUE(tbs.ok());
  Bytes sig = formats::testing::SoftwareSign(pki.leaf.key.get(), tbs->digest,
                                             DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto sink = [](ByteSpan) { return Status::Ok(); };
  std::string changed = "the invoice AS hashed";
  EXPECT_EQ(AssembleEnveloping(*ctx, *tbs, sig, changed.size(), SpanReader(AsBytes(changed)), sink)
                .code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(
      AssembleEnveloping(*ctx, *tbs, sig, content.size() + 1, SpanReader(AsBytes(content)), sink)
          .code(),
      StatusCode::kDataLoss);
  EXPECT_EQ(
      AssembleEnveloping(*ctx, *tbs, sig, content.size() - 1, SpanReader(AsBytes(content)), sink)
          .code(),
      StatusCode::kDataLoss);
  Status write_error =
      AssembleEnveloping(*ctx, *tbs, sig, content.size(), SpanReader(AsBytes(content)),
                         [](ByteSpan) { return UnavailableError("disk full"); });
  EXPECT_EQ(write_error, UnavailableError("disk full"));
  EXPECT_EQ(AssembleDetached(*ctx, *tbs, {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(CadesTest, VerifyReportsTamperedContent) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  Bytes seal = SealDetached(*ctx, pki, "pay 100 EUR");
  auto report = VerifyDetached(seal, "pay 900 EUR", pki);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  auto checks = ByName(*report);
  EXPECT_FALSE(checks["message-digest"].ok);
  EXPECT_NE(checks["message-digest"].detail.find("content altered"), std::string::npos);
  EXPECT_TRUE(checks["signature"].ok);  // the attributes themselves are intact
}

TEST(CadesTest, VerifyReportsFlippedSignatureByte) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  Bytes seal = SealDetached(*ctx, pki, "doc");
  // The signature OCTET STRING is the last element; flip a byte inside the ECDSA r value.
  seal[seal.size() - 10] ^= 0x01;
  auto report = VerifyDetached(seal, "doc", pki);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  auto checks = ByName(*report);
  EXPECT_FALSE(checks["signature"].ok);
  EXPECT_NE(checks["signature"].detail.find("does not verify"), std::string::npos);
  EXPECT_TRUE(checks["message-digest"].ok);
}

TEST(CadesTest, VerifyReportsWrongCertificateAndUntrustedChain) {
  Pki pki = MakePki("ec-p256");
  Pki other = MakePki("ec-p256");
  // The seal names `other`'s certificate but is signed with pki's key.
  auto wrong_ctx = SignerContext::Create({other.leaf.certificate_der, other.ca.certificate_der},
                                         DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  ASSERT_TRUE(wrong_ctx.ok());
  auto tbs = BuildToBeSigned(**wrong_ctx, Sha(DigestAlgorithm::kSha256, "doc"), kSigningTime);
  ASSERT_TRUE(tbs.ok());
  Bytes sig = formats::testing::SoftwareSign(pki.leaf.key.get(), tbs->digest,
                                             DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  EXPECT_FALSE((*wrong_ctx)->VerifySignature(tbs->signed_attributes_der, sig).ok());
  auto seal = AssembleDetached(**wrong_ctx, *tbs, sig);
  ASSERT_TRUE(seal.ok());
  auto report = VerifyDetached(*seal, "doc", other);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_FALSE(ByName(*report)["signature"].ok);

  // A good seal against an unrelated trust anchor.
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  Bytes good = SealDetached(*ctx, pki, "doc");
  auto untrusted = VerifyDetached(good, "doc", other);
  ASSERT_TRUE(untrusted.ok());
  EXPECT_FALSE(untrusted->ok);
  auto chain = ByName(*untrusted)["chain"];
  EXPECT_FALSE(chain.ok);
  EXPECT_FALSE(chain.detail.empty());
}

TEST(CadesTest, VerifyReportsExpiredChainAtValidationTime) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  Bytes seal = SealDetached(*ctx, pki, "doc", system_clock::now());
  VerifyOptions later;
  later.validation_time = ctx->not_after() + 24h;
  auto report = VerifyDetached(seal, "doc", pki, later);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_NE(ByName(*report)["chain"].detail.find("expired"), std::string::npos);
}

TEST(CadesTest, VerifyReportsDuplicatedAndMissingAttributes) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto tbs = BuildToBeSigned(*ctx, Sha(DigestAlgorithm::kSha256, "doc"), kSigningTime);
  ASSERT_TRUE(tbs.ok());
  detail::Reader top(tbs->signed_attributes_der);
  auto set = top.Next();
  ASSERT_TRUE(set.ok());
  // Rebuild the SET without signing-time and with content-type twice, re-sign and assemble.
  detail::Reader r2(set->value);
  std::vector<Bytes> kept;
  while (!r2.empty()) {
    auto e = r2.Next();
    Bytes whole(e->whole.begin(), e->whole.end());
    detail::Reader a(e->value);
    std::string oid = detail::OidToString(a.Next()->value);
    if (oid == "1.2.840.113549.1.9.5") continue;
    kept.push_back(whole);
    if (oid == "1.2.840.113549.1.9.3") kept.push_back(whole);
  }
  std::vector<ByteSpan> spans(kept.begin(), kept.end());
  ToBeSigned forged = *tbs;
  forged.signed_attributes_der = detail::SetOf(detail::kTagSet, spans);
  forged.digest = Sha(DigestAlgorithm::kSha256, AsChars(forged.signed_attributes_der));
  Bytes sig = formats::testing::SoftwareSign(pki.leaf.key.get(), forged.digest,
                                             DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto seal = AssembleDetached(*ctx, forged, sig);
  ASSERT_TRUE(seal.ok());
  auto report = VerifyDetached(*seal, "doc", pki);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  auto checks = ByName(*report);
  EXPECT_FALSE(checks["content-type"].ok);
  EXPECT_NE(checks["content-type"].detail.find("2 times"), std::string::npos);
  EXPECT_FALSE(checks["signing-time"].ok);
  EXPECT_NE(checks["signing-time"].detail.find("0 times"), std::string::npos);
  EXPECT_TRUE(checks["signature"].ok);
}

TEST(CadesTest, VerifyRejectsGarbageAndMissingContent) {
  Pki pki = MakePki("ec-p256");
  auto report = Verify(AsBytes("not a seal"), SpanReader({}), {pki.ca.certificate_der});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->checks.front().name, "structure");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  Bytes seal = SealDetached(*ctx, pki, "doc");
  EXPECT_EQ(Verify(seal, std::nullopt, {pki.ca.certificate_der}).status().code(),
            StatusCode::kInvalidArgument);
  // Every truncation is reported, never crashes.
  for (std::size_t n = 0; n < seal.size(); n += 7) {
    auto r = Verify(ByteSpan(seal.data(), n), SpanReader(AsBytes("doc")), {pki.ca.certificate_der});
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->ok);
  }
}

TEST(CadesTest, OneContextIsSharedByConcurrentThreads) {
  Pki pki = MakePki("ec-p256");
  auto ctx = Context(pki, DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  Bytes digest = Sha(DigestAlgorithm::kSha256, "shared");
  auto tbs = BuildToBeSigned(*ctx, digest, kSigningTime);
  ASSERT_TRUE(tbs.ok());
  Bytes sig = formats::testing::SoftwareSign(pki.leaf.key.get(), tbs->digest,
                                             DigestAlgorithm::kSha256, SignatureScheme::kEcdsa);
  auto expected = AssembleDetached(*ctx, *tbs, sig);
  ASSERT_TRUE(expected.ok());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto local = BuildToBeSigned(*ctx, digest, kSigningTime);
        if (!local.ok() || !ctx->VerifySignature(local->signed_attributes_der, sig).ok()) {
          ++mismatches;
          continue;
        }
        auto seal = AssembleDetached(*ctx, *local, sig);
        if (!seal.ok() || *seal != *expected) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(DerTest, LengthsAndOids) {
  EXPECT_EQ(detail::HeaderSize(0), 2u);
  EXPECT_EQ(detail::HeaderSize(127), 2u);
  EXPECT_EQ(detail::HeaderSize(128), 3u);
  EXPECT_EQ(detail::HeaderSize(65536), 5u);
  EXPECT_EQ(detail::HeaderSize(std::uint64_t{1} << 30), 6u);
  Bytes h;
  detail::AppendHeader(h, 0x04, 1u << 30);
  EXPECT_EQ(HexEncode(h), "048440000000");
  EXPECT_EQ(HexEncode(detail::Oid("1.2.840.113549.1.9.16.2.47")), "060b2a864886f70d010910022f");
  EXPECT_EQ(detail::OidToString(ByteSpan(detail::Oid("2.16.840.1.101.3.4.2.1")).subspan(2)),
            "2.16.840.1.101.3.4.2.1");
  EXPECT_EQ(HexEncode(detail::SmallInteger(128)), "02020080");
  Bytes indefinite = {0x30, 0x80, 0x00, 0x00};
  EXPECT_FALSE(detail::Reader(indefinite).Next().ok());
  Bytes non_minimal = {0x04, 0x81, 0x01, 0x00};
  EXPECT_FALSE(detail::Reader(non_minimal).Next().ok());
}

}  // namespace
}  // namespace qseal::formats::cades
