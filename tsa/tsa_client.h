// The RFC 3161 time-stamp client the formats use for B-T: it asks one of several TSAs for a
// TimeStampToken over a digest (for CAdES B-T, the digest of the signature value) and hands back
// the token only after verifying it.
//
// What a token has passed before Stamp() reports it (every check is OpenSSL's TS_VERIFY_CTX plus
// a few of ours, each failure with its own message):
//   - the PKIStatus is granted or grantedWithMods;
//   - the message imprint (algorithm and digest) equals the request's, and so does the nonce;
//   - the TSA's certificate chain verifies against the endpoint's trust anchor(s) (`ca_file`), the
//     signing certificate carries the extended key usage timeStamping, marked critical, and the
//     ESS signing-certificate attribute names it;
//   - the policy, when the endpoint names one, is that policy;
//   - genTime lies within `max_clock_skew` of the local clock.
//
// Transport: HTTP/1.1 POST `application/timestamp-query` (RFC 3161 §3.4) over a bounded pool of
// keep-alive connections per TSA (`connections`), plain or TLS (`https://` URLs verify the
// server against `tls_ca_file`). Requests beyond the pool queue per TSA, so a batch's requests
// are all in flight at once and served as fast as the connections turn around.
//
// Failure handling, per TSA: a circuit breaker opens after `breaker_failures` consecutive
// failures (transport errors, HTTP errors, refused responses) and lets one probe through after
// `breaker_cooldown`; a token bucket limits the request rate (`rate_per_second`, `burst`). A failed
// attempt is retried after an exponential back-off on another TSA when one is available, up to
// `max_attempts` attempts in all. When every TSA's breaker is open, or the attempts are used up,
// the request ends with kUnavailable: the caller keeps the document queued and retries later; it
// never seals at a lower level.
//
// Errors reported to the callback: kUnavailable (no TSA available, or every attempt failed: the
// message names the TSA and the last reason, e.g. "nonce mismatch"), kInvalidArgument (the
// digest length does not fit the algorithm), kResourceExhausted (TryStamp only: more than
// `max_pending` requests are outstanding), kCancelled (the client was shut down first).
//
// Threads: the client runs its own I/O thread (Boost.Asio); callbacks run on that thread and must
// not block (hand the token off). Stamp() and TryStamp() never block on the network.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"

namespace qseal::tsa {

// One TSA, as a `[[tsa]]` section of the config will name it.
struct TsaEndpoint {
  // Name used in messages, metrics labels and profiles' `tsa = [...]`. Default: none (required).
  std::string name;
  // "http://host[:port]/path" or "https://host[:port]/path". Default: none (required).
  std::string url;
  // PEM file of the trust anchor(s) the TSA's certificate chain must verify against.
  // Default: none (required).
  std::string ca_file;
  // PEM file of the CA(s) that sign the HTTPS server's certificate (https URLs only).
  // Default: empty (https refused without it).
  std::string tls_ca_file;
  // TSA policy OID to ask for (reqPolicy) and to require in the token. Default: empty (the
  // TSA's default policy, any accepted).
  std::string policy_oid;
  // Token-bucket rate limit, requests per second; 0 means unlimited. Default: 0.
  double rate_per_second = 0;
  // Token-bucket depth: requests that may go at once after an idle period. Default: 10.
  std::size_t burst = 10;
  // Keep-alive connections to this TSA, at most. Default: 4.
  std::size_t connections = 4;
  // Deadline of one attempt (connect + send + answer). Default: 5 s.
  std::chrono::milliseconds timeout{5000};
};

struct TsaClientOptions {
  // The TSAs in order of preference: the first available one gets the request. Default: none.
  std::vector<TsaEndpoint> tsas;
  // Attempts per request, over all TSAs. Default: 3.
  int max_attempts = 3;
  // Back-off before the second attempt; doubles each attempt up to backoff_max.
  // Default: 50 ms, 2 s.
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  // Consecutive failures that open a TSA's breaker. Default: 5.
  int breaker_failures = 5;
  // How long an open breaker waits before letting one probe through. Default: 30 s.
  std::chrono::milliseconds breaker_cooldown{30000};
  // genTime may differ from the local clock by this much at most. Default: 5 min.
  std::chrono::seconds max_clock_skew{300};
  // Requests outstanding (queued, in flight or backing off) beyond which TryStamp refuses.
  // Default: 10000.
  std::size_t max_pending = 10000;
  // Called on the I/O thread when an attempt's answer (or its transport failure) is back, with
  // the TSA's name and the time since it was sent: the metrics' latency histogram. Must be cheap.
  // Default: none.
  std::function<void(const std::string& tsa, std::chrono::nanoseconds took)> on_attempt;
};

// A verified token.
struct TimeStampToken {
  Bytes der;  // the TimeStampToken: a CMS ContentInfo (SignedData over TSTInfo), DER.
  std::chrono::system_clock::time_point gen_time;
  std::string tsa;         // name of the endpoint that issued it
  std::string serial_hex;  // TSTInfo serialNumber, lower-case hex
};

// What Health() reports per TSA: state and totals since Create, for the metrics bridge
// (qseal_tsa_* snapshot metrics, see docs/timestamps.md).
enum class BreakerState { kClosed, kOpen, kHalfOpen };
struct TsaHealth {
  std::string name;
  BreakerState state = BreakerState::kClosed;
  int consecutive_failures = 0;
  std::size_t open_connections = 0;
  std::size_t queued = 0;          // waiting for a connection or a rate token
  std::uint64_t requests = 0;      // attempts sent
  std::uint64_t tokens = 0;        // attempts that gave a verified token
  std::uint64_t failures = 0;      // attempts that failed (transport, HTTP, refused)
  double request_seconds_sum = 0;  // send -> answer verified or failed, over all attempts
};

using StampCallback = std::function<void(Result<TimeStampToken>)>;

// Thread-safe.
class TsaClient {
 public:
  // Checks the options (URLs parse, files load, at least one TSA) and starts the I/O thread. No
  // connection is opened before the first request. kInvalidArgument on a bad option. `clock`
  // (breaker cool-downs, rate limits, genTime checks) must outlive the client.
  static Result<std::unique_ptr<TsaClient>> Create(TsaClientOptions options,
                                                   Clock& clock = Clock::Real());

  // Shuts down (see Shutdown) and joins the I/O thread.
  ~TsaClient();
  TsaClient(const TsaClient&) = delete;
  TsaClient& operator=(const TsaClient&) = delete;

  // Asks for a token over `digest` (a digest made with `algorithm`). `done` runs exactly once
  // with the verified token or an error (see the file comment): on the client's I/O thread, or
  // on the caller's thread for a digest of the wrong length and after Shutdown. Never blocks;
  // requests are accepted without limit.
  void Stamp(DigestAlgorithm algorithm, ByteSpan digest, StampCallback done);
  // Same, but refuses with kResourceExhausted (before calling `done`, which then never runs)
  // when max_pending requests are already outstanding.
  Status TryStamp(DigestAlgorithm algorithm, ByteSpan digest, StampCallback done);
  // The future form of Stamp.
  std::future<Result<TimeStampToken>> Stamp(DigestAlgorithm algorithm, ByteSpan digest);

  // The breaker state and connection count of every TSA, in configuration order; empty after
  // Shutdown. Blocks until the I/O thread answers (microseconds); callable from a callback.
  std::vector<TsaHealth> Health() const;
  // Requests accepted and not yet reported.
  std::size_t pending() const;

  // Fails every outstanding request with kCancelled, closes the connections and stops the I/O
  // thread. Later requests fail with kCancelled at once. Blocks until the I/O thread has stopped;
  // must not be called from a callback. Idempotent; concurrent calls wait for the first.
  void Shutdown();

  class Impl;

 private:
  explicit TsaClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::string_view BreakerStateName(BreakerState state);

}  // namespace qseal::tsa
