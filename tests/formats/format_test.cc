// formats::Format (the CAdES formats made by CreateFormat) and formats::VerifySeal, with software
// keys: Prepare + Assemble of every name, each seal checked by our verifier and by `openssl cms`.
#include "formats/format.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/sha256.h"
#include "formats/verify.h"
#include "tests/formats/cades_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::formats {
namespace {

using namespace std::chrono_literals;
using formats::testing::kSigningTime;
using formats::testing::MakePki;
using formats::testing::Pki;
using formats::testing::SpanReader;
using qseal::testing::ShellQuote;
using std::chrono::system_clock;

// Options for a CAdES format over `pki`'s chain.
FormatOptions OptionsFor(const Pki& pki, DigestAlgorithm digest = DigestAlgorithm::kSha256,
                         SignatureScheme scheme = SignatureScheme::kEcdsa) {
  FormatOptions options;
  options.certificate_chain_der = {pki.leaf.certificate_der, pki.ca.certificate_der};
  options.digest = digest;
  options.scheme = scheme;
  return options;
}

Content MemoryContent(const std::string& data, std::string name) {
  Content c;
  c.size = data.size();
  c.name = std::move(name);
  c.open = [&data]() -> Result<ReadFn> { return SpanReader(AsBytes(data)); };
  c.read_chunk_bytes = 7;  // many reads, so the streaming loop is exercised
  return c;
}

TEST(FormatTest, NamesAreTheCadesAndXadesPackagingsAndPades) {
  std::vector<std::string_view> names = FormatNames();
  ASSERT_EQ(names.size(), 5u);
  EXPECT_EQ(names[0], "cades-detached");
  EXPECT_EQ(names[1], "cades-enveloping");
  EXPECT_EQ(names[2], "xades-enveloped");
  EXPECT_EQ(names[3], "xades-detached");
  EXPECT_EQ(names[4], "pades");
}

TEST(FormatTest, UnknownNameFailsListingTheKnownOnes) {
  Pki pki = MakePki("ec-p256");
  FormatOptions options = OptionsFor(pki);
  auto f = CreateFormat("pades-incremental", options);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("pades-incremental"), std::string::npos) << f.status();
  for (std::string_view n : FormatNames()) {
    EXPECT_NE(f.status().message().find(n), std::string::npos) << f.status();
  }
}

TEST(FormatTest, BadChainFailsAsInvalidArgument) {
  FormatOptions options;
  options.certificate_chain_der = {Bytes{0x30, 0x00}};
  auto f = CreateFormat("cades-detached", options);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
}

TEST(FormatTest, PropertiesAndOutputNames) {
  Pki pki = MakePki("ec-p256");
  FormatOptions options = OptionsFor(pki);
  auto d = CreateFormat("cades-detached", options);
  auto e = CreateFormat("cades-enveloping", options);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*d)->name(), "cades-detached");
  EXPECT_EQ((*d)->media_type(), "application/pkcs7-signature");
  EXPECT_FALSE((*d)->embeds_document());
  EXPECT_EQ((*d)->OutputName("invoice.xml"), "invoice.xml.p7s");
  EXPECT_EQ((*e)->name(), "cades-enveloping");
  EXPECT_EQ((*e)->media_type(), "application/pkcs7-mime");
  EXPECT_TRUE((*e)->embeds_document());
  EXPECT_EQ((*e)->OutputName("invoice.xml"), "invoice.xml.p7m");
  EXPECT_EQ((*d)->OutputName(""), "document.p7s");
  EXPECT_EQ((*d)->OutputName("../etc/passwd"), "document.p7s");
  EXPECT_EQ((*e)->OutputName(".hidden"), "document.p7m");
}

TEST(FormatTest, PrepareAndAssembleEveryNameVerifiesWithUsAndOpenssl) {
  for (auto [key, scheme, digest] :
       {std::tuple{"ec-p256", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256},
        std::tuple{"rsa-2048", SignatureScheme::kRsaPss, DigestAlgorithm::kSha384}}) {
    Pki pki = MakePki(key);
    qseal::testing::TempDir tmp;
    std::string ca_pem = tmp.Sub("ca.pem");
    qseal::testing::WriteFile(ca_pem, formats::testing::CertificateToPem(pki.ca.certificate_der));
    const std::string doc = "hello, invoice: streamed in small pieces";
    qseal::testing::WriteFile(tmp.Sub("doc.txt"), doc);
    FormatOptions options = OptionsFor(pki, digest, scheme);
    // The XAdES names have their own test (xades_test.cc: XML documents, xmlsec1).
    for (std::string_view name : {"cades-detached", "cades-enveloping"}) {
      SCOPED_TRACE(std::string(key) + " " + std::string(name));
      auto format = CreateFormat(name, options);
      ASSERT_TRUE(format.ok()) << format.status();
      Content content = MemoryContent(doc, "doc.txt");
      auto tbs = (*format)->Prepare(content, kSigningTime + 250ms);
      ASSERT_TRUE(tbs.ok()) << tbs.status();
      EXPECT_EQ((*tbs)->signing_time, kSigningTime);
      auto content_digest = Digest(digest, AsBytes(doc));
      ASSERT_TRUE(content_digest.ok());
      EXPECT_EQ((*tbs)->content_digest, *content_digest);
      EXPECT_EQ((*tbs)->digest.size(), DigestSize(digest));
      Bytes sig =
          formats::testing::SoftwareSign(pki.leaf.key.get(), (*tbs)->digest, digest, scheme);
      Bytes seal;
      Status s = (*format)->Assemble(**tbs, sig, content, [&seal](ByteSpan piece) {
        seal.insert(seal.end(), piece.begin(), piece.end());
        return Status::Ok();
      });
      ASSERT_TRUE(s.ok()) << s;
      std::uint64_t hint = (*format)->OutputSizeHint(**tbs, sig.size(), doc.size());
      if ((*format)->embeds_document()) {
        EXPECT_EQ(hint, seal.size());
      }

      VerifyOptions vo;
      vo.validation_time = kSigningTime;
      std::optional<ReadFn> detached;
      if (!(*format)->embeds_document()) detached = SpanReader(AsBytes(doc));
      auto report = VerifySeal(seal, detached, {pki.ca.certificate_der}, vo);
      ASSERT_TRUE(report.ok()) << report.status();
      EXPECT_TRUE(report->ok);
      EXPECT_EQ(report->format, name);

      std::string seal_path = tmp.Sub((*format)->OutputName("doc.txt"));
      formats::testing::WriteBinaryFile(seal_path, seal);
      std::string cmd = "openssl cms -verify -binary -inform DER -in " + ShellQuote(seal_path) +
                        " -CAfile " + ShellQuote(ca_pem) + " -attime " +
                        std::to_string(system_clock::to_time_t(kSigningTime)) + " -out " +
                        ShellQuote(tmp.Sub("out.txt"));
      if (!(*format)->embeds_document()) cmd += " -content " + ShellQuote(tmp.Sub("doc.txt"));
      auto r = qseal::testing::RunCommand(cmd);
      EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
      EXPECT_EQ(qseal::testing::ReadFile(tmp.Sub("out.txt")), doc);
    }
  }
}

// Digest-only sealing: cades-detached signs over the submitter's digest without reading the
// document, and the seal is the one hashing the document gives; it verifies against the document.
TEST(FormatTest, DetachedUsesAPrecomputedDigestWithoutReadingTheContent) {
  for (auto [key, scheme, digest] :
       {std::tuple{"ec-p256", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256},
        std::tuple{"rsa-2048", SignatureScheme::kRsaPss, DigestAlgorithm::kSha512}}) {
    SCOPED_TRACE(key);
    Pki pki = MakePki(key);
    qseal::testing::TempDir tmp;
    std::string ca_pem = tmp.Sub("ca.pem");
    qseal::testing::WriteFile(ca_pem, formats::testing::CertificateToPem(pki.ca.certificate_der));
    const std::string doc = "an invoice too confidential to send";
    qseal::testing::WriteFile(tmp.Sub("doc.txt"), doc);
    auto format = CreateFormat("cades-detached", OptionsFor(pki, digest, scheme));
    ASSERT_TRUE(format.ok()) << format.status();

    Content digest_only;
    digest_only.size = DigestSize(digest);
    digest_only.name = "doc.txt";
    digest_only.open = []() -> Result<ReadFn> { return InternalError("must not be read"); };
    auto d = Digest(digest, AsBytes(doc));
    ASSERT_TRUE(d.ok());
    digest_only.precomputed_digest = *d;
    auto tbs = (*format)->Prepare(digest_only, kSigningTime);
    ASSERT_TRUE(tbs.ok()) << tbs.status();
    EXPECT_EQ((*tbs)->content_digest, *d);
    Content hashed = MemoryContent(doc, "doc.txt");
    auto reference = (*format)->Prepare(hashed, kSigningTime);
    ASSERT_TRUE(reference.ok()) << reference.status();
    EXPECT_EQ((*tbs)->digest, (*reference)->digest) << "same signed attributes as hashing gives";

    Bytes sig = formats::testing::SoftwareSign(pki.leaf.key.get(), (*tbs)->digest, digest, scheme);
    Bytes seal;
    Status s = (*format)->Assemble(**tbs, sig, digest_only, [&seal](ByteSpan piece) {
      seal.insert(seal.end(), piece.begin(), piece.end());
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s;
    std::string seal_path = tmp.Sub("doc.txt.p7s");
    formats::testing::WriteBinaryFile(seal_path, seal);
    std::string cmd = "openssl cms -verify -binary -inform DER -in " + ShellQuote(seal_path) +
                      " -CAfile " + ShellQuote(ca_pem) + " -attime " +
                      std::to_string(system_clock::to_time_t(kSigningTime)) +
                      " -out /dev/null -content " + ShellQuote(tmp.Sub("doc.txt"));
    auto r = qseal::testing::RunCommand(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;

    // A digest of another length is refused, permanently.
    Content wrong = digest_only;
    wrong.precomputed_digest.resize(20);
    auto refused = (*format)->Prepare(wrong, kSigningTime);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status();
  }
}

// Formats that embed or parse the document refuse a digest-only one, saying why.
TEST(FormatTest, EveryOtherFormatRefusesADigestOnlyDocument) {
  Pki pki = MakePki("ec-p256");
  for (std::string_view name : FormatNames()) {
    if (name == "cades-detached") continue;
    SCOPED_TRACE(std::string(name));
    auto format = CreateFormat(name, OptionsFor(pki));
    ASSERT_TRUE(format.ok()) << format.status();
    Content c;
    c.size = 32;
    c.open = []() -> Result<ReadFn> { return InternalError("must not be read"); };
    c.precomputed_digest = Bytes(32, 0xab);
    auto tbs = (*format)->Prepare(c, kSigningTime);
    ASSERT_FALSE(tbs.ok());
    EXPECT_EQ(tbs.status().code(), StatusCode::kInvalidArgument) << tbs.status();
    EXPECT_NE(tbs.status().message().find("digest-only"), std::string::npos) << tbs.status();
  }
}

TEST(FormatTest, PrepareFailsWithDataLossWhenTheLengthDiffers) {
  Pki pki = MakePki("ec-p256");
  FormatOptions options = OptionsFor(pki);
  auto format = CreateFormat("cades-detached", options);
  ASSERT_TRUE(format.ok()) << format.status();
  const std::string doc = "twelve bytes";
  for (std::uint64_t claimed : {doc.size() - 1, doc.size() + 1}) {
    Content content = MemoryContent(doc, "doc");
    content.size = claimed;
    auto tbs = (*format)->Prepare(content, kSigningTime);
    ASSERT_FALSE(tbs.ok());
    EXPECT_EQ(tbs.status().code(), StatusCode::kDataLoss) << tbs.status();
  }
}

TEST(FormatTest, PrepareReturnsTheReadersErrors) {
  Pki pki = MakePki("ec-p256");
  FormatOptions options = OptionsFor(pki);
  auto format = CreateFormat("cades-enveloping", options);
  ASSERT_TRUE(format.ok()) << format.status();
  Content content;
  content.size = 10;
  content.open = []() -> Result<ReadFn> { return UnavailableError("payload gone"); };
  auto tbs = (*format)->Prepare(content, kSigningTime);
  ASSERT_FALSE(tbs.ok());
  EXPECT_EQ(tbs.status().code(), StatusCode::kUnavailable);
}

TEST(FormatTest, AssembleRefusesAForeignToBeSigned) {
  Pki pki = MakePki("ec-p256");
  FormatOptions options = OptionsFor(pki);
  auto format = CreateFormat("cades-detached", options);
  ASSERT_TRUE(format.ok()) << format.status();
  ToBeSigned foreign;
  Content content = MemoryContent("x", "x");
  Status s =
      (*format)->Assemble(foreign, Bytes{1, 2, 3}, content, [](ByteSpan) { return Status::Ok(); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
}

TEST(VerifySealTest, GarbageIsNotARecognisedFormat) {
  for (const std::string& garbage : {std::string("hello"), std::string("PDF-1.7"), std::string()}) {
    auto report = VerifySeal(AsBytes(garbage), std::nullopt, {});
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(report.status().message().find("not a recognised seal format"), std::string::npos);
  }
}

TEST(VerifySealTest, BrokenDerIsACadesReportWithAFailedStructure) {
  Bytes broken = {0x30, 0x03, 0x02, 0x01, 0x01};
  auto report = VerifySeal(broken, std::nullopt, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->ok);
  ASSERT_FALSE(report->checks.empty());
  EXPECT_EQ(report->checks[0].name, "structure");
  EXPECT_FALSE(report->checks[0].ok);
}

TEST(VerifySealTest, BrokenXmlIsAXadesReportWithAFailedStructure) {
  auto report = VerifySeal(AsBytes(std::string("<?xml?>")), std::nullopt, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->ok);
  ASSERT_FALSE(report->checks.empty());
  EXPECT_EQ(report->checks[0].name, "structure");
  EXPECT_FALSE(report->checks[0].ok);
}

TEST(VerifySealTest, BrokenPdfIsAPadesReportWithAFailedStructure) {
  auto report = VerifySeal(AsBytes(std::string("%PDF-1.7")), std::nullopt, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->ok);
  ASSERT_FALSE(report->checks.empty());
  EXPECT_EQ(report->checks[0].name, "structure");
  EXPECT_FALSE(report->checks[0].ok);
}

}  // namespace
}  // namespace qseal::formats
