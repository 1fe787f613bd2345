// qseald's configuration: one TOML file (conf/qseald.toml documents every key and its default).
//
// Loading validates everything it can without touching the HSM or the disk: types, ranges,
// unknown keys, references between sections (a profile's key exists, a watch's profile exists).
// Every problem is reported with its key path and line, all at once, so an operator fixes the file
// in one pass. String values may reference the environment as ${NAME} or ${NAME:-default};
// secrets (PINs, API tokens) are only ever given by reference (file:/path, env:NAME, a hash).
//
// Config is a plain value type; thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/algorithms.h"
#include "common/status.h"
#include "revocation/revocation_cache.h"
#include "tsa/tsa_client.h"

namespace qseal::daemon {

struct ServerConfig {
  std::string listen = "127.0.0.1:8440";        // host:port of the HTTP API.
  std::uint64_t max_body_bytes = 256ull << 20;  // Larger documents get 413 before the body is read.
  std::uint64_t max_header_bytes = 16 << 10;
  std::chrono::milliseconds header_timeout{
      10'000};                                      // Whole request header must arrive within this.
  std::chrono::milliseconds body_timeout{300'000};  // Whole body must arrive within this.
  std::uint32_t max_connections = 1024;
  std::uint32_t max_connections_per_source = 256;  // Open connections from one IP address.
  std::uint32_t client_requests_per_second = 0;    // Per client; 0: no limit. Over it: 429.
  std::uint32_t client_burst = 0;                  // 0: two seconds of the rate.
  std::chrono::milliseconds max_wait{60'000};      // Upper bound for ?wait=SECONDS.
  std::uint32_t threads = 2;                       // Asio threads serving the API.
  // POST /v1/batches: parts per batch, body bytes per batch, bytes per part.
  std::uint32_t max_batch_parts = 1000;
  std::uint64_t max_batch_bytes = 64ull << 20;
  std::uint64_t max_batch_part_bytes = 16ull << 20;
  // TLS (docs/security.md): server certificate (PEM, chain after it) and key; both or neither.
  std::string tls_certificate;
  std::string tls_key;
  // PEM trust anchors (and CRLs) for client certificates (mTLS); needs TLS. "": no mTLS.
  std::string client_ca;
  bool require_client_certificate = false;  // With client_ca: no certificate, no handshake.
  // Without TLS, a listen address other than loopback is refused unless this is true.
  bool allow_plaintext = false;
};

struct MetricsConfig {
  std::string listen = "127.0.0.1:9464";
  // HTTPS for /metrics (the API's TLS policy): certificate and key, both or neither; client_ca
  // for scrapers with certificates (require_client_certificate: only those). Without TLS a listen
  // address other than loopback is refused unless allow_plaintext.
  std::string tls_certificate;
  std::string tls_key;
  std::string client_ca;
  bool require_client_certificate = false;
  bool allow_plaintext = false;
};

struct QueueConfig {
  std::string path = "var/queue";
  std::uint64_t high_watermark_documents = 1'000'000;
  std::uint64_t low_watermark_documents = 900'000;
  std::uint64_t high_watermark_bytes = 8ull << 30;
  std::uint64_t low_watermark_bytes = 6ull << 30;
  // Free space kept on the queue's filesystem: below it, acceptance answers 503 (0 = no reserve).
  std::uint64_t min_free_bytes = 64ull << 20;
  std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};
  std::chrono::milliseconds lease_duration{300'000};
  std::uint32_t max_attempts = 5;
  std::chrono::milliseconds retry_backoff{2'000};
  // Group-commit linger when the queue is lightly loaded (queue::QueueOptions::commit_linger).
  std::chrono::milliseconds commit_linger{0};
};

struct EngineConfig {
  std::uint32_t lease_batch = 256;
  std::uint32_t max_documents_in_flight = 4096;
  std::uint64_t max_bytes_in_flight = 256ull << 20;
  std::chrono::milliseconds drain_timeout{30'000};
};

struct HsmConfig {
  std::uint32_t max_batch = 32;
  std::chrono::microseconds max_linger{1'000};
  std::uint32_t max_pending = 8192;
  std::chrono::milliseconds sign_timeout{10'000};
  std::chrono::milliseconds reinit_interval{30'000};
  std::chrono::milliseconds hung_call_timeout{60'000};
  std::uint32_t max_attempts = 4;
};

struct AuditConfig {
  bool enabled = true;            // Off: no audit trail (tests and benchmarks only).
  std::string dir = "var/audit";  // Segment directory.
  std::uint64_t segment_bytes = 64ull << 20;
  std::chrono::milliseconds segment_age{24LL * 3600 * 1000};
  std::uint64_t preallocate_bytes = 1 << 20;  // Zeros written ahead of the records (0: none).
  std::uint64_t checkpoint_records = 10'000;
  std::chrono::milliseconds checkpoint_interval{60'000};
  // "file:/path" of an ECDSA P-256 PEM key (PKCS#11 keys are not supported yet).
  std::string checkpoint_key = "file:var/pki/audit-checkpoint.pem";
  bool create_checkpoint_key = true;  // Generate the key file when it does not exist.
  // Not a config key: `qseald --new-audit-key`, the operator's explicit request to start a new
  // checkpoint key when the key file is missing although audit segments exist
  // (AuditOptions::new_key).
  bool new_checkpoint_key = false;
  // Refused requests (auth_denied, rejected) recorded one by one: a token bucket per kind and
  // caller (the client's name, or the source address when none was authenticated); the rest are
  // counted into a summary record of that caller (audit/refusal_limiter.h).
  std::uint32_t refusal_records_per_second = 10;
  std::uint32_t refusal_burst = 100;
};

struct PartitionConfig {
  std::string name;
  std::string module;      // Path of the PKCS#11 module (.so).
  std::string token;       // Token label; or
  std::string serial;      // token serial number.
  std::string pin_source;  // "file:/path" or "env:NAME".
  std::uint32_t sessions = 4;
  // Idle-session keepalive (0: off) and in-place retries of CKR_DEVICE_ERROR
  // (hsm::PartitionOptions; docs/hsm-vendors.md).
  std::chrono::milliseconds keepalive_interval{0};
  std::uint32_t device_error_retries = 0;
};

struct KeyConfig {
  std::string name;
  std::string uri;                // RFC 7512, e.g. "pkcs11:object=seal;type=private".
  std::string certificate_chain;  // PEM file, leaf first.
  std::vector<std::string> partitions;
  bool allow_rsa_below_3072 = false;
};

struct ProfileConfig {
  std::string name;
  std::string format = "cades-detached";  // one of formats::FormatNames()
  DigestAlgorithm digest = DigestAlgorithm::kSha256;
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  std::string key;
  // XAdES formats: "exc-c14n" or "c14n11" (formats::FormatOptions::c14n); ignored by CAdES.
  std::string c14n = "exc-c14n";
  // "b-b", "b-t" (a signature time-stamp from `tsa`) or "b-lt" (CAdES, XAdES: B-T plus the chain's
  // OCSP responses or CRLs, from the [revocation] cache); docs/timestamps.md.
  std::string level = "b-b";
  // The [[tsa]] names a b-t or b-lt profile asks, in order of preference (failover to the next).
  std::vector<std::string> tsa;
  // b-t, b-lt: a document waits this long after acceptance for a time-stamp (and revocation
  // data), then fails. Default: 1 h.
  std::chrono::milliseconds timestamp_wait{3'600'000};
};

struct WatchConfig {
  std::string root;
  std::string profile;
  std::chrono::milliseconds poll_interval{0};  // 0: inotify only; >0 also rescans (network shares).
  std::uint64_t max_file_bytes = 256ull << 20;
  // `owner`: a user name or a uid; files of other owners go to failed/. Unset: any owner.
  std::optional<std::uint32_t> owner_uid;
};

// One NATS JetStream source and its result sink (docs/scale-out.md).
struct JetStreamConfig {
  std::string name;                   // Names the source; records' client is "jetstream:<name>".
  std::vector<std::string> servers;   // "nats://host:port", at least one.
  std::string token_source;           // "file:/path" or "env:NAME"; empty: no token.
  std::string credentials_file;       // A NATS .creds file; empty: none.
  std::string stream;                 // The work-queue stream of documents.
  std::vector<std::string> subjects;  // Its subjects (used when creating it).
  std::string consumer = "qseald";    // The durable pull consumer every node shares.
  bool create = true;                 // Create stream, consumer and result stream when missing.
  std::string profile;                // Profile of messages without a Qseal-Profile header.
  std::vector<std::string> profiles;  // Other profiles a message may ask for.
  std::uint32_t fetch_batch = 64;
  std::chrono::milliseconds fetch_wait{1'000};
  std::uint32_t max_ack_pending = 1024;
  std::chrono::milliseconds ack_wait{60'000};    // At least 5 s: longer than one enqueue.
  std::string result_subject = "qseal.results";  // Results go to <result_subject>.<hex>.
  std::string result_stream = "QSEAL_RESULTS";
  std::chrono::milliseconds result_duplicate_window{120'000};
  std::chrono::milliseconds publish_timeout{5'000};
};

// One Kafka source and its result sink (docs/scale-out.md, "Kafka").
struct KafkaConfig {
  std::string name;                  // Names the source; records' client is "kafka:<name>".
  std::vector<std::string> brokers;  // Bootstrap servers "host:port", at least one.
  std::string security_protocol = "plaintext";  // plaintext, ssl, sasl_plaintext, sasl_ssl.
  std::string ssl_ca;          // CA bundle for the brokers' certificates; "": system's.
  std::string sasl_mechanism;  // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (sasl_*).
  std::string sasl_username;
  std::string sasl_password_source;   // "file:/path" or "env:NAME" (never the password).
  std::vector<std::string> topics;    // Topics of documents.
  std::string group = "qseald";       // The consumer group every node shares.
  std::string profile;                // Profile of records without a Qseal-Profile header.
  std::vector<std::string> profiles;  // Other profiles a record may ask for.
  std::uint32_t fetch_batch = 64;
  std::chrono::milliseconds fetch_wait{1'000};
  // How long the group waits for a silent node (killed, cut off) before its partitions go to
  // the others (session.timeout.ms; the brokers bound it, 6 s to 30 min by default).
  std::chrono::milliseconds session_timeout{45'000};
  std::string result_topic = "qseal.results";
  std::chrono::milliseconds publish_timeout{10'000};
};

// The CSC API v2 under /csc/v2/ (docs/csc.md). Off by default: signHash signs any hash a
// granted client sends, which an operator must choose to allow.
struct CscConfig {
  bool enabled = false;
  std::uint32_t max_hashes = 1000;  // Hashes in one signHash (and documents in one signDoc).
  std::string name = "qseal";       // The service name info reports.
  std::string region = "";          // ISO 3166-1 alpha-2 country code info reports; "": none.
};

// A client needs a token, a certificate identity, or both (then both must match).
struct ClientConfig {
  std::string name;
  std::string token_sha256;             // hex SHA-256 of the bearer token, or
  std::string token_sha256_file;        // a file holding it.
  std::string certificate_subject;      // RFC 2253 subject of its client certificate, and/or
  std::string certificate_spki_sha256;  // hex SHA-256 of its certificate's SubjectPublicKeyInfo.
  std::vector<std::string> profiles;
};

struct Config {
  std::string source_path;  // The file it was loaded from.
  std::string log_level = "info";
  ServerConfig server;
  MetricsConfig metrics;
  QueueConfig queue;
  EngineConfig engine;
  HsmConfig hsm;
  AuditConfig audit;
  CscConfig csc;
  // [[tsa]] sections (RFC 3161 time-stamping authorities) and the [tsa_client] policy shared by
  // every profile's client (retries, breaker, clock skew); docs/timestamps.md.
  std::vector<tsa::TsaEndpoint> tsas;
  tsa::TsaClientOptions tsa_client;
  // [revocation]: how the b-lt profiles' revocation data is fetched and refreshed (one cache per
  // key; name and chain_der are filled in by the daemon).
  revocation::RevocationOptions revocation;
  std::vector<PartitionConfig> partitions;
  std::vector<KeyConfig> keys;
  std::vector<ProfileConfig> profiles;
  std::vector<WatchConfig> watches;
  std::vector<JetStreamConfig> jetstreams;
  std::vector<KafkaConfig> kafkas;
  std::vector<ClientConfig> clients;
};

// Loads and validates the file. On failure the Status is kInvalidArgument and `errors` (when
// given) receives one line per problem: "FILE:LINE: key.path: what is wrong".
Result<Config> LoadConfig(const std::string& path, std::vector<std::string>* errors = nullptr);
// Same, from text (for tests); `origin` names it in messages.
Result<Config> ParseConfig(const std::string& text, const std::string& origin,
                           std::vector<std::string>* errors = nullptr);

// Whether `host` (an IP literal or "localhost") only accepts connections from this machine.
bool IsLoopbackHost(const std::string& host);

// Splits "host:port"; kInvalidArgument when malformed.
Status SplitHostPort(const std::string& addr, std::string* host, std::uint16_t* port);

}  // namespace qseal::daemon
