// The pure parts of the CSC API v2 (docs/csc.md): the algorithm OIDs a client names (hash and
// signature algorithms, RSASSA-PSS parameters) resolved against a credential's key, and the
// certificate fields credentials/info reports. No I/O; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"

namespace qseal::ingest::detail {

// The digest a hash algorithm OID names (SHA-256, SHA-384, SHA-512); nullopt for any other
// (SHA-1 and SHA-224 on purpose).
std::optional<DigestAlgorithm> DigestFromOid(std::string_view oid);
// The OID of a digest, e.g. "2.16.840.1.101.3.4.2.1" for SHA-256.
std::string_view DigestOid(DigestAlgorithm digest);

// What a signHash request asks the key to do.
struct CscSignAlgorithm {
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  // nullopt when neither signAlgo nor hashAlgorithmOID names a hash (ecPublicKey alone):
  // signHash refuses that, signDoc of whole documents lets the profile choose.
  std::optional<DigestAlgorithm> digest;
};

// Resolves `sign_algo` (an OID), the base64 DER `sign_algo_params` ("" when absent; RSASSA-PSS
// only) and `hash_oid` ("" when absent) for a key of `key_type` ("ec" or "rsa"). A signAlgo that
// implies its hash (ecdsa-with-SHA256, sha256WithRSAEncryption, PSS parameters) must agree with a
// given hash_oid; for one that does not (ecPublicKey, rsaEncryption, PSS without parameters) the
// hash is hash_oid's, or none.
// PSS parameters must name MGF1 with the same hash, a salt as long as the hash and trailer 1: the
// only PSS the HSM profiles make. kInvalidArgument with the CSC parameter at fault in the message.
Result<CscSignAlgorithm> ResolveSignAlgorithm(std::string_view sign_algo,
                                              std::string_view sign_algo_params,
                                              std::string_view hash_oid, std::string_view key_type);

// The signAlgo OIDs a key of `key_type` accepts, for credentials/info key.algo.
std::vector<std::string> KeyAlgorithmOids(std::string_view key_type);
// The OID of a named curve ("P-256", "P-384", "P-521"); "" for others.
std::string_view CurveOid(std::string_view curve);

// What credentials/info says about a certificate.
struct CertificateSummary {
  std::string subject_dn;     // RFC 2253
  std::string issuer_dn;      // RFC 2253
  std::string serial_number;  // hexadecimal, upper case
  std::string valid_from;     // GeneralizedTime "YYYYMMDDHHMMSSZ"
  std::string valid_to;
  bool valid_now = false;  // now within validFrom..validTo
};
// kInvalidArgument when `der` is not an X.509 certificate.
Result<CertificateSummary> SummarizeCertificate(ByteSpan der);

// RFC 4648 base64 with padding (the encoding of every binary CSC field).
std::string Base64Encode(ByteSpan bytes);

}  // namespace qseal::ingest::detail
