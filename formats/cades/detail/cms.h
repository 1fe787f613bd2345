// Encoding pieces shared by the builder (cades.cc) and the verifier (verify.cc): object
// identifiers, algorithm identifiers, times, certificate fields, and SignerContext::Impl.
// Pure; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"
#include "formats/cades/cades.h"
#include "formats/cades/detail/openssl_util.h"

namespace qseal::formats::cades::detail {

// Object identifiers, as complete TLVs (tag 0x06, length, contents).
struct Oids {
  Bytes signed_data;             // 1.2.840.113549.1.7.2
  Bytes data;                    // 1.2.840.113549.1.7.1
  Bytes content_type;            // 1.2.840.113549.1.9.3
  Bytes message_digest;          // 1.2.840.113549.1.9.4
  Bytes signing_time;            // 1.2.840.113549.1.9.5
  Bytes signing_certificate_v2;  // 1.2.840.113549.1.9.16.2.47
  Bytes signing_certificate_v1;  // 1.2.840.113549.1.9.16.2.12
  Bytes rsa_encryption;          // 1.2.840.113549.1.1.1
  Bytes rsassa_pss;              // 1.2.840.113549.1.1.10
  Bytes mgf1;                    // 1.2.840.113549.1.1.8
  Bytes sha_with_rsa[3];         // 1.2.840.113549.1.1.{11,12,13}
  Bytes ecdsa_with_sha[3];       // 1.2.840.10045.4.3.{2,3,4}
  Bytes sha[3];                  // 2.16.840.1.101.3.4.2.{1,2,3}
};
const Oids& GetOids();

inline std::size_t Index(DigestAlgorithm d) { return static_cast<std::size_t>(d); }

// AlgorithmIdentifier for a digest, parameters absent (RFC 5754) or NULL (as RFC 4055 writes
// them inside RSASSA-PSS-params).
Bytes DigestAlgorithmId(DigestAlgorithm digest, bool null_parameters);
// AlgorithmIdentifier for signatureAlgorithm.
Bytes SignatureAlgorithmId(DigestAlgorithm digest, SignatureScheme scheme);
// Which digest an AlgorithmIdentifier names (parameters absent or NULL); nullopt otherwise.
std::optional<DigestAlgorithm> ParseDigestAlgorithmId(ByteSpan algorithm_identifier);

// UTCTime (1950..2049) or GeneralizedTime (2050..9999) TLV of `t` truncated to whole seconds.
Result<Bytes> EncodeTime(std::chrono::system_clock::time_point t);
// Parses a UTCTime or GeneralizedTime TLV in the DER forms EncodeTime writes.
Result<std::chrono::system_clock::time_point> ParseTime(ByteSpan tlv);

// Raw fields of a certificate, as encoded in it.
struct CertificateIds {
  ByteSpan issuer;  // Name TLV
  ByteSpan serial;  // INTEGER TLV
};
Result<CertificateIds> ParseCertificateIds(ByteSpan certificate_der);

}  // namespace qseal::formats::cades::detail

namespace qseal::formats::cades {

struct SignerContext::Impl {
  DigestAlgorithm digest = DigestAlgorithm::kSha256;
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  std::vector<Bytes> chain_der;
  detail::X509Ptr leaf;
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;

  Bytes digest_algorithm_id;               // AlgorithmIdentifier, parameters absent
  Bytes digest_algorithms_set;             // SET { digest_algorithm_id }
  Bytes signature_algorithm_id;            // AlgorithmIdentifier
  Bytes certificates_field;                // [0] IMPLICIT SET OF Certificate
  Bytes signer_identifier;                 // IssuerAndSerialNumber
  Bytes content_type_attribute;            // Attribute, complete
  Bytes signing_certificate_v2_attribute;  // Attribute, complete
  Bytes message_digest_prefix;             // Attribute up to the digest octets
};

}  // namespace qseal::formats::cades
