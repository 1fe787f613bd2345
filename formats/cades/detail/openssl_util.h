// The OpenSSL 3 boundary of formats/cades: owning handles, digests, signature and chain checks,
// and the translation of OpenSSL errors into Status. Thread-safe functions.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/openssl_errors.h"
#include "common/status.h"

namespace qseal::formats::cades::detail {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;

// The error text helper, common to every libcrypto caller.
using qseal::DrainOpenSslErrors;

Result<X509Ptr> ParseCertificate(ByteSpan der);

// The digest implementation, fetched once per process (explicit fetch avoids a per-call lookup).
const EVP_MD* Md(DigestAlgorithm digest);

Result<Bytes> Digest(DigestAlgorithm digest, ByteSpan data);

// Incremental digest. Thread-compatible.
class StreamDigest {
 public:
  explicit StreamDigest(DigestAlgorithm digest);
  Status status() const { return status_; }
  void Update(ByteSpan data);
  Result<Bytes> Final();

 private:
  EvpMdCtxPtr ctx_;
  Status status_;
};

// Verifies `signature` over `data` (hashed with `digest`) with `key` under `scheme` (PSS: MGF1
// with `digest`, salt length `pss_salt_length`). kInvalidArgument with OpenSSL's reason otherwise.
Status VerifySignature(EVP_PKEY* key, DigestAlgorithm digest, SignatureScheme scheme,
                       std::size_t pss_salt_length, ByteSpan data, ByteSpan signature);

// notBefore / notAfter of a certificate.
std::chrono::system_clock::time_point NotBefore(const X509* cert);
std::chrono::system_clock::time_point NotAfter(const X509* cert);

// The keyUsage bits (KU_* from <openssl/x509v3.h>) or nullopt when the extension is absent.
std::optional<std::uint32_t> KeyUsage(X509* cert);

// True when two DER Names are equal under X.509 name matching (OpenSSL's canonical comparison,
// which ignores case and string-type differences that raw bytes would not).
bool SameName(ByteSpan a, ByteSpan b);

// Builds and verifies the path from `leaf` (with `untrusted` as intermediates) to one of
// `anchors` at `at`. Partial chains are accepted (an anchor may be an intermediate). No purpose
// is enforced (key usage is checked separately). kInvalidArgument with the X509 verify reason.
Status VerifyChain(X509* leaf, const std::vector<X509*>& untrusted,
                   const std::vector<X509*>& anchors, std::chrono::system_clock::time_point at);

}  // namespace qseal::formats::cades::detail
