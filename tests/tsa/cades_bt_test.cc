// CAdES B-T end to end on loopback: a B-B seal made with a software key, a token from the test
// TSA over digest(signature value) through tsa::TsaClient, the attribute added; then both the
// seal (openssl cms -verify) and the embedded token (openssl ts -verify) checked independently.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/cms.h>

#include "common/sha256.h"
#include "formats/cades/cades.h"
#include "formats/cades/timestamp.h"
#include "formats/cades/verify.h"
#include "tests/formats/cades_test_util.h"
#include "tests/testing/testing.h"
#include "tests/tsa/test_tsa.h"
#include "tsa/tsa_client.h"

namespace qseal {
namespace {

using ::testing::HasSubstr;
namespace ft = formats::testing;

// The signature value and the signature-time-stamp token of a seal, read with OpenSSL (not with
// the code under test).
struct Parts {
  Bytes signature;
  Bytes token;
  int timestamps = 0;
};

Parts ReadParts(ByteSpan seal) {
  Parts parts;
  const unsigned char* p = seal.data();
  CMS_ContentInfo* cms = d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(seal.size()));
  if (cms == nullptr) return parts;
  CMS_SignerInfo* si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
  ASN1_OCTET_STRING* sig = CMS_SignerInfo_get0_signature(si);
  parts.signature.assign(ASN1_STRING_get0_data(sig),
                         ASN1_STRING_get0_data(sig) + ASN1_STRING_length(sig));
  for (int i = -1;
       (i = CMS_unsigned_get_attr_by_NID(si, NID_id_smime_aa_timeStampToken, i)) >= 0;) {
    ++parts.timestamps;
    X509_ATTRIBUTE* attr = CMS_unsigned_get_attr(si, i);
    auto* value =
        static_cast<ASN1_STRING*>(X509_ATTRIBUTE_get0_data(attr, 0, V_ASN1_SEQUENCE, nullptr));
    if (value != nullptr) {
      parts.token.assign(ASN1_STRING_get0_data(value),
                         ASN1_STRING_get0_data(value) + ASN1_STRING_length(value));
    }
  }
  CMS_ContentInfo_free(cms);
  return parts;
}

TEST(CadesBtTest, TimeStampedSealVerifiesWithOpensslCmsAndTs) {
  qseal::testing::TempDir dir;
  auto tsa_pki = qseal::testing::MakeTsaPki(dir.path().string());
  ASSERT_TRUE(tsa_pki.ok()) << tsa_pki.status();
  qseal::testing::TestTsa server(tsa_pki.value());
  ASSERT_TRUE(server.Start().ok());
  tsa::TsaClientOptions options;
  tsa::TsaEndpoint endpoint;
  endpoint.name = "test";
  endpoint.url = server.url();
  endpoint.ca_file = tsa_pki->ca_pem;
  options.tsas.push_back(endpoint);
  auto client = tsa::TsaClient::Create(options);
  ASSERT_TRUE(client.ok()) << client.status();

  for (auto [key, scheme, digest] :
       {std::tuple{"ec-p256", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256},
        std::tuple{"rsa-2048", SignatureScheme::kRsaPss, DigestAlgorithm::kSha384}}) {
    SCOPED_TRACE(key);
    ft::Pki pki = ft::MakePki(key);
    auto ctx = formats::cades::SignerContext::Create(
        {pki.leaf.certificate_der, pki.ca.certificate_der}, digest, scheme);
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    const std::string content = "invoice 2026-0042";
    auto content_digest = Digest(digest, AsBytes(content));
    ASSERT_TRUE(content_digest.ok());
    auto tbs =
        formats::cades::BuildToBeSigned(**ctx, *content_digest, std::chrono::system_clock::now());
    ASSERT_TRUE(tbs.ok()) << tbs.status();
    Bytes sig = ft::SoftwareSign(pki.leaf.key.get(), tbs->digest, digest, scheme);
    auto bb = formats::cades::AssembleDetached(**ctx, *tbs, sig);
    ASSERT_TRUE(bb.ok()) << bb.status();

    auto imprint = formats::cades::SignatureTimeStampImprint(digest, sig);
    ASSERT_TRUE(imprint.ok());
    auto token = client.value()->Stamp(digest, *imprint).get();
    ASSERT_TRUE(token.ok()) << token.status();
    auto bt = formats::cades::AddSignatureTimeStamp(*bb, token->der);
    ASSERT_TRUE(bt.ok()) << bt.status();
    EXPECT_EQ(formats::cades::AddSignatureTimeStamp(*bt, token->der).status().code(),
              StatusCode::kInvalidArgument);

    // qseal's own verifier still accepts the seal with the unsigned attribute.
    auto report =
        formats::cades::Verify(*bt, ft::SpanReader(AsBytes(content)), {pki.ca.certificate_der});
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->ok);
    for (const auto& check : report->checks)
      EXPECT_TRUE(check.ok) << check.name << ": " << check.detail;

    Parts parts = ReadParts(*bt);
    EXPECT_EQ(parts.signature, sig);
    EXPECT_EQ(parts.timestamps, 1);
    EXPECT_EQ(parts.token, token->der);

    std::string seal_path = dir.Sub("seal.p7s"), content_path = dir.Sub("content");
    std::string token_path = dir.Sub("token.der"), ca_path = dir.Sub("seal-ca.pem");
    ft::WriteBinaryFile(seal_path, *bt);
    ft::WriteBinaryFile(token_path, parts.token);
    qseal::testing::WriteFile(content_path, content);
    qseal::testing::WriteFile(ca_path, ft::CertificateToPem(pki.ca.certificate_der));
    using qseal::testing::ShellQuote;
    auto cms = qseal::testing::RunCommand("openssl cms -verify -binary -inform DER -in " +
                                          ShellQuote(seal_path) + " -content " +
                                          ShellQuote(content_path) + " -CAfile " +
                                          ShellQuote(ca_path) + " -purpose any -out /dev/null");
    EXPECT_EQ(cms.exit_code, 0) << cms.output;
    EXPECT_THAT(cms.output, HasSubstr("Verification successful"));
    auto ts = qseal::testing::RunCommand(
        "openssl ts -verify -token_in -in " + ShellQuote(token_path) + " -digest " +
        HexEncode(*Digest(digest, parts.signature)) + " -CAfile " + ShellQuote(tsa_pki->ca_pem));
    EXPECT_EQ(ts.exit_code, 0) << ts.output;
    EXPECT_THAT(ts.output, HasSubstr("Verification: OK"));
  }
}

TEST(CadesBtTest, AddRefusesWhatIsNotASealOrAToken) {
  Bytes junk = {0x30, 0x03, 0x02, 0x01, 0x01};
  EXPECT_EQ(formats::cades::AddSignatureTimeStamp(junk, junk).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(formats::cades::AddSignatureTimeStamp(junk, Bytes{0x04, 0x00}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qseal
