// B-LT's revocation data (issue 18): the OCSP responses (or CRLs) of a seal certificate's chain,
// fetched from the URLs in the certificates, verified, cached and refreshed in the background by
// their validity, so the sealing pipeline only reads a snapshot (Current) and never waits on a
// responder.
//
// For each certificate of the chain but its self-signed root, with the next one as its issuer:
//   - OCSP (RFC 6960) when the certificate names a responder (authorityInfoAccess id-ad-ocsp,
//     http): a request without nonce (responses may be cached, RFC 5019), SHA-1 CertID, POSTed
//     through OpenSSL's HTTP client; the response must be successful, signed by the issuer or a
//     responder it delegated to (OCSP_basic_verify against the chain's root), name this
//     certificate, say "good" and be current (thisUpdate .. nextUpdate, 5 min of clock skew);
//   - else, or when OCSP fails, the CRL of its first http distribution point: signed by the
//     issuer, current, and not listing the certificate.
// A status is refreshed halfway through its validity (nextUpdate, or thisUpdate + max_age when
// the responder gives none), at the latest max_age after it was fetched; a failed fetch is retried
// every retry_interval while the last good status stays in use until it expires.
//
// Thread-safe: Current and Stats from any thread; one background thread per cache fetches.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "formats/format.h"

namespace qseal::revocation {

struct RevocationOptions {
  // What the cache is for, in logs and errors (the profile's key name).
  std::string name;
  // The seal certificate first, then its issuers up to and including the self-signed root (DER).
  std::vector<Bytes> chain_der;
  // One OCSP or CRL request, connect to last byte. Default: 10 s.
  std::chrono::milliseconds fetch_timeout{10'000};
  // After a failed fetch, the next attempt. Default: 30 s.
  std::chrono::milliseconds retry_interval{30'000};
  // A status is fetched again at least this often, and one without nextUpdate counts as current
  // for this long after its thisUpdate. Default: 1 h.
  std::chrono::milliseconds max_age{3'600'000};
  // The largest OCSP response or CRL accepted. Default: 4 MiB.
  std::size_t max_response_bytes = 4u << 20;
  // Where each accepted status is kept (one file per certificate, named by its SHA-256, written
  // atomically and synced), so that a restart while the responders are down still seals with the
  // statuses that are current: Start reads them back and checks them again as if just fetched,
  // and fetching goes on as usual. Created if missing. "": memory only. Default: "".
  std::string store_dir;
};

struct RevocationStats {
  std::uint64_t fetches = 0;       // OCSP or CRL requests answered and accepted
  std::uint64_t fetch_errors = 0;  // requests that failed or whose answer was refused
  bool current = false;            // Current() would return data now
  bool revoked = false;            // a certificate of the chain was reported revoked
  // Seconds until the first status of the snapshot expires (negative: expired); 0 without one.
  double seconds_to_expiry = 0;
};

class RevocationCache {
 public:
  // Errors: kInvalidArgument when a certificate does not parse, the chain does not end with a
  // self-signed root, a certificate is not issued by the next one, or a certificate other than
  // the root names neither an http OCSP responder nor an http CRL distribution point.
  static Result<std::unique_ptr<RevocationCache>> Create(RevocationOptions options);
  ~RevocationCache();  // Stops.
  RevocationCache(const RevocationCache&) = delete;
  RevocationCache& operator=(const RevocationCache&) = delete;

  // Reads back the stored statuses (store_dir), then starts the background thread; its first
  // round of fetches begins at once.
  void Start();
  void Stop();

  // The validation data of the whole chain, each status current. kUnavailable while one is
  // missing or expired (not fetched yet, responder down: the reason is the last fetch error);
  // kFailedPrecondition once a certificate was reported revoked (final: a revoked seal
  // certificate must not seal).
  Result<std::shared_ptr<const formats::ValidationData>> Current() const;

  RevocationStats Stats() const;

  class Impl;

 private:
  explicit RevocationCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::revocation
