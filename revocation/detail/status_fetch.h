// One certificate's revocation status, fetched and verified (revocation_cache.h says what is
// checked). OpenSSL does the protocol work: its OCSP_* API, X509_CRL and its HTTP client.
// Blocking; thread-compatible (one call at a time per X509_STORE is not required: OpenSSL's
// stores are safe to share for verification).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <openssl/x509.h>

#include "common/bytes.h"
#include "common/status.h"

namespace qseal::revocation::detail {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// An accepted status: the response or CRL as received, and its validity.
struct CertStatus {
  Bytes der;  // OCSPResponse or CertificateList
  bool is_crl = false;
  std::chrono::system_clock::time_point this_update;
  std::optional<std::chrono::system_clock::time_point> next_update;
};

struct FetchLimits {
  std::chrono::milliseconds timeout{10'000};
  std::size_t max_bytes = 4u << 20;
};

// The first http(s) OCSP responder URL of the certificate's authorityInfoAccess, "" if none.
std::string OcspUrl(X509* cert);
// The first http(s) URL of the certificate's CRL distribution points, "" if none.
std::string CrlUrl(X509* cert);

// OCSP for `cert` issued by `issuer`; the response's signer must chain to a certificate in
// `trusted` (the root). kFailedPrecondition when it says revoked (the message gives the time and
// reason), kUnavailable for every other failure (the message says which).
Result<CertStatus> FetchOcsp(X509* cert, X509* issuer, X509_STORE* trusted, const std::string& url,
                             const FetchLimits& limits);

// The checks of FetchOcsp on a response already at hand (one read back from the store).
Result<CertStatus> CheckOcsp(X509* cert, X509* issuer, X509_STORE* trusted, Bytes der);

// The CRL at `url`, which `issuer` must have signed. kFailedPrecondition when it lists `cert`,
// kUnavailable for every other failure.
Result<CertStatus> FetchCrl(X509* cert, X509* issuer, const std::string& url,
                            const FetchLimits& limits);

// The checks of FetchCrl on a CRL already at hand.
Result<CertStatus> CheckCrl(X509* cert, X509* issuer, Bytes der);

}  // namespace qseal::revocation::detail
