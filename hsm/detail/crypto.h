// Software crypto around the HSM (OpenSSL): certificate chain loading and the startup checks,
// DigestInfo encoding, ECDSA raw-to-DER conversion and signature verification.
// Implementation-only. Verifier is immutable after construction and thread-safe; the functions are
// pure and thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"
#include "hsm/signer.h"

namespace qseal::hsm::detail {

// Verifies signatures with one public key (the seal certificate's).
class Verifier {
 public:
  // From a DER SubjectPublicKeyInfo. kInvalidArgument when it does not parse.
  static Result<std::shared_ptr<const Verifier>> FromSpki(ByteSpan spki_der);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // True when `signature` (DER for ECDSA, raw for RSA) is valid over `digest`.
  bool Verify(SignatureScheme scheme, DigestAlgorithm digest, ByteSpan digest_value,
              ByteSpan signature) const;

 private:
  explicit Verifier(void* pkey) : pkey_(pkey) {}
  void* pkey_;  // EVP_PKEY*
};

// Reads the PEM chain and runs the offline checks (validity at `now`, key usage, algorithm policy).
// Errors name the check: "key 'k' refused: check 'validity period' failed: ...".
Result<KeyInfo> LoadAndCheckCertificate(const KeyOptions& key,
                                        std::chrono::system_clock::time_point now);

// DigestInfo (RFC 8017 §9.2) for PKCS#1 v1.5: the fixed prefix of the digest algorithm + digest.
Bytes DigestInfo(DigestAlgorithm digest, ByteSpan digest_value);

// r||s (each half the size) to a DER ECDSA-Sig-Value. kInternal on odd or empty input.
Result<Bytes> EcdsaRawToDer(ByteSpan raw);

// Random bytes for self-test digests.
Bytes RandomBytes(std::size_t n);

}  // namespace qseal::hsm::detail
