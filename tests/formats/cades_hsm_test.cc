// CAdES seals signed through SoftHSM2 and checked by independent verifiers: every seal passes
// `openssl cms -verify -binary` (default purpose, no -purpose any) against the test CA, its B-B
// attributes are read back with `openssl asn1parse` and compared with `sha256sum` and the
// certificate, and our own Verify agrees. Negative cases fail in both.
#include <sstream>

#include <gtest/gtest.h>

#include "tests/formats/hsm_fixture.h"

namespace qseal::formats::cades {
namespace {

using namespace hsmtest;
using formats::testing::Sh;
using qseal::testing::ShellQuote;

::testing::Environment* const kHsmEnvironment =
    ::testing::AddGlobalTestEnvironment(new hsmtest::HsmEnvironment);

struct MatrixParam {
  KeyKind kind;
  Packaging packaging;
};

void PrintTo(const MatrixParam& p, std::ostream* os) {
  *os << p.kind.name << (p.packaging == Packaging::kDetached ? " detached" : " enveloping");
}

class CadesHsmMatrixTest : public ::testing::TestWithParam<MatrixParam> {};

TEST_P(CadesHsmMatrixTest, SealsPassOpensslAndOurVerify) {
  const MatrixParam& p = GetParam();
  Hsm& hsm = Hsm::Get({p.kind.label});
  for (std::uint64_t size : {0ull, 1ull, 2048ull, 10ull << 20}) {
    SCOPED_TRACE("size " + std::to_string(size));
    std::string doc = hsm.Sub("doc-" + std::to_string(size) + ".bin");
    ASSERT_TRUE(formats::testing::WritePseudoRandomFile(doc, size, 42 + size).ok());
    std::string ext = p.packaging == Packaging::kDetached ? ".p7s" : ".p7m";
    Sealed s = SealFile(p.kind, doc, p.packaging, doc + ext);

    auto v = OpensslVerify(s, hsm.ca_pem(), doc, doc + ".out");
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_NE(v.output.find("Verification successful"), std::string::npos) << v.output;
    if (p.packaging == Packaging::kEnveloping) {
      auto cmp = Sh("cmp " + ShellQuote(doc) + " " + ShellQuote(doc + ".out"));
      EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
    }
    auto ours = OurVerify(s, hsm.ca_pem(), doc);
    ASSERT_TRUE(ours.ok()) << ours.status();
    EXPECT_TRUE(ours->ok) << Describe(*ours);
    CheckAttributesWithOpenssl(s, p.kind);
    std::remove((doc + ".out").c_str());
    std::remove((doc + ext).c_str());
    std::remove(doc.c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(AllKeys, CadesHsmMatrixTest,
                         ::testing::Values(MatrixParam{kRsaPkcs1, Packaging::kDetached},
                                           MatrixParam{kRsaPkcs1, Packaging::kEnveloping},
                                           MatrixParam{kRsaPss, Packaging::kDetached},
                                           MatrixParam{kRsaPss, Packaging::kEnveloping},
                                           MatrixParam{kP256, Packaging::kDetached},
                                           MatrixParam{kP256, Packaging::kEnveloping},
                                           MatrixParam{kP384, Packaging::kDetached},
                                           MatrixParam{kP384, Packaging::kEnveloping}),
                         [](const ::testing::TestParamInfo<MatrixParam>& param_info) {
                           return param_info.param.kind.name +
                                  (param_info.param.packaging == Packaging::kDetached
                                       ? "Detached"
                                       : "Enveloping");
                         });

// The other digests with HSM keys: sha384/sha512 algorithm identifiers, ESSCertIDv2 with an
// explicit hashAlgorithm.
TEST(CadesHsmTest, OtherDigestsPassOpenssl) {
  Hsm& hsm = Hsm::Get();
  KeyKind p384_384{"", "ec-p384", "p384", SignatureScheme::kEcdsa, DigestAlgorithm::kSha384};
  KeyKind pss_512{"", "rsa-3072", "rsa", SignatureScheme::kRsaPss, DigestAlgorithm::kSha512};
  KeyKind pkcs1_384{"", "rsa-3072", "rsa", SignatureScheme::kRsaPkcs1v15, DigestAlgorithm::kSha384};
  std::string doc = hsm.Sub("digests.txt");
  qseal::testing::WriteFile(doc, "<FatturaElettronica/>\n");
  for (const KeyKind& kind : {p384_384, pss_512, pkcs1_384}) {
    for (Packaging packaging : {Packaging::kDetached, Packaging::kEnveloping}) {
      SCOPED_TRACE(std::string(SchemeName(kind.scheme)) + " " +
                   std::string(DigestName(kind.digest)));
      Sealed s = SealFile(kind, doc, packaging, doc + ".seal");
      auto v = OpensslVerify(s, hsm.ca_pem(), doc, doc + ".out");
      EXPECT_EQ(v.exit_code, 0) << v.output;
      auto ours = OurVerify(s, hsm.ca_pem(), doc);
      ASSERT_TRUE(ours.ok());
      EXPECT_TRUE(ours->ok) << Describe(*ours);
      auto sum = Sh(std::string(DigestName(kind.digest)) + "sum " + ShellQuote(doc));
      auto print = Sh("openssl cms -cmsout -print -inform DER -in " + ShellQuote(s.seal));
      EXPECT_NE(Lower(print.output).find(std::string(DigestName(kind.digest))), std::string::npos);
      // message-digest equals the digest of the content, as the coreutils tool computes it.
      std::string digest_hex = Hex(s.content_digest);
      EXPECT_EQ(FirstField(sum.output), digest_hex);
    }
  }
}

TEST(CadesHsmTest, TamperedDocumentFailsInOpensslAndVerify) {
  Hsm& hsm = Hsm::Get({"p256"});
  for (Packaging packaging : {Packaging::kDetached, Packaging::kEnveloping}) {
    SCOPED_TRACE(packaging == Packaging::kDetached ? "detached" : "enveloping");
    std::string doc = hsm.Sub("tamper.xml");
    qseal::testing::WriteFile(doc, "<invoice><total>100.00</total></invoice>");
    Sealed s = SealFile(kP256, doc, packaging, doc + ".seal");
    if (packaging == Packaging::kDetached) {
      qseal::testing::WriteFile(doc, "<invoice><total>900.00</total></invoice>");
    } else {
      Bytes seal = formats::testing::ReadBinaryFile(s.seal);
      std::string needle = "100.00";
      auto it = std::search(seal.begin(), seal.end(), needle.begin(), needle.end());
      ASSERT_NE(it, seal.end());
      *it = '9';
      formats::testing::WriteBinaryFile(s.seal, seal);
    }
    auto v = OpensslVerify(s, hsm.ca_pem(), doc, doc + ".out");
    EXPECT_NE(v.exit_code, 0);
    EXPECT_NE(v.output.find("content verify error"), std::string::npos) << v.output;
    auto ours = OurVerify(s, hsm.ca_pem(), doc);
    ASSERT_TRUE(ours.ok());
    EXPECT_FALSE(ours->ok);
    for (const Check& c : ours->checks) {
      if (c.name == "message-digest") {
        EXPECT_FALSE(c.ok);
        EXPECT_NE(c.detail.find("content altered"), std::string::npos) << c.detail;
      }
    }
  }
}

TEST(CadesHsmTest, FlippedSignatureByteFailsInOpensslAndVerify) {
  Hsm& hsm = Hsm::Get({"p256", "rsa"});
  for (const KeyKind& kind : {kP256, kRsaPss}) {
    SCOPED_TRACE(kind.name);
    std::string doc = hsm.Sub("flip.xml");
    qseal::testing::WriteFile(doc, "<invoice/>");
    Sealed s = SealFile(kind, doc, Packaging::kDetached, doc + ".p7s");
    Bytes seal = formats::testing::ReadBinaryFile(s.seal);
    seal[seal.size() - 20] ^= 0x40;  // inside the signature, the last element
    formats::testing::WriteBinaryFile(s.seal, seal);
    auto v = OpensslVerify(s, hsm.ca_pem(), doc, doc + ".out");
    EXPECT_NE(v.exit_code, 0);
    EXPECT_NE(v.output.find("CMS_SignerInfo_verify:verification failure"), std::string::npos)
        << v.output;
    auto ours = OurVerify(s, hsm.ca_pem(), doc);
    ASSERT_TRUE(ours.ok());
    EXPECT_FALSE(ours->ok);
    for (const Check& c : ours->checks) {
      if (c.name == "signature") {
        EXPECT_FALSE(c.ok);
        EXPECT_NE(c.detail.find("does not verify"), std::string::npos) << c.detail;
      } else {
        EXPECT_TRUE(c.ok) << c.name << ": " << c.detail;
      }
    }
  }
}

TEST(CadesHsmTest, WrongCertificateFailsInOpensslAndVerify) {
  Hsm& hsm = Hsm::Get({"p256", "p384"});
  std::string doc = hsm.Sub("wrong.xml");
  qseal::testing::WriteFile(doc, "<invoice/>");
  // Signed by the P-256 key but naming the P-384 key's certificate.
  std::vector<Bytes> other_chain = hsm.For(kP384).chain;
  Sealed s = SealFile(kP256, doc, Packaging::kDetached, doc + ".p7s", &other_chain);
  auto v = OpensslVerify(s, hsm.ca_pem(), doc, doc + ".out");
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE(v.output.find("CMS_SignerInfo_verify:verification failure"), std::string::npos)
      << v.output;
  auto ours = OurVerify(s, hsm.ca_pem(), doc);
  ASSERT_TRUE(ours.ok());
  EXPECT_FALSE(ours->ok);
  bool signature_failed = false;
  for (const Check& c : ours->checks) {
    if (c.name == "signature") signature_failed = !c.ok;
  }
  EXPECT_TRUE(signature_failed) << Describe(*ours);

  // A correct seal against a CA that did not issue the certificate.
  Sealed good = SealFile(kP256, doc, Packaging::kDetached, doc + ".good.p7s");
  std::string other_ca = hsm.Sub("other-ca.pem");
  auto mk = Sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
               ShellQuote(hsm.Sub("other-ca.key")) + " -out " + ShellQuote(other_ca) +
               " -subj '/CN=unrelated CA' -days 30");
  ASSERT_EQ(mk.exit_code, 0) << mk.output;
  auto v2 = OpensslVerify(good, other_ca, doc, doc + ".out");
  EXPECT_NE(v2.exit_code, 0);
  EXPECT_NE(v2.output.find("certificate verify error"), std::string::npos) << v2.output;
  auto ours2 = OurVerify(good, other_ca, doc);
  ASSERT_TRUE(ours2.ok());
  EXPECT_FALSE(ours2->ok);
  for (const Check& c : ours2->checks) {
    if (c.name == "chain") {
      EXPECT_FALSE(c.ok);
      EXPECT_NE(c.detail.find("certificate"), std::string::npos) << c.detail;
    }
  }
}

}  // namespace
}  // namespace qseal::formats::cades

namespace qseal::formats::cades {
namespace {

using formats::testing::Sh;
using qseal::testing::ShellQuote;

// Our Verify accepts CAdES seals made by another producer (`openssl cms -sign -cades`, with its
// extra smimeCapabilities attribute and rsaEncryption as signatureAlgorithm) and still catches a
// tampered one.
TEST(CadesInteropTest, VerifyAcceptsSealsMadeByOpenssl) {
  qseal::testing::TempDir dir;
  auto q = [&](const std::string& name) { return ShellQuote(dir.Sub(name)); };
  qseal::testing::WriteFile(dir.Sub("leaf.ext"),
                            "keyUsage=critical,nonRepudiation,digitalSignature\n");
  qseal::testing::WriteFile(dir.Sub("doc.xml"), "<FatturaElettronica versione=\"FPR12\"/>\n");
  auto ca = Sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
               q("ca.key") + " -out " + q("ca.pem") +
               " -subj '/CN=Interop CA' -days 30 -addext keyUsage=critical,keyCertSign,cRLSign");
  ASSERT_EQ(ca.exit_code, 0) << ca.output;
  auto anchors = formats::testing::LoadPemCertificates(dir.Sub("ca.pem"));
  for (std::string newkey : {"ec -pkeyopt ec_paramgen_curve:P-384", "rsa:2048"}) {
    SCOPED_TRACE(newkey);
    auto leaf =
        Sh("(openssl req -new -newkey " + newkey + " -nodes -keyout " + q("leaf.key") +
           " -subj '/CN=Interop leaf' -out " + q("leaf.csr") + " && openssl x509 -req -in " +
           q("leaf.csr") + " -CA " + q("ca.pem") + " -CAkey " + q("ca.key") +
           " -CAcreateserial -days 30 -extfile " + q("leaf.ext") + " -out " + q("leaf.pem") + ")");
    ASSERT_EQ(leaf.exit_code, 0) << leaf.output;
    for (bool detached : {true, false}) {
      SCOPED_TRACE(detached ? "detached" : "enveloping");
      auto sign =
          Sh("openssl cms -sign -cades -binary -md sha256 -outform DER -in " + q("doc.xml") +
             " -signer " + q("leaf.pem") + " -inkey " + q("leaf.key") + " -certfile " +
             q("ca.pem") + (detached ? "" : " -nodetach") + " -out " + q("seal"));
      ASSERT_EQ(sign.exit_code, 0) << sign.output;
      Bytes seal = formats::testing::ReadBinaryFile(dir.Sub("seal"));
      std::optional<ReadFn> content;
      if (detached) content = formats::testing::FileReader(dir.Sub("doc.xml"));
      auto report = Verify(seal, content, anchors);
      ASSERT_TRUE(report.ok()) << report.status();
      std::string why;
      for (const Check& c : report->checks) {
        why += c.name + (c.ok ? " ok: " : " FAILED: ") + c.detail + "\n";
      }
      EXPECT_TRUE(report->ok) << why;
      if (!detached) {
        std::string needle = "FPR12";
        auto it = std::search(seal.begin(), seal.end(), needle.begin(), needle.end());
        ASSERT_NE(it, seal.end());
        *it = 'X';
        auto tampered = Verify(seal, std::nullopt, anchors);
        ASSERT_TRUE(tampered.ok());
        EXPECT_FALSE(tampered->ok);
      }
    }
  }
}

}  // namespace
}  // namespace qseal::formats::cades
