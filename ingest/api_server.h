// The HTTP API of qseald (DESIGN.md §5, contract):
//
//   POST /v1/documents?profile=NAME[&wait=SECONDS]   body: the raw document (streamed to the queue)
//        → 202 {"id","status":"queued","sha256","size"} + Location, or 200 + the status when
//          ?wait saw it finish; 401/403 auth, 413 too large (before the body is read), 422
//          idempotency conflict, 503 + Retry-After when the queue is above its high watermark.
//   GET  /v1/documents/{id}          → the status JSON (a client sees only its own documents)
//   GET  /v1/documents/{id}/seal     → the seal bytes; 404 unknown, 409 not sealed (yet)
//   POST /v1/batches?profile=NAME[&wait=SECONDS]   body: multipart/mixed, one document per part
//        (per-part Content-Type, Idempotency-Key, X-Filename) → 202 {"accepted","rejected",
//        "documents":[{"index","id","status","sha256","size"} | {"index","status":"rejected",
//        "error":{problem}}]}: every part has its own outcome, the accepted ones are synced in one
//        group commit before the answer; not atomic (a bad part never loses the good ones). 400
//        bad framing, 413 over max_batch_parts or max_batch_bytes (nothing is accepted then), 415
//        not multipart/mixed. ?wait answers 200 with each document's status once all are final.
//   POST /v1/batches/status[?wait=SECONDS]   body: {"ids":[...]} → {"done","documents":[status
//        JSON | {"id","error":{problem}}]}; ?wait long-polls until every known id is final.
//   GET  /v1/profiles                → the profiles the caller may use, with certificate chains
//   GET  /livez, GET /readyz         → unauthenticated liveness and readiness
//   /csc/v2/...                      → the CSC API v2 when enabled (ingest/detail/csc_handler.h,
//        docs/csc.md): info (unauthenticated), credentials/list, credentials/info,
//        signatures/signHash, signatures/signDoc; same credentials, same queue.
//
// Authentication: "Authorization: Bearer <token>" (tokens are known only by their SHA-256,
// compared in constant time), a client certificate verified against the client CA (mTLS, matched
// by subject or SPKI SHA-256 pin), or both when a client is configured with both. No path leads
// to a signature without a valid credential and a granted profile: the request is refused before
// its body is read. TLS (ingest/detail/tls_context.h) is on when a certificate is configured.
//
// ApiServer is thread-safe; Start and Stop are called by the daemon's main thread, Notify by the
// engine's committer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/status.h"
#include "publish/publisher.h"
#include "queue/queue.h"

namespace qseal::metrics {
class Metrics;
}

namespace boost::asio::ssl {
class context;
}

namespace qseal::ingest {

// A client is identified by each credential it has configured, all of which must match: a bearer
// token, a client certificate (by subject, by SPKI pin, or both), or a token and a certificate.
struct ApiClient {
  std::string name;
  Bytes token_sha256;                 // SHA-256 of the bearer token (32 bytes); empty: no token
  std::vector<std::string> profiles;  // profile names, or "*" for all
  std::string certificate_subject;    // RFC 2253 subject of its certificate; "": not by subject
  Bytes certificate_spki_sha256;      // SHA-256 of its certificate's SPKI (32 bytes); empty: none
};

struct ApiProfile {
  std::string name;
  std::string format;                 // "cades-detached" | "cades-enveloping"
  std::string digest;                 // "sha256", ...
  std::string scheme;                 // "ecdsa", ...
  std::string certificate_chain_pem;  // leaf first
  std::string level = "b-b";          // "b-b" | "b-t" (a signature time-stamp)
};

// The prefix of the CSC names: a client's signHash grants ("csc:KEY", "csc:*") and the daemon's
// internal raw-signature profiles ("csc:KEY:DIGEST:SCHEME"); configured profiles may not use it.
inline constexpr std::string_view kCscNamePrefix = "csc:";

// One CSC credential: a configured key a client may use when it is granted a profile sealing
// with it (or "*").
struct CscCredential {
  std::string id;                            // the key's name
  std::string key_type;                      // "ec" | "rsa"
  int key_bits = 0;                          // RSA modulus or EC field size
  std::string curve;                         // "P-256", "P-384" for EC keys
  std::vector<Bytes> certificate_chain_der;  // leaf first
  std::vector<std::string> profiles;         // the configured profiles sealing with this key
  // The daemon's internal raw-signature profile (formats::kRawSignatureFormat) for each
  // "DIGEST/SCHEME" the key signs, e.g. "sha256/ecdsa" -> "csc:seal:sha256:ecdsa".
  std::map<std::string, std::string> hash_profiles;
};

struct CscOptions {
  bool enabled = false;             // Default: false (/csc/v2/ answers 404)
  std::uint32_t max_hashes = 1000;  // Hashes per signHash, documents per signDoc. Default: 1000
  std::uint64_t max_request_bytes = 64ull << 20;  // signDoc carries documents. Default: 64 MiB
  std::string name = "qseal";                     // info's "name"
  std::string region;                             // info's "region"; "": left out
  std::vector<CscCredential> credentials;
};

// Told about refused submissions for the audit trail: `kind` is "auth_denied" (no or a wrong
// credential, a profile not granted) or "rejected" (unknown profile, Idempotency-Key conflict);
// `client` is "" when no client was authenticated; `source` is the peer's IP address ("" for an
// Idempotency-Key conflict found at commit time, where the client name identifies the caller).
// Runs on an API thread: must not block.
using RefusalListener =
    std::function<void(std::string_view kind, std::string_view client, std::string_view profile,
                       std::string_view reason, std::string_view source)>;

struct ApiServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8440;                         // 0 picks a free port (tests). Default: 8440
  std::uint64_t max_header_bytes = 16 << 10;         // Default: 16 KiB
  std::uint64_t max_body_bytes = 256ull << 20;       // Default: 256 MiB
  std::chrono::milliseconds header_timeout{10'000};  // Default: 10 s
  std::chrono::milliseconds body_timeout{300'000};   // Default: 5 min
  std::uint32_t max_connections = 1024;              // Default: 1024
  // Open connections from one IP address; more are closed at once. 0: no limit. Default: 256
  std::uint32_t max_connections_per_source = 256;
  // Requests per second per authenticated client (token bucket of `client_burst`); beyond it
  // 429 with Retry-After (problem+json). 0: no limit. Default: 0, 0 (burst = 2 s of the rate)
  double client_requests_per_second = 0;
  double client_burst = 0;
  std::uint32_t threads = 2;  // Default: 2
  // TLS: the server certificate (PEM, chain after it) and its key; both empty: plaintext HTTP.
  // Default: "" (plaintext)
  std::string tls_certificate_file;
  std::string tls_key_file;
  // PEM trust anchors (and optional CRLs) for client certificates; "": no mTLS. Default: ""
  std::string client_ca_file;
  // With client_ca_file: the handshake fails without a client certificate. Default: false
  bool require_client_certificate = false;
  std::chrono::milliseconds max_wait{60'000};  // Cap for ?wait. Default: 60 s
  // Threads doing the blocking part of a submission (the synced queue commit). Group commit
  // merges their syncs, so more threads means more documents per fsync. Default: 64
  std::uint32_t commit_threads = 64;
  std::uint32_t retry_after_seconds = 1;  // Retry-After on 503. Default: 1
  // POST /v1/batches limits: parts per batch and body bytes (413 above either, nothing accepted),
  // bytes per part (413 for that part only). Default: 1000, 64 MiB, 16 MiB.
  std::uint32_t max_batch_parts = 1000;
  std::uint64_t max_batch_bytes = 64ull << 20;
  std::uint64_t max_batch_part_bytes = 16ull << 20;
  // Ids in one POST /v1/batches/status request. Default: 10000
  std::uint32_t max_status_ids = 10000;
  std::vector<ApiClient> clients;
  std::vector<ApiProfile> profiles;
  CscOptions csc;
  // Requests, acceptances and refusals are counted here; may be null. Must outlive the server.
  metrics::Metrics* metrics = nullptr;
  // May be empty. Default: none.
  RefusalListener on_refusal;
  // Names the seal GET /v1/documents/{id}/seal offers (Content-Disposition filename), by the
  // record's profile's format; may be null (no filename then). Must outlive the server.
  const publish::SealNamer* seal_namer = nullptr;
};

// Returns OK when the daemon is ready to seal (queue open and writable, at least one HSM partition
// passed its self-test); otherwise the reason, shown on /readyz.
using ReadinessCheck = std::function<Status()>;

class ApiServer {
 public:
  // `queue` may be null (only /livez and /readyz are served then); it must outlive the server.
  ApiServer(ApiServerOptions options, queue::Queue* queue, ReadinessCheck readiness);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds and serves. kUnavailable when the address cannot be bound.
  Status Start();
  // The bound port; valid after Start.
  std::uint16_t port() const;
  // Stops taking submissions (503), answers pending ?wait requests, finishes the commits in
  // progress, stops the listener and joins its threads. Idempotent.
  void Stop();

  // Reads the TLS certificate, key and client CA files again; connections accepted from now on use
  // them, open ones keep the old ones. On error (kInvalidArgument, kFailedPrecondition without
  // TLS) the current ones stay in use.
  Status ReloadTls();

  // Tells ?wait requests that a document reached a final state. Non-blocking.
  void Notify(const queue::DocumentId& id);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A server TLS context with the API's policy (TLS 1.2+, AEAD suites with forward secrecy;
// docs/security.md) for another listener, e.g. /metrics. kInvalidArgument naming a file that
// cannot be read or a key that does not match.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(
    const std::string& certificate_file, const std::string& key_file,
    const std::string& client_ca_file, bool require_client_certificate);

}  // namespace qseal::ingest
