// formats/pades with software keys: PDFs from qpdf (xref table, xref stream + object streams, a
// Factur-X-like PDF/A-3 with an embedded XML), Ghostscript (ps2pdf), cairo (pdftocairo) and a
// hand-written one are sealed through
// CreateFormat("pades"), and every seal is checked by pdfsig (signature valid, certificate
// trusted through an NSS database holding the test CA, whole document signed), by qpdf --check
// and by formats::VerifySeal; the original is a byte-identical prefix. Refusals and tampering.
#include <algorithm>
#include <ctime>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "formats/format.h"
#include "formats/verify.h"
#include "tests/formats/cades_test_util.h"
#include "tests/formats/pdf_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::formats {
namespace {

using formats::testing::MakePki;
using formats::testing::Pki;
using formats::testing::XrefKind;
using std::chrono::system_clock;

struct Key {
  std::string type;
  SignatureScheme scheme;
};

class PadesTest : public ::testing::Test {
 protected:
  void SetUp() override { UseKey({"ec-p256", SignatureScheme::kEcdsa}); }

  void UseKey(const Key& key) {
    key_ = key;
    pki_ = MakePki(key.type);
    FormatOptions options;
    options.certificate_chain_der = {pki_.leaf.certificate_der, pki_.ca.certificate_der};
    options.scheme = key.scheme;
    auto f = CreateFormat("pades", options);
    ASSERT_TRUE(f.ok()) << f.status();
    format_ = std::move(f).value();
    std::string ca = dir_.Sub("ca-" + key.type + ".pem");
    formats::testing::WriteStringFile(ca,
                                      formats::testing::CertificateToPem(pki_.ca.certificate_der));
    nss_ = dir_.Sub("nss-" + key.type);
    formats::testing::MakeNssDb(nss_, ca);
  }

  Result<std::string> Seal(const std::string& pdf) {
    return formats::testing::SealPdf(*format_, pdf, [this](ByteSpan digest) -> Result<Bytes> {
      return formats::testing::SoftwareSign(pki_.leaf.key.get(), digest, DigestAlgorithm::kSha256,
                                            key_.scheme);
    });
  }

  // B-LT: a seal with `data` in a DSS.
  Result<std::string> SealLt(const std::string& pdf, std::shared_ptr<const ValidationData> data) {
    return formats::testing::SealPdf(
        *format_, pdf,
        [this](ByteSpan digest) -> Result<Bytes> {
          return formats::testing::SoftwareSign(pki_.leaf.key.get(), digest,
                                                DigestAlgorithm::kSha256, key_.scheme);
        },
        system_clock::now(), std::move(data));
  }

  Result<VerifyReport> Ours(const std::string& sealed) {
    return VerifySeal(AsBytes(sealed), std::nullopt, {pki_.ca.certificate_der});
  }

  std::string File(const std::string& name, const std::string& data) {
    std::string path = dir_.Sub(name);
    formats::testing::WriteStringFile(path, data);
    return path;
  }

  static std::string Describe(const VerifyReport& r) {
    std::string out;
    for (const Check& c : r.checks)
      out += c.name + (c.ok ? " ok: " : " FAILED: ") + c.detail + "\n";
    return out;
  }

  // Everything a good seal of `pdf` must pass, checked by pdfsig, qpdf and VerifySeal. pdfsig's
  // "Total document signed" is 0 for a B-LT seal: its DSS revision follows the signature.
  void ExpectGoodSeal(const std::string& name, const std::string& pdf, const std::string& sealed,
                      int signatures = 1, int total_document = 1) {
    SCOPED_TRACE(name);
    ASSERT_GT(sealed.size(), pdf.size());
    EXPECT_EQ(sealed.compare(0, pdf.size(), pdf), 0) << "the original is not a prefix";
    std::string path = File(name, sealed);
    auto v = formats::testing::Pdfsig(nss_, path);
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_EQ(v.signatures, signatures) << v.output;
    EXPECT_EQ(v.valid, signatures) << v.output;
    EXPECT_EQ(v.trusted, signatures) << v.output;
    EXPECT_EQ(v.total_document, total_document) << v.output;
    EXPECT_NE(v.output.find("ETSI.CAdES.detached"), std::string::npos) << v.output;
    auto check = formats::testing::QpdfCheck(path);
    EXPECT_EQ(check.exit_code, 0) << check.output;
    auto ours = Ours(sealed);
    ASSERT_TRUE(ours.ok()) << ours.status();
    EXPECT_TRUE(ours->ok) << Describe(*ours);
    EXPECT_EQ(ours->format, "pades");
  }

  qseal::testing::TempDir dir_;
  Key key_;
  Pki pki_;
  std::unique_ptr<const Format> format_;
  std::string nss_;
};

TEST_F(PadesTest, FormatDescribesItself) {
  EXPECT_EQ(format_->name(), "pades");
  EXPECT_EQ(format_->media_type(), "application/pdf");
  EXPECT_TRUE(format_->embeds_document());
  EXPECT_EQ(format_->OutputName("invoice.pdf"), "invoice.signed.pdf");
  EXPECT_EQ(format_->OutputName("INVOICE.PDF"), "INVOICE.signed.pdf");
  EXPECT_EQ(format_->OutputName("scan"), "scan.signed.pdf");
  EXPECT_EQ(format_->OutputName(".pdf"), "document.signed.pdf");
  EXPECT_EQ(format_->OutputName("../x.pdf"), "document.signed.pdf");
  EXPECT_EQ(format_->OutputName(""), "document.signed.pdf");
}

TEST_F(PadesTest, SealsEveryProducerEcdsa) {
  struct Doc {
    std::string name;
    std::string pdf;
  };
  std::vector<Doc> docs = {
      {"minimal.pdf", formats::testing::MakeMinimalPdf()},
      {"qpdf-table.pdf", formats::testing::MakeQpdfPdf(2, XrefKind::kTable)},
      {"qpdf-objstm.pdf", formats::testing::MakeQpdfPdf(3, XrefKind::kStream)},
      {"facturx.pdf", formats::testing::MakeFacturXLikePdf()},
      {"ghostscript.pdf", formats::testing::MakeGhostscriptPdf(dir_.path().string())},
      {"cairo.pdf", formats::testing::MakeCairoPdf(dir_.path().string())},
  };
  for (const Doc& d : docs) {
    auto sealed = Seal(d.pdf);
    ASSERT_TRUE(sealed.ok()) << d.name << ": " << sealed.status();
    ExpectGoodSeal(d.name, d.pdf, *sealed);
  }
}

TEST_F(PadesTest, SealsWithRsa) {
  UseKey({"rsa-2048", SignatureScheme::kRsaPkcs1v15});
  std::string pdf = formats::testing::MakeQpdfPdf(2, XrefKind::kStream);
  auto sealed = Seal(pdf);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  ExpectGoodSeal("rsa.pdf", pdf, *sealed);
}

TEST_F(PadesTest, XrefKindFollowsTheOriginal) {
  std::string table = formats::testing::MakeQpdfPdf(1, XrefKind::kTable);
  std::string stream = formats::testing::MakeQpdfPdf(1, XrefKind::kStream);
  auto a = Seal(table);
  auto b = Seal(stream);
  ASSERT_TRUE(a.ok() && b.ok());
  std::string update_a = a->substr(table.size());
  std::string update_b = b->substr(stream.size());
  EXPECT_NE(update_a.find("\nxref\n"), std::string::npos);
  EXPECT_NE(update_a.find("trailer"), std::string::npos);
  EXPECT_EQ(update_b.find("\nxref\n"), std::string::npos);
  EXPECT_NE(update_b.find("/Type /XRef"), std::string::npos);
}

TEST_F(PadesTest, CmsHasNoSigningTimeAndMStatesTheTime) {
  std::string pdf = formats::testing::MakeMinimalPdf();
  auto t = formats::testing::kSigningTime;
  auto sealed = formats::testing::SealPdf(
      *format_, pdf,
      [this](ByteSpan digest) -> Result<Bytes> {
        return formats::testing::SoftwareSign(pki_.leaf.key.get(), digest, DigestAlgorithm::kSha256,
                                              key_.scheme);
      },
      t);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_NE(sealed->find("/M (D:20261125120000Z)"), std::string::npos);
  auto ours = VerifySeal(AsBytes(*sealed), std::nullopt, {pki_.ca.certificate_der},
                         VerifyOptions{t + std::chrono::hours(1)});
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_TRUE(ours->ok) << Describe(*ours);
  EXPECT_EQ(ours->signing_time, t);
  auto has = [&](const std::string& name) {
    return std::any_of(ours->checks.begin(), ours->checks.end(),
                       [&](const Check& c) { return c.name == name && c.ok; });
  };
  EXPECT_TRUE(has("Seal1/signing-time")) << Describe(*ours);  // absent, as PAdES requires
  EXPECT_TRUE(has("Seal1/signing-certificate-v2")) << Describe(*ours);
  EXPECT_TRUE(has("Seal1/m")) << Describe(*ours);
  EXPECT_TRUE(has("whole-document")) << Describe(*ours);
}

// The second seal is made by another leaf of the same CA: pdfsig 22.12 reports "Unknown issue
// with Certificate" for the second of two signatures carrying the same certificate (its NSS
// import of the repeated certificate fails; with two different certificates both are trusted),
// so the same-key case checks pdfsig's signature verdicts and our verifier's full report.
TEST_F(PadesTest, SecondSealKeepsTheFirstValid) {
  formats::testing::CertSpec spec;
  spec.common_name = "qseal second seal";
  spec.serial = 9;
  formats::testing::SoftwareSigner other{formats::testing::GenerateKey("ec-p256"), {}};
  other.certificate_der = formats::testing::IssueCertificate(other.key.get(), spec, &pki_.ca);
  FormatOptions options;
  options.certificate_chain_der = {other.certificate_der, pki_.ca.certificate_der};
  auto other_format = CreateFormat("pades", options);
  ASSERT_TRUE(other_format.ok()) << other_format.status();

  std::string pdf = formats::testing::MakeFacturXLikePdf();
  auto first = Seal(pdf);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = formats::testing::SealPdf(**other_format, *first, [&](ByteSpan d) -> Result<Bytes> {
    return formats::testing::SoftwareSign(other.key.get(), d, DigestAlgorithm::kSha256,
                                          SignatureScheme::kEcdsa);
  });
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->compare(0, first->size(), *first), 0);
  ExpectGoodSeal("twice.pdf", *first, *second, 2);
  auto ours = Ours(*second);
  ASSERT_TRUE(ours.ok());
  std::string report = Describe(*ours);
  EXPECT_NE(report.find("Seal1/byte-range ok: covers the revision ending at byte " +
                        std::to_string(first->size())),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("Seal2/byte-range ok: covers the whole file"), std::string::npos) << report;

  // The same key twice.
  auto again = Seal(*first);
  ASSERT_TRUE(again.ok()) << again.status();
  auto v = formats::testing::Pdfsig(nss_, File("same-key-twice.pdf", *again));
  EXPECT_EQ(v.signatures, 2) << v.output;
  EXPECT_EQ(v.valid, 2) << v.output;
  EXPECT_GE(v.trusted, 1) << v.output;
  EXPECT_EQ(v.total_document, 1) << v.output;
  auto ours_again = Ours(*again);
  ASSERT_TRUE(ours_again.ok());
  EXPECT_TRUE(ours_again->ok) << Describe(*ours_again);
}

TEST_F(PadesTest, RefusesWhatItCannotSeal) {
  std::string plain = formats::testing::MakeQpdfPdf(1, XrefKind::kTable);
  std::string broken_xref = plain;
  std::size_t at = broken_xref.rfind("startxref\n");
  ASSERT_NE(at, std::string::npos);
  broken_xref.replace(at + 10, broken_xref.find('\n', at + 10) - (at + 10), "17");
  struct Case {
    std::string name;
    std::string data;
    std::string reason;
  };
  std::vector<Case> cases = {
      {"garbage", std::string("\x00\x01\x02 garbage \xff", 14), "not a PDF"},
      {"xml", "<?xml version=\"1.0\"?><invoice/>", "not a PDF"},
      {"empty", "", "not a PDF"},
      {"encrypted, empty user password", formats::testing::MakeEncryptedPdf(""), "encrypted"},
      {"encrypted, user password", formats::testing::MakeEncryptedPdf("secret"), "encrypted"},
      {"truncated", plain.substr(0, plain.size() / 2), "startxref"},
      {"broken xref", broken_xref, "broken"},
  };
  for (const Case& c : cases) {
    Content content = formats::testing::StringContent(c.data);
    auto tbs = format_->Prepare(content, system_clock::now());
    ASSERT_FALSE(tbs.ok()) << c.name;
    EXPECT_EQ(tbs.status().code(), StatusCode::kInvalidArgument) << c.name << ": " << tbs.status();
    EXPECT_NE(tbs.status().message().find(c.reason), std::string::npos)
        << c.name << ": " << tbs.status();
  }
}

TEST_F(PadesTest, TamperingIsDetectedByPdfsigAndOurVerify) {
  std::string pdf = formats::testing::MakeQpdfPdf(2, XrefKind::kTable);
  auto sealed = Seal(pdf);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  std::size_t contents = sealed->find("/Contents <", pdf.size());
  ASSERT_NE(contents, std::string::npos);
  struct Case {
    std::string name;
    std::size_t offset;
  };
  // A byte of the page's MediaBox inside the first range; a digit of the signature inside
  // /Contents (the CMS ends with the signature, so a digit shortly before the zero padding).
  std::size_t text = sealed->find("595 842");
  ASSERT_NE(text, std::string::npos);
  std::size_t padding = sealed->find("0000000000", contents);
  ASSERT_NE(padding, std::string::npos);
  for (const Case& c : {Case{"content byte", text + 1}, Case{"signature byte", padding - 6}}) {
    SCOPED_TRACE(c.name);
    std::string bad = *sealed;
    bad[c.offset] = bad[c.offset] == '1' ? '2' : '1';
    auto v = formats::testing::Pdfsig(nss_, File("bad.pdf", bad));
    EXPECT_EQ(v.valid, 0) << v.output;
    EXPECT_EQ(v.signatures, 1) << v.output;
    auto ours = Ours(bad);
    ASSERT_TRUE(ours.ok()) << ours.status();
    EXPECT_FALSE(ours->ok) << Describe(*ours);
  }
}

TEST_F(PadesTest, UnsignedBytesAfterTheSealFailWholeDocument) {
  std::string pdf = formats::testing::MakeMinimalPdf();
  auto sealed = Seal(pdf);
  ASSERT_TRUE(sealed.ok());
  auto ours = Ours(*sealed + "\n% appended\n");
  ASSERT_TRUE(ours.ok());
  EXPECT_FALSE(ours->ok);
  EXPECT_NE(Describe(*ours).find("whole-document FAILED"), std::string::npos) << Describe(*ours);
}

// An empty CRL of the test CA, valid for a day, DER.
Bytes CaCrl(const formats::testing::SoftwareSigner& ca) {
  const unsigned char* p = ca.certificate_der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(ca.certificate_der.size()));
  X509_CRL* crl = X509_CRL_new();
  X509_CRL_set_version(crl, 1);
  X509_CRL_set_issuer_name(crl, X509_get_subject_name(cert));
  ASN1_TIME* now = ASN1_TIME_set(nullptr, std::time(nullptr));
  ASN1_TIME* next = ASN1_TIME_set(nullptr, std::time(nullptr) + 86400);
  X509_CRL_set1_lastUpdate(crl, now);
  X509_CRL_set1_nextUpdate(crl, next);
  X509_CRL_sign(crl, ca.key.get(), EVP_sha256());
  unsigned char* der = nullptr;
  int n = i2d_X509_CRL(crl, &der);
  Bytes out(der, der + std::max(n, 0));
  OPENSSL_free(der);
  ASN1_TIME_free(now);
  ASN1_TIME_free(next);
  X509_CRL_free(crl);
  X509_free(cert);
  return out;
}

// An OCSPResponse of status tryLater (no body): DER the DSS must carry byte for byte.
Bytes OcspTryLater() {
  OCSP_RESPONSE* r = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, nullptr);
  unsigned char* der = nullptr;
  int n = i2d_OCSP_RESPONSE(r, &der);
  Bytes out(der, der + std::max(n, 0));
  OPENSSL_free(der);
  OCSP_RESPONSE_free(r);
  return out;
}

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

// B-LT: the chain, the OCSP response and the CRL in a DSS, in an update after the sealed
// revision; qpdf's own JSON dump finds them byte for byte, openssl verifies the CRL, pdfsig still
// finds the signature valid (the DSS revision is not covered, so "not total document"). A second
// B-LT seal keeps the first DSS's entries.
TEST_F(PadesTest, BltPutsTheChainAndRevocationDataInADssAfterTheSealedRevision) {
  EXPECT_TRUE(format_->has_validation_data());
  auto data = std::make_shared<ValidationData>();
  data->ocsp_responses = {OcspTryLater()};
  data->crls = {CaCrl(pki_.ca)};
  ASSERT_FALSE(data->crls[0].empty());
  const std::string ca_pem =
      File("lt-ca.pem", formats::testing::CertificateToPem(pki_.ca.certificate_der));
  for (XrefKind xref : {XrefKind::kTable, XrefKind::kStream}) {
    const std::string kind = xref == XrefKind::kTable ? "table" : "stream";
    SCOPED_TRACE(kind);
    const std::string pdf = formats::testing::MakeQpdfPdf(2, xref);
    auto sealed = SealLt(pdf, data);
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    ExpectGoodSeal("lt-" + kind + ".pdf", pdf, *sealed, 1, /*total_document=*/0);
    const std::string path = dir_.Sub("lt-" + kind + ".pdf");
    EXPECT_EQ(formats::testing::DssStreams(path, "/Certs"),
              (std::vector<std::string>{AsString(pki_.leaf.certificate_der),
                                        AsString(pki_.ca.certificate_der)}));
    EXPECT_EQ(formats::testing::DssStreams(path, "/OCSPs"),
              std::vector<std::string>{AsString(data->ocsp_responses[0])});
    const std::vector<std::string> crls = formats::testing::DssStreams(path, "/CRLs");
    ASSERT_EQ(crls, std::vector<std::string>{AsString(data->crls[0])});
    File("lt.crl", crls[0]);
    auto crl = formats::testing::Sh("openssl crl -inform DER -in " + dir_.Sub("lt.crl") +
                                    " -noout -CAfile " + ca_pem + " 2>&1");
    EXPECT_NE(crl.output.find("verify OK"), std::string::npos) << crl.output;
    auto ours = Ours(*sealed);
    ASSERT_TRUE(ours.ok()) << ours.status();
    const std::string report = Describe(*ours);
    EXPECT_NE(report.find("dss ok: 2 certificate(s), 1 OCSP response(s), 1 CRL(s)"),
              std::string::npos)
        << report;
    EXPECT_NE(report.find("which add only validation data"), std::string::npos) << report;

    auto again = SealLt(*sealed, data);
    ASSERT_TRUE(again.ok()) << again.status();
    const std::string again_path = File("lt-twice-" + kind + ".pdf", *again);
    auto v2 = formats::testing::Pdfsig(nss_, again_path);
    EXPECT_EQ(v2.valid, 2) << v2.output;
    EXPECT_EQ(formats::testing::DssStreams(again_path, "/OCSPs").size(), 2u);
    EXPECT_EQ(formats::testing::DssStreams(again_path, "/Certs").size(), 4u);
    auto ours2 = Ours(*again);
    ASSERT_TRUE(ours2.ok()) << ours2.status();
    EXPECT_TRUE(ours2->ok) << Describe(*ours2);
  }
}

// What a DSS revision may not do: change the catalog beyond /DSS (an update written here by
// hand after the sealed one), or hold items that are not what their array says.
TEST_F(PadesTest, BltUpdatesThatDoMoreThanAddValidationDataFail) {
  auto data = std::make_shared<ValidationData>();
  data->ocsp_responses = {OcspTryLater()};
  const std::string pdf = formats::testing::MakeQpdfPdf(1, XrefKind::kTable);
  auto sealed = SealLt(pdf, data);
  ASSERT_TRUE(sealed.ok()) << sealed.status();

  // The DSS update's catalog again, with /Lang added, in one more update.
  std::regex catalog_re(R"((\d+) 0 obj\n(<<[^\n]*/DSS \d+ 0 R >>)\nendobj)");
  std::string::const_iterator from = sealed->cbegin() + static_cast<long>(pdf.size());
  std::string catalog_num, catalog;
  for (std::sregex_iterator it(from, sealed->cend(), catalog_re), end; it != end; ++it) {
    catalog_num = (*it)[1];
    catalog = (*it)[2];
  }
  ASSERT_FALSE(catalog.empty());
  std::regex size_re(R"(/Size (\d+))");
  std::string size;
  for (std::sregex_iterator it(sealed->cbegin(), sealed->cend(), size_re), end; it != end; ++it) {
    size = (*it)[1];
  }
  const std::size_t startxref = sealed->rfind("startxref\n");
  const std::string prev =
      sealed->substr(startxref + 10, sealed->find('\n', startxref + 10) - startxref - 10);
  std::string changed = *sealed;
  const std::size_t object_at = changed.size();
  changed +=
      catalog_num + " 0 obj\n" + catalog.substr(0, catalog.size() - 2) + "/Lang (xx) >>\nendobj\n";
  const std::size_t xref_at = changed.size();
  char entry[32];
  std::snprintf(entry, sizeof(entry), "%010zu 00000 n\r\n", object_at);
  changed += "xref\n" + catalog_num + " 1\n" + entry + "trailer\n<< /Size " + size + " /Root " +
             catalog_num + " 0 R /Prev " + prev + " >>\nstartxref\n" + std::to_string(xref_at) +
             "\n%%EOF\n";
  auto check = formats::testing::QpdfCheck(File("lt-changed.pdf", changed));
  EXPECT_EQ(check.exit_code, 0) << "the hand-written update is itself well formed: "
                                << check.output;
  auto ours = Ours(changed);
  ASSERT_TRUE(ours.ok()) << ours.status();
  EXPECT_FALSE(ours->ok);
  EXPECT_NE(Describe(*ours).find("changes the catalog beyond its /DSS"), std::string::npos)
      << Describe(*ours);

  auto garbage = std::make_shared<ValidationData>();
  garbage->crls = {Bytes{0x30, 0x03, 0x02, 0x01, 0x01}};
  auto bad = SealLt(pdf, garbage);
  ASSERT_TRUE(bad.ok()) << bad.status();
  auto ours_bad = Ours(*bad);
  ASSERT_TRUE(ours_bad.ok()) << ours_bad.status();
  EXPECT_FALSE(ours_bad->ok);
  EXPECT_NE(Describe(*ours_bad).find("dss FAILED: /CRLs item 0 does not parse"), std::string::npos)
      << Describe(*ours_bad);
}

TEST_F(PadesTest, ContentChangedBeforeAssembleIsDataLoss) {
  std::string pdf = formats::testing::MakeMinimalPdf();
  std::string data = pdf;
  Content content = formats::testing::StringContent(data);
  auto tbs = format_->Prepare(content, system_clock::now());
  ASSERT_TRUE(tbs.ok()) << tbs.status();
  Bytes sig = formats::testing::SoftwareSign(pki_.leaf.key.get(), (*tbs)->digest,
                                             DigestAlgorithm::kSha256, key_.scheme);
  data[20] = data[20] == 'x' ? 'y' : 'x';
  Status s = format_->Assemble(**tbs, sig, content, [](ByteSpan) { return Status::Ok(); });
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
}

TEST_F(PadesTest, VerifySealRefusesContentForAPdf) {
  std::string pdf = formats::testing::MakeMinimalPdf();
  auto sealed = Seal(pdf);
  ASSERT_TRUE(sealed.ok());
  auto r = VerifySeal(AsBytes(*sealed), formats::testing::SpanReader(AsBytes(pdf)),
                      {pki_.ca.certificate_der});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  auto unsigned_pdf = VerifySeal(AsBytes(pdf), std::nullopt, {pki_.ca.certificate_der});
  ASSERT_TRUE(unsigned_pdf.ok());
  EXPECT_FALSE(unsigned_pdf->ok);
}

}  // namespace
}  // namespace qseal::formats
