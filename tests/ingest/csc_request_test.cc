// The CSC API's algorithm resolution and certificate summary, with PSS parameters and
// certificates made by OpenSSL (not by the code under test).
#include "ingest/detail/csc_request.h"

#include <gtest/gtest.h>
#include <openssl/asn1.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ingest/detail/digest_request.h"

namespace qseal::ingest::detail {
namespace {

constexpr const char* kSha256 = "2.16.840.1.101.3.4.2.1";
constexpr const char* kSha384 = "2.16.840.1.101.3.4.2.2";
constexpr const char* kSha1 = "1.3.14.3.2.26";
constexpr const char* kEcdsaSha256 = "1.2.840.10045.4.3.2";
constexpr const char* kEcPublicKey = "1.2.840.10045.2.1";
constexpr const char* kRsa = "1.2.840.113549.1.1.1";
constexpr const char* kRsaSha384 = "1.2.840.113549.1.1.12";
constexpr const char* kPss = "1.2.840.113549.1.1.10";

// DER RSASSA-PSS-params, base64: `md` for the hash and MGF1, `salt` (negative: absent).
std::string PssParams(const EVP_MD* md, const EVP_MD* mgf_md, int salt) {
  RSA_PSS_PARAMS* p = RSA_PSS_PARAMS_new();
  p->hashAlgorithm = X509_ALGOR_new();
  X509_ALGOR_set_md(p->hashAlgorithm, md);
  X509_ALGOR* mgf_hash = X509_ALGOR_new();
  X509_ALGOR_set_md(mgf_hash, mgf_md);
  ASN1_STRING* packed = ASN1_item_pack(mgf_hash, ASN1_ITEM_rptr(X509_ALGOR), nullptr);
  p->maskGenAlgorithm = X509_ALGOR_new();
  X509_ALGOR_set0(p->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, packed);
  X509_ALGOR_free(mgf_hash);
  if (salt >= 0) {
    p->saltLength = ASN1_INTEGER_new();
    ASN1_INTEGER_set(p->saltLength, salt);
  }
  unsigned char* der = nullptr;
  int n = i2d_RSA_PSS_PARAMS(p, &der);
  RSA_PSS_PARAMS_free(p);
  std::string b64 = Base64Encode(ByteSpan(der, static_cast<std::size_t>(n)));
  OPENSSL_free(der);
  return b64;
}

TEST(CscRequestTest, HashOidsAreSha2Only) {
  EXPECT_EQ(DigestFromOid(kSha256), DigestAlgorithm::kSha256);
  EXPECT_EQ(DigestFromOid(kSha384), DigestAlgorithm::kSha384);
  EXPECT_EQ(DigestFromOid("2.16.840.1.101.3.4.2.3"), DigestAlgorithm::kSha512);
  EXPECT_FALSE(DigestFromOid(kSha1));
  EXPECT_FALSE(DigestFromOid("2.16.840.1.101.3.4.2.4"));  // SHA-224
  EXPECT_EQ(DigestOid(DigestAlgorithm::kSha256), kSha256);
}

TEST(CscRequestTest, EcdsaWithItsHashOrTheGivenOne) {
  auto a = ResolveSignAlgorithm(kEcdsaSha256, "", "", "ec");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->scheme, SignatureScheme::kEcdsa);
  EXPECT_EQ(a->digest, DigestAlgorithm::kSha256);
  auto same = ResolveSignAlgorithm(kEcdsaSha256, "", kSha256, "ec");
  ASSERT_TRUE(same.ok());
  auto key_only = ResolveSignAlgorithm(kEcPublicKey, "", kSha384, "ec");
  ASSERT_TRUE(key_only.ok());
  EXPECT_EQ(key_only->digest, DigestAlgorithm::kSha384);
  auto no_hash = ResolveSignAlgorithm(kEcPublicKey, "", "", "ec");
  ASSERT_TRUE(no_hash.ok());
  EXPECT_FALSE(no_hash->digest.has_value());
}

TEST(CscRequestTest, RefusesWhatDoesNotFit) {
  struct Case {
    const char* algo;
    std::string params;
    const char* hash;
    const char* key;
    const char* says;
  };
  const Case cases[] = {
      {kEcdsaSha256, "", kSha384, "ec", "hashAlgorithmOID"},  // implies another hash
      {kEcdsaSha256, "", kSha1, "ec", "hashAlgorithmOID"},    // SHA-1
      {kRsaSha384, "", "", "ec", "signAlgo"},                 // RSA on an EC key
      {kEcdsaSha256, "", "", "rsa", "signAlgo"},              // ECDSA on an RSA key
      {"1.2.840.10040.4.3", "", kSha256, "ec", "signAlgo"},   // DSA
      {"", "", kSha256, "ec", "signAlgo"},
      {kEcdsaSha256, PssParams(EVP_sha256(), EVP_sha256(), 32), "", "ec", "signAlgoParams"},
      {kPss, "not base64!", "", "rsa", "signAlgoParams"},
      {kPss, Base64Encode(AsBytes(std::string_view("\x30\x03\x02\x01\x01"))), "", "rsa",
       "signAlgoParams"},
      {kPss, PssParams(EVP_sha256(), EVP_sha256(), 20), "", "rsa", "salt"},
      {kPss, PssParams(EVP_sha256(), EVP_sha256(), -1), "", "rsa", "salt"},  // default 20
      {kPss, PssParams(EVP_sha256(), EVP_sha384(), 32), "", "rsa", "MGF1"},
      {kPss, PssParams(EVP_sha1(), EVP_sha1(), 20), "", "rsa", "hash"},
      {kPss, PssParams(EVP_sha256(), EVP_sha256(), 32), kSha384, "rsa", "hashAlgorithmOID"},
  };
  for (const Case& c : cases) {
    auto r = ResolveSignAlgorithm(c.algo, c.params, c.hash, c.key);
    ASSERT_FALSE(r.ok()) << c.algo << " " << c.params;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status();
  }
}

TEST(CscRequestTest, RsaSchemes) {
  auto pkcs1 = ResolveSignAlgorithm(kRsaSha384, "", "", "rsa");
  ASSERT_TRUE(pkcs1.ok());
  EXPECT_EQ(pkcs1->scheme, SignatureScheme::kRsaPkcs1v15);
  EXPECT_EQ(pkcs1->digest, DigestAlgorithm::kSha384);
  auto enc = ResolveSignAlgorithm(kRsa, "", kSha256, "rsa");
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->scheme, SignatureScheme::kRsaPkcs1v15);
  auto pss = ResolveSignAlgorithm(kPss, PssParams(EVP_sha384(), EVP_sha384(), 48), "", "rsa");
  ASSERT_TRUE(pss.ok()) << pss.status();
  EXPECT_EQ(pss->scheme, SignatureScheme::kRsaPss);
  EXPECT_EQ(pss->digest, DigestAlgorithm::kSha384);
  auto pss_oid = ResolveSignAlgorithm(kPss, "", kSha256, "rsa");
  ASSERT_TRUE(pss_oid.ok());
  EXPECT_EQ(pss_oid->digest, DigestAlgorithm::kSha256);
}

TEST(CscRequestTest, KeyAlgorithmsAndCurves) {
  std::vector<std::string> ec = KeyAlgorithmOids("ec");
  EXPECT_NE(std::find(ec.begin(), ec.end(), kEcdsaSha256), ec.end());
  EXPECT_EQ(std::find(ec.begin(), ec.end(), kPss), ec.end());
  std::vector<std::string> rsa = KeyAlgorithmOids("rsa");
  EXPECT_NE(std::find(rsa.begin(), rsa.end(), kPss), rsa.end());
  EXPECT_EQ(std::find(rsa.begin(), rsa.end(), kEcdsaSha256), rsa.end());
  EXPECT_EQ(CurveOid("P-256"), "1.2.840.10045.3.1.7");
  EXPECT_EQ(CurveOid("P-384"), "1.3.132.0.34");
  EXPECT_EQ(CurveOid("brainpoolP256r1"), "");
}

TEST(CscRequestTest, CertificateSummary) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 0x1234ab);
  X509_NAME* name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Example Bank"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Seal, One"), -1, -1, 0);
  X509_set_subject_name(cert, name);
  X509_set_issuer_name(cert, name);
  ASN1_TIME_set_string(X509_getm_notBefore(cert), "20200101000000Z");
  ASN1_TIME_set_string(X509_getm_notAfter(cert), "20991231235959Z");
  X509_set_pubkey(cert, key);
  X509_sign(cert, key, EVP_sha256());
  unsigned char* der = nullptr;
  int n = i2d_X509(cert, &der);
  auto s = SummarizeCertificate(ByteSpan(der, static_cast<std::size_t>(n)));
  OPENSSL_free(der);
  X509_NAME_free(name);
  X509_free(cert);
  EVP_PKEY_free(key);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->subject_dn, "CN=Seal\\, One,O=Example Bank");
  EXPECT_EQ(s->issuer_dn, s->subject_dn);
  EXPECT_EQ(s->serial_number, "1234AB");
  EXPECT_EQ(s->valid_from, "20200101000000Z");
  EXPECT_EQ(s->valid_to, "20991231235959Z");
  EXPECT_TRUE(s->valid_now);
  EXPECT_FALSE(SummarizeCertificate(AsBytes(std::string_view("not a certificate"))).ok());
}

TEST(CscRequestTest, Base64RoundTrip) {
  using namespace std::string_view_literals;
  for (std::string_view text : {""sv, "f"sv, "fo"sv, "foo"sv, "foob"sv, "\xff\x00\xfe"sv}) {
    std::string b64 = Base64Encode(AsBytes(text));
    std::optional<Bytes> back = Base64Decode(b64);
    ASSERT_TRUE(back.has_value()) << b64;
    EXPECT_EQ(std::string(back->begin(), back->end()), std::string(text));
  }
  EXPECT_EQ(Base64Encode(AsBytes(std::string_view("foo"))), "Zm9v");
}

}  // namespace
}  // namespace qseal::ingest::detail
