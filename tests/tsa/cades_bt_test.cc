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
    // The assembler writing the attribute itself (what qseald does) gives the very bytes that
    // OpenSSL's CMS encoder makes when it adds the attribute to the B-B seal.
    auto assembled = formats::cades::AssembleDetached(**ctx, *tbs, sig, token->der);
    ASSERT_TRUE(assembled.ok()) << assembled.status();
    EXPECT_EQ(*assembled, *bt);
    EXPECT_EQ(
        formats::cades::AssembleDetached(**ctx, *tbs, sig, AsBytes("not DER")).status().code(),
        StatusCode::kInvalidArgument);

    // qseal's own verifier still accepts the seal with the unsigned attribute.
    auto report =
        formats::cades::Verify(*bt, ft::SpanReader(AsBytes(content)), {pki.ca.certificate_der});
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->ok);
    for (const auto& check : report->checks)
      EXPECT_TRUE(check.ok) << check.name << ": " << check.detail;

    qseal::testing::TimestampedSeal parts =
        qseal::testing::ReadTimestampedSeal(std::string(bt->begin(), bt->end()));
    ASSERT_EQ(parts.tokens.size(), 1u);
    EXPECT_EQ(parts.signature, std::string(sig.begin(), sig.end()));
    EXPECT_EQ(parts.tokens[0], std::string(token->der.begin(), token->der.end()));

    std::string seal_path = dir.Sub("seal.p7s"), content_path = dir.Sub("content");
    std::string token_path = dir.Sub("token.der"), ca_path = dir.Sub("seal-ca.pem");
    ft::WriteBinaryFile(seal_path, *bt);
    qseal::testing::WriteFile(token_path, parts.tokens[0]);
    qseal::testing::WriteFile(content_path, content);
    qseal::testing::WriteFile(ca_path, ft::CertificateToPem(pki.ca.certificate_der));
    using qseal::testing::ShellQuote;
    auto cms = qseal::testing::RunCommand("openssl cms -verify -binary -inform DER -in " +
                                          ShellQuote(seal_path) + " -content " +
                                          ShellQuote(content_path) + " -CAfile " +
                                          ShellQuote(ca_path) + " -purpose any -out /dev/null");
    EXPECT_EQ(cms.exit_code, 0) << cms.output;
    EXPECT_THAT(cms.output, HasSubstr("Verification successful"));
    auto ts = qseal::testing::RunCommand("openssl ts -verify -token_in -in " +
                                         ShellQuote(token_path) + " -digest " +
                                         HexEncode(*Digest(digest, AsBytes(parts.signature))) +
                                         " -CAfile " + ShellQuote(tsa_pki->ca_pem));
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
