// RFC 3161 messages through OpenSSL's TS_* API: building a TimeStampReq and verifying a
// TimeStampResp against the request it answers. No I/O.
//
// Pure functions and an immutable trust store; thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/status.h"
#include "tsa/tsa_client.h"

typedef struct x509_store_st X509_STORE;

namespace qseal::tsa::detail {

// A DER TimeStampReq with what its answer must echo.
struct PreparedRequest {
  Bytes der;
  DigestAlgorithm algorithm = DigestAlgorithm::kSha256;
  Bytes digest;
  Bytes nonce;  // big-endian, positive, 8 bytes
  std::string policy_oid;
};

// certReq is always set, so the token carries the TSA's certificate. kInvalidArgument when the
// digest length does not fit `algorithm` or `policy_oid` is not an OID.
Result<PreparedRequest> BuildRequest(DigestAlgorithm algorithm, ByteSpan digest,
                                     const std::string& policy_oid);

// The trust anchors of one TSA: an X509_STORE loaded from a PEM file. Immutable once loaded.
class TrustStore {
 public:
  // kInvalidArgument when the file cannot be read or holds no certificate.
  static Result<std::shared_ptr<TrustStore>> Load(const std::string& ca_file);
  ~TrustStore();
  TrustStore(const TrustStore&) = delete;
  TrustStore& operator=(const TrustStore&) = delete;

  X509_STORE* get() const { return store_; }

 private:
  explicit TrustStore(X509_STORE* store) : store_(store) {}
  X509_STORE* store_;
};

struct VerifyParams {
  const PreparedRequest* request = nullptr;
  const TrustStore* trust = nullptr;
  std::chrono::system_clock::time_point now;
  std::chrono::seconds max_clock_skew{300};
};

// Verifies a DER TimeStampResp (see tsa_client.h for the checks) and returns its token. The
// error is kUnavailable with the reason ("nonce mismatch", "PKIStatus rejection", ...): a TSA
// that answers badly is a TSA that is down for this request.
Result<TimeStampToken> VerifyResponse(ByteSpan response, const VerifyParams& params);

}  // namespace qseal::tsa::detail
