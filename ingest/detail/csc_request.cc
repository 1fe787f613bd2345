#include "ingest/detail/csc_request.h"

#include <ctime>
#include <memory>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ingest/detail/digest_request.h"

namespace qseal::ingest::detail {
namespace {

constexpr std::string_view kEcPublicKey = "1.2.840.10045.2.1";
constexpr std::string_view kRsaEncryption = "1.2.840.113549.1.1.1";
constexpr std::string_view kRsaPss = "1.2.840.113549.1.1.10";
constexpr std::string_view kMgf1 = "1.2.840.113549.1.1.8";

struct SignAlgoOid {
  std::string_view oid;
  const char* key_type;
  SignatureScheme scheme;
  std::optional<DigestAlgorithm> digest;  // nullopt: the hash comes from hashAlgorithmOID
};

constexpr SignAlgoOid kSignAlgos[] = {
    {kEcPublicKey, "ec", SignatureScheme::kEcdsa, std::nullopt},
    {"1.2.840.10045.4.3.2", "ec", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256},
    {"1.2.840.10045.4.3.3", "ec", SignatureScheme::kEcdsa, DigestAlgorithm::kSha384},
    {"1.2.840.10045.4.3.4", "ec", SignatureScheme::kEcdsa, DigestAlgorithm::kSha512},
    {kRsaEncryption, "rsa", SignatureScheme::kRsaPkcs1v15, std::nullopt},
    {"1.2.840.113549.1.1.11", "rsa", SignatureScheme::kRsaPkcs1v15, DigestAlgorithm::kSha256},
    {"1.2.840.113549.1.1.12", "rsa", SignatureScheme::kRsaPkcs1v15, DigestAlgorithm::kSha384},
    {"1.2.840.113549.1.1.13", "rsa", SignatureScheme::kRsaPkcs1v15, DigestAlgorithm::kSha512},
    {kRsaPss, "rsa", SignatureScheme::kRsaPss, std::nullopt},
};

std::string OidText(const ASN1_OBJECT* obj) {
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof buf, obj, 1);
  return n > 0 && n < static_cast<int>(sizeof buf) ? std::string(buf, static_cast<std::size_t>(n))
                                                   : std::string();
}

std::optional<long> IntegerValue(const ASN1_INTEGER* i, long absent) {
  if (i == nullptr) return absent;
  long v = ASN1_INTEGER_get(i);
  if (v < 0) return std::nullopt;
  return v;
}

// The hash RSASSA-PSS-params name, when they are the PSS the HSM makes (MGF1 with the same
// hash, salt = hash length, trailer 1).
Result<DigestAlgorithm> PssParamsDigest(std::string_view params_b64) {
  std::optional<Bytes> der = Base64Decode(params_b64);
  if (!der) return InvalidArgumentError("Invalid parameter signAlgoParams: not base64");
  const unsigned char* p = der->data();
  std::unique_ptr<RSA_PSS_PARAMS, decltype(&RSA_PSS_PARAMS_free)> params(
      d2i_RSA_PSS_PARAMS(nullptr, &p, static_cast<long>(der->size())), RSA_PSS_PARAMS_free);
  if (!params || p != der->data() + der->size()) {
    return InvalidArgumentError("Invalid parameter signAlgoParams: not DER RSASSA-PSS-params");
  }
  // Absent fields take RFC 8017's defaults: SHA-1, MGF1 with SHA-1, salt 20: all refused.
  std::optional<DigestAlgorithm> hash;
  if (params->hashAlgorithm != nullptr) {
    hash = DigestFromOid(OidText(params->hashAlgorithm->algorithm));
  }
  if (!hash) {
    return InvalidArgumentError(
        "Invalid parameter signAlgoParams: the PSS hash must be SHA-256, SHA-384 or SHA-512");
  }
  std::optional<DigestAlgorithm> mgf_hash;
  if (params->maskGenAlgorithm != nullptr &&
      OidText(params->maskGenAlgorithm->algorithm) == kMgf1) {
    std::unique_ptr<X509_ALGOR, decltype(&X509_ALGOR_free)> mgf_alg(
        static_cast<X509_ALGOR*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(X509_ALGOR),
                                                           params->maskGenAlgorithm->parameter)),
        X509_ALGOR_free);
    if (mgf_alg) mgf_hash = DigestFromOid(OidText(mgf_alg->algorithm));
  }
  if (mgf_hash != hash) {
    return InvalidArgumentError(
        "Invalid parameter signAlgoParams: the mask generation must be MGF1 with the PSS hash");
  }
  if (IntegerValue(params->saltLength, 20) != static_cast<long>(DigestSize(*hash))) {
    return InvalidArgumentError(
        "Invalid parameter signAlgoParams: the salt length must be the hash length (" +
        std::to_string(DigestSize(*hash)) + ")");
  }
  if (IntegerValue(params->trailerField, 1) != 1) {
    return InvalidArgumentError("Invalid parameter signAlgoParams: the trailer field must be 1");
  }
  return *hash;
}

std::string GeneralizedTime(const ASN1_TIME* t, std::time_t* out) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "";
  *out = timegm(&tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%SZ", &tm);
  return buf;
}

std::string Rfc2253(const X509_NAME* name) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

std::optional<DigestAlgorithm> DigestFromOid(std::string_view oid) {
  for (DigestAlgorithm d :
       {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384, DigestAlgorithm::kSha512}) {
    if (oid == DigestOid(d)) return d;
  }
  return std::nullopt;
}

std::string_view DigestOid(DigestAlgorithm digest) {
  switch (digest) {
    case DigestAlgorithm::kSha256:
      return "2.16.840.1.101.3.4.2.1";
    case DigestAlgorithm::kSha384:
      return "2.16.840.1.101.3.4.2.2";
    case DigestAlgorithm::kSha512:
      return "2.16.840.1.101.3.4.2.3";
  }
  return "";
}

Result<CscSignAlgorithm> ResolveSignAlgorithm(std::string_view sign_algo,
                                              std::string_view sign_algo_params,
                                              std::string_view hash_oid,
                                              std::string_view key_type) {
  const SignAlgoOid* known = nullptr;
  for (const SignAlgoOid& a : kSignAlgos) {
    if (a.oid == sign_algo) known = &a;
  }
  if (known == nullptr) {
    return InvalidArgumentError("Invalid parameter signAlgo: " +
                                std::string(sign_algo.empty() ? "missing" : "not supported"));
  }
  if (known->key_type != key_type) {
    return InvalidArgumentError("Invalid parameter signAlgo: the credential's key is " +
                                std::string(key_type == "ec" ? "an EC" : "an RSA") + " key");
  }
  std::optional<DigestAlgorithm> hash;
  if (!hash_oid.empty()) {
    hash = DigestFromOid(hash_oid);
    if (!hash) return InvalidArgumentError("Invalid parameter hashAlgorithmOID: not supported");
  }
  std::optional<DigestAlgorithm> implied = known->digest;
  if (!sign_algo_params.empty()) {
    if (known->scheme != SignatureScheme::kRsaPss) {
      return InvalidArgumentError("Invalid parameter signAlgoParams: only RSASSA-PSS takes them");
    }
    QSEAL_ASSIGN_OR_RETURN(DigestAlgorithm pss_hash, PssParamsDigest(sign_algo_params));
    implied = pss_hash;
  }
  if (implied && hash && *implied != *hash) {
    return InvalidArgumentError(
        "Invalid parameter hashAlgorithmOID: signAlgo implies another hash algorithm");
  }
  CscSignAlgorithm out;
  out.scheme = known->scheme;
  out.digest = implied ? implied : hash;
  return out;
}

std::vector<std::string> KeyAlgorithmOids(std::string_view key_type) {
  std::vector<std::string> oids;
  for (const SignAlgoOid& a : kSignAlgos) {
    if (a.key_type == key_type) oids.emplace_back(a.oid);
  }
  return oids;
}

std::string_view CurveOid(std::string_view curve) {
  if (curve == "P-256") return "1.2.840.10045.3.1.7";
  if (curve == "P-384") return "1.3.132.0.34";
  if (curve == "P-521") return "1.3.132.0.35";
  return "";
}

Result<CertificateSummary> SummarizeCertificate(ByteSpan der) {
  const unsigned char* p = der.data();
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      d2i_X509(nullptr, &p, static_cast<long>(der.size())), X509_free);
  if (!cert) return InvalidArgumentError("certificate does not parse");
  CertificateSummary s;
  s.subject_dn = Rfc2253(X509_get_subject_name(cert.get()));
  s.issuer_dn = Rfc2253(X509_get_issuer_name(cert.get()));
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr), BN_free);
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    if (hex != nullptr) s.serial_number = hex;
    OPENSSL_free(hex);
  }
  std::time_t from = 0;
  std::time_t to = 0;
  s.valid_from = GeneralizedTime(X509_get0_notBefore(cert.get()), &from);
  s.valid_to = GeneralizedTime(X509_get0_notAfter(cert.get()), &to);
  const std::time_t now = std::time(nullptr);
  s.valid_now = !s.valid_from.empty() && !s.valid_to.empty() && from <= now && now <= to;
  return s;
}

std::string Base64Encode(ByteSpan bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                          static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return out;
}

}  // namespace qseal::ingest::detail
