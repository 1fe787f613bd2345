// XAdES seals signed through SoftHSM2 (P-256, RSA PKCS#1 v1.5, RSA-PSS) for every sample
// invoice, enveloped and detached, checked by `xmlsec1 --verify` against the test CA (except
// RSA-PSS: Debian 12's xmlsec1 1.2.37 has no RSASSA-PSS) and by formats::VerifySeal; the
// enveloped output is the original bytes plus the inserted element; tampering fails both.
#include <string>

#include <gtest/gtest.h>

#include "formats/format.h"
#include "formats/verify.h"
#include "tests/formats/hsm_fixture.h"
#include "tests/formats/xades_test_util.h"

namespace qseal::formats {
namespace {

using cades::hsmtest::Hsm;
using cades::hsmtest::KeyKind;
using namespace xadestest;

::testing::Environment* const kHsmEnvironment =
    ::testing::AddGlobalTestEnvironment(new cades::hsmtest::HsmEnvironment);

struct Param {
  KeyKind kind;
  std::string format;
};

void PrintTo(const Param& p, std::ostream* os) { *os << p.kind.name << " " << p.format; }

class XadesHsmTest : public ::testing::TestWithParam<Param> {};

std::string Describe(const VerifyReport& r) {
  std::string out;
  for (const Check& c : r.checks) out += c.name + (c.ok ? " ok: " : " FAILED: ") + c.detail + "\n";
  return out;
}

TEST_P(XadesHsmTest, SamplesPassXmlsecAndVerifySeal) {
  const Param& p = GetParam();
  Hsm& hsm = Hsm::Get({p.kind.label});
  Hsm::Key& key = hsm.For(p.kind);
  FormatOptions options;
  options.certificate_chain_der = key.chain;
  options.digest = p.kind.digest;
  options.scheme = p.kind.scheme;
  auto format = CreateFormat(p.format, options);
  ASSERT_TRUE(format.ok()) << format.status();
  SignFn sign = [&](ByteSpan digest) {
    return key.signer->Sign(digest, p.kind.digest, p.kind.scheme);
  };
  const bool enveloped = p.format == "xades-enveloped";
  const bool xmlsec_can = p.kind.scheme != SignatureScheme::kRsaPss;
  for (const std::string& sample : kSamples) {
    SCOPED_TRACE(sample);
    const std::string doc = Sample(sample);
    auto seal = Seal(**format, doc, sample, sign);
    ASSERT_TRUE(seal.ok()) << seal.status();
    std::string doc_path = hsm.Sub(sample);
    qseal::testing::WriteFile(doc_path, doc);
    std::string seal_path = hsm.Sub((*format)->OutputName(sample) + ".signed");
    qseal::testing::WriteFile(seal_path, *seal);

    if (xmlsec_can) {
      auto x = XmlsecVerify(seal_path, hsm.ca_pem());
      EXPECT_EQ(x.exit_code, 0) << x.output;
    }
    std::optional<ReadFn> content;
    if (!enveloped) content = formats::testing::SpanReader(AsBytes(doc));
    auto report =
        VerifySeal(AsBytes(*seal), content, formats::testing::LoadPemCertificates(hsm.ca_pem()));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->ok) << Describe(*report);
    EXPECT_EQ(report->format, p.format);

    if (enveloped) {
      std::string cut = Cut(*seal, "<ds:Signature ", "</ds:Signature>");
      if (sample == "ubl-invoice.xml") {
        cut = Cut(*seal, "<ext:UBLExtensions ", "</ext:UBLExtensions>");
      } else if (sample.starts_with("ubl")) {
        cut = Cut(*seal, "<ext:UBLExtension ", "</ext:UBLExtension>");
      }
      EXPECT_EQ(cut, doc) << "the seal must be the original plus the signature element";
    }

    // One changed byte of content fails both verifiers.
    std::string bad_doc = doc;
    std::size_t at = bad_doc.find("EUR");
    ASSERT_NE(at, std::string::npos);
    bad_doc[at] = 'X';
    std::string bad_seal = *seal;
    if (enveloped) {
      bad_seal[bad_seal.find("EUR")] = 'X';
      qseal::testing::WriteFile(seal_path, bad_seal);
    } else {
      qseal::testing::WriteFile(doc_path, bad_doc);
    }
    if (xmlsec_can) {
      auto x = XmlsecVerify(seal_path, hsm.ca_pem());
      EXPECT_NE(x.exit_code, 0) << x.output;
    }
    if (!enveloped) content = formats::testing::SpanReader(AsBytes(bad_doc));
    auto bad =
        VerifySeal(AsBytes(bad_seal), content, formats::testing::LoadPemCertificates(hsm.ca_pem()));
    ASSERT_TRUE(bad.ok()) << bad.status();
    EXPECT_FALSE(bad->ok);
  }
}

INSTANTIATE_TEST_SUITE_P(AllKeys, XadesHsmTest,
                         ::testing::Values(Param{cades::hsmtest::kP256, "xades-enveloped"},
                                           Param{cades::hsmtest::kP256, "xades-detached"},
                                           Param{cades::hsmtest::kRsaPkcs1, "xades-enveloped"},
                                           Param{cades::hsmtest::kRsaPkcs1, "xades-detached"},
                                           Param{cades::hsmtest::kRsaPss, "xades-enveloped"},
                                           Param{cades::hsmtest::kRsaPss, "xades-detached"}),
                         [](const ::testing::TestParamInfo<Param>& param_info) {
                           return param_info.param.kind.name +
                                  (param_info.param.format == "xades-enveloped" ? "Enveloped"
                                                                                : "Detached");
                         });

}  // namespace
}  // namespace qseal::formats
