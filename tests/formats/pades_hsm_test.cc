// PAdES seals of PDFs from qpdf, Ghostscript and cairo, signed through SoftHSM2 (P-256,
// RSA-3072 PKCS#1 v1.5 and PSS) and checked by
// pdfsig against an NSS database trusting the provisioned test CA, by qpdf --check and by our
// VerifySeal; the original is a byte-identical prefix and a second seal keeps the first valid.
#include <gtest/gtest.h>

#include "formats/format.h"
#include "formats/verify.h"
#include "tests/formats/hsm_fixture.h"
#include "tests/formats/pdf_test_util.h"

namespace qseal::formats::cades::hsmtest {
// Names the key in test names (ctest lists each parameter by it).
inline void PrintTo(const KeyKind& kind, std::ostream* os) { *os << kind.name; }
}  // namespace qseal::formats::cades::hsmtest

namespace qseal::formats {
namespace {

using cades::hsmtest::Describe;
using cades::hsmtest::Hsm;
using cades::hsmtest::KeyKind;
using formats::testing::XrefKind;

::testing::Environment* const kHsmEnvironment =
    ::testing::AddGlobalTestEnvironment(new cades::hsmtest::HsmEnvironment);

class PadesHsmTest : public ::testing::TestWithParam<KeyKind> {};

TEST_P(PadesHsmTest, SealsPassPdfsigQpdfAndOurVerify) {
  const KeyKind& kind = GetParam();
  Hsm& hsm = Hsm::Get({kind.label});
  Hsm::Key& key = hsm.For(kind);
  FormatOptions options;
  options.certificate_chain_der = key.chain;
  options.digest = kind.digest;
  options.scheme = kind.scheme;
  auto format = CreateFormat("pades", options);
  ASSERT_TRUE(format.ok()) << format.status();
  std::string nss = hsm.Sub("nss");
  formats::testing::MakeNssDb(nss, hsm.ca_pem());
  auto sign = [&](ByteSpan digest) { return key.signer->Sign(digest, kind.digest, kind.scheme); };
  auto anchors = formats::testing::LoadPemCertificates(hsm.ca_pem());

  struct Doc {
    std::string name;
    std::string pdf;
  };
  for (const Doc& d : {Doc{"plain.pdf", formats::testing::MakeQpdfPdf(2, XrefKind::kTable)},
                       Doc{"objstm.pdf", formats::testing::MakeQpdfPdf(2, XrefKind::kStream)},
                       Doc{"facturx.pdf", formats::testing::MakeFacturXLikePdf()},
                       Doc{"ghostscript.pdf", formats::testing::MakeGhostscriptPdf(hsm.Sub(""))},
                       Doc{"cairo.pdf", formats::testing::MakeCairoPdf(hsm.Sub(""))}}) {
    SCOPED_TRACE(d.name);
    auto sealed = formats::testing::SealPdf(**format, d.pdf, sign);
    ASSERT_TRUE(sealed.ok()) << sealed.status();
    EXPECT_EQ(sealed->compare(0, d.pdf.size(), d.pdf), 0) << "the original is not a prefix";
    std::string path = hsm.Sub(d.name);
    formats::testing::WriteStringFile(path, *sealed);
    auto v = formats::testing::Pdfsig(nss, path);
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_EQ(v.valid, 1) << v.output;
    EXPECT_EQ(v.trusted, 1) << v.output;
    EXPECT_EQ(v.total_document, 1) << v.output;
    auto check = formats::testing::QpdfCheck(path);
    EXPECT_EQ(check.exit_code, 0) << check.output;
    auto ours = VerifySeal(AsBytes(*sealed), std::nullopt, anchors);
    ASSERT_TRUE(ours.ok()) << ours.status();
    EXPECT_TRUE(ours->ok) << Describe(*ours);

    // A second seal in a new revision: both signatures still verify (pdfsig's certificate
    // verdict on a repeated certificate: see pades_test.cc).
    auto twice = formats::testing::SealPdf(**format, *sealed, sign);
    ASSERT_TRUE(twice.ok()) << twice.status();
    EXPECT_EQ(twice->compare(0, sealed->size(), *sealed), 0);
    formats::testing::WriteStringFile(path + ".twice.pdf", *twice);
    auto v2 = formats::testing::Pdfsig(nss, path + ".twice.pdf");
    EXPECT_EQ(v2.signatures, 2) << v2.output;
    EXPECT_EQ(v2.valid, 2) << v2.output;
    EXPECT_EQ(v2.total_document, 1) << v2.output;
    auto ours2 = VerifySeal(AsBytes(*twice), std::nullopt, anchors);
    ASSERT_TRUE(ours2.ok()) << ours2.status();
    EXPECT_TRUE(ours2->ok) << Describe(*ours2);
  }
}

INSTANTIATE_TEST_SUITE_P(Keys, PadesHsmTest,
                         ::testing::Values(cades::hsmtest::kP256, cades::hsmtest::kRsaPkcs1,
                                           cades::hsmtest::kRsaPss),
                         [](const ::testing::TestParamInfo<KeyKind>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace qseal::formats
