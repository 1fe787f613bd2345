// A loopback RFC 3161 TSA for the tests: Beast HTTP on 127.0.0.1 that answers
// application/timestamp-query with a token made by OpenSSL's TS_RESP_CTX (not qseal's code),
// signed with a TSA certificate the test's own CA issued (MakeTsaPki, through the openssl CLI).
// Fault knobs make it misbehave the ways a real TSA can; counters let tests assert on what the
// server saw (requests, connections, concurrency) rather than on time.
//
// Test-only code; thread-safe (the knobs and counters may be used while it serves).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace qseal::testing {

// Files under `dir`: ca.pem (trust anchor), tsa.pem/tsa.key (EKU critical timeStamping),
// tsa-noncritical.pem (same key, EKU not critical), rogue-ca.pem, rogue-tsa.pem/rogue-tsa.key
// (a TSA of another CA), tls.pem/tls.key (server certificate for 127.0.0.1 from ca.pem),
// tsa-expired.pem (same key, from ca.pem, expired: issued under libfaketime 40 days back; empty
// when libfaketime is not installed).
struct TsaPki {
  std::string dir;
  std::string ca_pem, tsa_pem, tsa_key, noncritical_pem, rogue_pem, rogue_key, tls_pem, tls_key,
      expired_pem;
};
Result<TsaPki> MakeTsaPki(const std::string& dir);
// The same paths under `dir`, without making anything (for a PKI made earlier).
TsaPki TsaPkiPaths(const std::string& dir);

enum class TsaFault {
  kNone,
  kHttp503,         // HTTP 503 Service Unavailable
  kRejection,       // a TimeStampResp with PKIStatus rejection
  kWrongNonce,      // signs a request whose nonce was changed
  kWrongImprint,    // signs a request whose digest was changed
  kUntrusted,       // signs with the rogue CA's TSA certificate
  kEkuNotCritical,  // signs with a certificate whose EKU timeStamping is not critical
  kDrop,            // reads the request, then closes the connection
  kGarbage,         // 200 application/timestamp-reply with a body that is not DER
  kBadSignature,    // a good token whose signature's last byte is flipped
  kExpired,         // signs with tsa-expired.pem (the CA's, but expired)
};

class TestTsa {
 public:
  // `tls`: serve HTTPS with pki.tls_pem.
  explicit TestTsa(TsaPki pki, bool tls = false);
  ~TestTsa();  // Stops.
  TestTsa(const TestTsa&) = delete;
  TestTsa& operator=(const TestTsa&) = delete;

  // Listens on 127.0.0.1:`port` (0: a free port) and serves on background threads.
  Status Start(int port = 0);
  void Stop();
  std::string url() const;
  int port() const { return port_; }

  void SetFault(TsaFault fault) { fault_ = fault; }
  void SetDelay(std::chrono::milliseconds delay) { delay_ms_ = static_cast<int>(delay.count()); }

  int requests() const { return requests_; }        // HTTP requests read
  int connections() const { return connections_; }  // TCP connections accepted
  int max_concurrent() const { return max_concurrent_; }

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  bool tls_;
  std::atomic<TsaFault> fault_{TsaFault::kNone};
  std::atomic<int> delay_ms_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
};

// A CMS seal's signature value and its signature-time-stamp tokens (DER), read with OpenSSL's
// CMS API (not with qseal's code). parsed is false when the seal is not CMS.
struct TimestampedSeal {
  bool parsed = false;
  std::string signature;
  std::vector<std::string> tokens;
};
TimestampedSeal ReadTimestampedSeal(const std::string& seal_der);

// `openssl ts -verify` of `token_der` (written to `token_path`) against `tsa_ca_pem`, with
// SHA-256(`signature`) as the imprint it must carry: "" when it passes, else openssl's output.
std::string OpensslTsVerify(const std::string& token_der, const std::string& signature,
                            const std::string& tsa_ca_pem, const std::string& token_path);

}  // namespace qseal::testing
