#include "hsm/detail/crypto.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace qseal::hsm::detail {
namespace {

const EVP_MD* Md(DigestAlgorithm d) {
  switch (d) {
    case DigestAlgorithm::kSha256:
      return EVP_sha256();
    case DigestAlgorithm::kSha384:
      return EVP_sha384();
    case DigestAlgorithm::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

Status Refused(const KeyOptions& key, std::string_view check, std::string_view why) {
  return FailedPreconditionError("key '" + key.name + "' refused: check '" + std::string(check) +
                                 "' failed: " + std::string(why));
}

std::chrono::system_clock::time_point AsnTime(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

}  // namespace

Result<std::shared_ptr<const Verifier>> Verifier::FromSpki(ByteSpan spki_der) {
  const unsigned char* p = spki_der.data();
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size()));
  if (pkey == nullptr) return InvalidArgumentError("public key does not parse");
  return std::shared_ptr<const Verifier>(new Verifier(pkey));
}

Verifier::~Verifier() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

bool Verifier::Verify(SignatureScheme scheme, DigestAlgorithm digest, ByteSpan digest_value,
                      ByteSpan signature) const {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(static_cast<EVP_PKEY*>(pkey_), nullptr);
  if (ctx == nullptr) return false;
  bool ok = EVP_PKEY_verify_init(ctx) == 1;
  if (ok && scheme != SignatureScheme::kEcdsa) {
    ok = EVP_PKEY_CTX_set_rsa_padding(
             ctx, scheme == SignatureScheme::kRsaPss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) ==
         1;
    if (ok && scheme == SignatureScheme::kRsaPss) {
      ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, static_cast<int>(DigestSize(digest))) == 1 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, Md(digest)) == 1;
    }
  }
  if (ok) ok = EVP_PKEY_CTX_set_signature_md(ctx, Md(digest)) == 1;
  if (ok) {
    ok = EVP_PKEY_verify(ctx, signature.data(), signature.size(), digest_value.data(),
                         digest_value.size()) == 1;
  }
  EVP_PKEY_CTX_free(ctx);
  return ok;
}

Result<KeyInfo> LoadAndCheckCertificate(const KeyOptions& key,
                                        std::chrono::system_clock::time_point now) {
  if (key.certificate_chain_file.empty()) {
    return InvalidArgumentError("key '" + key.name + "': certificate_chain_file is empty");
  }
  std::ifstream in(key.certificate_chain_file, std::ios::binary);
  if (!in) {
    return InvalidArgumentError("key '" + key.name + "': cannot read certificate chain file " +
                                key.certificate_chain_file);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  std::vector<X509Ptr> chain;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) chain.emplace_back(x);
  BIO_free(bio);
  if (chain.empty()) {
    return InvalidArgumentError("key '" + key.name + "': no PEM certificate in " +
                                key.certificate_chain_file);
  }

  KeyInfo info;
  info.name = key.name;
  info.partitions = key.partitions;
  for (const auto& x : chain) {
    int len = i2d_X509(x.get(), nullptr);
    Bytes der(static_cast<std::size_t>(len));
    unsigned char* p = der.data();
    i2d_X509(x.get(), &p);
    info.certificate_chain_der.push_back(std::move(der));
  }
  X509* leaf = chain.front().get();
  info.not_before = AsnTime(X509_get0_notBefore(leaf));
  info.not_after = AsnTime(X509_get0_notAfter(leaf));
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  if (X509_cmp_time(X509_get0_notBefore(leaf), &t) > 0) {
    return Refused(key, "validity period", "certificate is not valid yet");
  }
  if (X509_cmp_time(X509_get0_notAfter(leaf), &t) < 0) {
    return Refused(key, "validity period", "certificate has expired");
  }

  if ((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) == 0) {
    return Refused(key, "key usage", "certificate has no keyUsage extension");
  }
  if ((X509_get_key_usage(leaf) & (KU_NON_REPUDIATION | KU_DIGITAL_SIGNATURE)) == 0) {
    return Refused(key, "key usage", "keyUsage has neither nonRepudiation nor digitalSignature");
  }

  EVP_PKEY* pub = X509_get0_pubkey(leaf);
  if (pub == nullptr) return Refused(key, "algorithm policy", "public key does not parse");
  int bits = EVP_PKEY_get_bits(pub);
  switch (EVP_PKEY_get_base_id(pub)) {
    case EVP_PKEY_RSA:
      info.type = KeyType::kRsa;
      info.bits = bits;
      if (bits < 2048 || (bits < 3072 && !key.allow_rsa_below_3072)) {
        return Refused(key, "algorithm policy",
                       "RSA-" + std::to_string(bits) + " is below 3072 bits" +
                           (bits >= 2048 ? " (set allow_rsa_below_3072 to accept it)" : ""));
      }
      break;
    case EVP_PKEY_EC: {
      info.type = KeyType::kEc;
      info.bits = bits;
      char group[64] = {0};
      std::size_t glen = 0;
      EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen);
      std::string g(group);
      if (g == "prime256v1" || g == "P-256") {
        info.curve = "P-256";
      } else if (g == "secp384r1" || g == "P-384") {
        info.curve = "P-384";
      } else {
        return Refused(key, "algorithm policy", "EC curve " + g + " is not P-256 or P-384");
      }
      break;
    }
    default:
      return Refused(key, "algorithm policy", "key type is neither RSA nor EC");
  }
  int len = i2d_PUBKEY(pub, nullptr);
  info.subject_public_key_info_der.resize(static_cast<std::size_t>(len));
  unsigned char* p = info.subject_public_key_info_der.data();
  i2d_PUBKEY(pub, &p);
  return info;
}

Bytes DigestInfo(DigestAlgorithm digest, ByteSpan digest_value) {
  // DER of AlgorithmIdentifier {id-sha*, NULL} wrapped with the OCTET STRING header.
  static constexpr std::uint8_t kSha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                             0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                             0x01, 0x05, 0x00, 0x04, 0x20};
  static constexpr std::uint8_t kSha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                             0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                             0x02, 0x05, 0x00, 0x04, 0x30};
  static constexpr std::uint8_t kSha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                             0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                             0x03, 0x05, 0x00, 0x04, 0x40};
  ByteSpan prefix = digest == DigestAlgorithm::kSha256   ? ByteSpan(kSha256)
                    : digest == DigestAlgorithm::kSha384 ? ByteSpan(kSha384)
                                                         : ByteSpan(kSha512);
  Bytes out(prefix.size() + digest_value.size());
  std::copy(prefix.begin(), prefix.end(), out.begin());
  std::copy(digest_value.begin(), digest_value.end(),
            out.begin() + static_cast<std::ptrdiff_t>(prefix.size()));
  return out;
}

Result<Bytes> EcdsaRawToDer(ByteSpan raw) {
  if (raw.empty() || raw.size() % 2 != 0) return InternalError("ECDSA signature has odd length");
  std::size_t half = raw.size() / 2;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(raw.data(), static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return InternalError("ECDSA_SIG conversion failed");
  }
  int len = i2d_ECDSA_SIG(sig, nullptr);
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  i2d_ECDSA_SIG(sig, &p);
  ECDSA_SIG_free(sig);
  return der;
}

Bytes RandomBytes(std::size_t n) {
  Bytes out(n);
  RAND_bytes(out.data(), static_cast<int>(n));
  return out;
}

}  // namespace qseal::hsm::detail
