// hsm::Signer: the PKCS#11 signing dispatcher, qseal's only door to the HSM.
//
// Callers submit sign requests (a key name, a scheme, a digest) and get the signature back through
// a callback. The signer groups requests per key into batches and hands each batch to an idle
// session of a healthy partition holding that key (least loaded partition first); each session has
// its own thread, which runs one C_Sign per digest, verifies the signature in software with the
// certificate's public key, and completes the request. Failures climb the recovery ladder
// (docs/hsm.md): session errors re-open the session, a logged-out token logs in once more, device
// errors take the partition down (circuit breaker), re-route its work to the other partitions
// holding the key, re-initialise the module with back-off and readmit the partition after a test
// sign+verify; a wrong or locked PIN disables the partition for good; a signature that fails
// verification is never returned and quarantines its partition; a call hanging past sign_timeout
// marks its session dead and re-routes the request.
//
// Nothing here blocks on the HSM except Submit (which waits for queue room, with a deadline) and
// Create/Shutdown. Callbacks run on the signer's own threads; hand work off from there.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/status.h"

namespace qseal::hsm {

// One PKCS#11 token (an HSM partition). Config section [[partition]].
struct PartitionOptions {
  // Unique name used in logs, metrics labels and KeyOptions::partitions. Required.
  std::string name;
  // Path of the PKCS#11 module to dlopen (e.g. /usr/lib/softhsm/libsofthsm2.so). Required.
  // Partitions with the same path share one loaded module (and its re-initialisations).
  std::string module_path;
  // The token is found by label or serial (at least one; both must match when both are given),
  // never by slot id. Default: empty.
  std::string token_label;
  std::string token_serial;
  // Where the user PIN comes from: "file:/path" (whole file, one trailing newline stripped) or
  // "env:NAME". The PIN itself is never logged. Required.
  std::string pin_source;
  // Sessions (and session threads) opened on this partition, 1..1024. Network HSMs want tens in
  // flight (vendors advise 30-60 per HSM); a load-shared slot spreading over several modules
  // wants that per module behind it (docs/hsm-vendors.md). Default: 4.
  int sessions = 4;
  // A session with no call for this long gets a cheap call (C_GetSessionInfo) from its own
  // thread, so an HSM that drops idle sessions (Utimaco AppTimeout, 30 min by default) never
  // sees one idle; set it well below the HSM's idle timeout. A keepalive that finds the session
  // gone closes it (the next request opens a new one) and one that finds the token logged out
  // logs in again. 0: no keepalive. Default: 0.
  std::chrono::milliseconds keepalive_interval{0};
  // C_Sign (or C_SignInit) answering CKR_DEVICE_ERROR is tried again on the same session up to
  // this many times before the partition is taken down: a slot load-shared over several modules
  // (nShield CKNFAST_LOADSHARING=1) fails some calls only while one module is failing. 0..10.
  // Default: 0 (the first device error takes the partition down).
  int device_error_retries = 0;
};

// One seal key and its certificate chain. Config section [[key]].
struct KeyOptions {
  // Unique name that SignRequest::key refers to. Required.
  std::string name;
  // RFC 7512 PKCS#11 URI of the private key, e.g. "pkcs11:object=seal;type=private" (object label
  // and/or id; token attributes in the URI are ignored: partitions choose the token). Required.
  std::string uri;
  // PEM file: the seal certificate first, then its issuers. Required. The leaf must match the key
  // in every partition (checked by a test sign+verify).
  std::string certificate_chain_file;
  // Names of the partitions holding copies of this key. Required, non-empty.
  std::vector<std::string> partitions;
  // Policy: RSA keys below 3072 bits are refused unless this is set. Default: false.
  bool allow_rsa_below_3072 = false;
};

struct SignerOptions {
  // Most requests handed to one session in one dispatch. Default: 32.
  std::size_t max_batch = 32;
  // A key's queue holding fewer than max_batch requests is dispatched once its oldest request has
  // waited this long (0: as soon as a session is idle); then everything queued is spread over the
  // idle sessions. Under load batches fill on their own while every session is busy. Must be
  // shorter than max_queue_time. Default: 0 ms.
  std::chrono::milliseconds max_linger{0};
  // Most requests accepted and not yet completed (queued + in flight); TrySubmit answers
  // kResourceExhausted beyond it. Default: 4096.
  std::size_t max_pending = 4096;
  // A C_Sign running longer than this marks its session dead; the request is re-routed.
  // Default: 10 s.
  std::chrono::milliseconds sign_timeout{10'000};
  // A call that has been inside a PKCS#11 module longer than this wedges the module: the call
  // cannot be abandoned safely (PKCS#11 leaves C_Finalize undefined while a call is inside the
  // library, and a thread cannot be taken back from it), so Health() reports kUnavailable from
  // then on, Ready() turns false and the owner is expected to restart the process (qseald exits
  // 69; nothing accepted is lost, the queue is durable). Must be at least sign_timeout.
  // Default: 60 s.
  std::chrono::milliseconds hung_call_timeout{60'000};
  // A module is re-initialised (C_Finalize + C_Initialize) at most once per interval.
  // Default: 30 s.
  std::chrono::milliseconds reinit_interval{30'000};
  // Back-off between recovery probes of a partition that is down: starts at the first value and
  // doubles up to the second. Default: 500 ms, 30 s.
  std::chrono::milliseconds probe_backoff_initial{500};
  std::chrono::milliseconds probe_backoff_max{30'000};
  // Consecutive failed session re-opens after which a partition is taken down. Default: 3.
  int max_session_failures = 3;
  // Attempts (C_Sign calls that failed in a retryable way) before a request fails with the last
  // reason. Default: 4.
  int max_attempts = 4;
  // A request waiting in the queue longer than this (e.g. every partition of its key is down)
  // fails with kUnavailable and the last partition error. Default: 30 s.
  std::chrono::milliseconds max_queue_time{30'000};
  // Verify every signature with the certificate's public key before returning it. A BENCHMARK
  // SWITCH ONLY (to measure the verify cost): never exposed as a config option; qseald always
  // leaves it on (DESIGN.md §1). Default: true.
  bool verify_after_sign = true;
};

struct SignRequest {
  std::string key;  // KeyOptions::name
  SignatureScheme scheme = SignatureScheme::kEcdsa;
  DigestAlgorithm digest = DigestAlgorithm::kSha256;
  Bytes digest_value;  // exactly DigestSize(digest) bytes: the hash, not the data
};

// Receives the signature or the reason it could not be made. ECDSA: DER ECDSA-Sig-Value;
// RSA (PKCS#1 v1.5 and PSS): the raw signature, modulus-sized. Error codes: kInvalidArgument
// (request does not fit the key), kUnavailable (no partition could sign within max_attempts or
// max_queue_time; message carries the last CKR_* name), kCancelled (Shutdown), kPermissionDenied
// (every partition of the key is disabled, e.g. wrong PIN).
// Runs on a signer thread (a session thread or the supervisor), or on the thread calling
// Shutdown; it must not block for long and must not call Shutdown. Called exactly once.
using SignCallback = std::function<void(Result<Bytes> signature)>;

enum class KeyType { kRsa, kEc };

struct KeyInfo {
  std::string name;
  KeyType type = KeyType::kEc;
  int bits = 0;                              // RSA modulus bits, or EC field bits (256, 384)
  std::string curve;                         // "P-256" / "P-384" for EC keys, empty for RSA
  std::vector<Bytes> certificate_chain_der;  // leaf first
  Bytes subject_public_key_info_der;         // the leaf's SPKI
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  std::vector<std::string> partitions;
};

enum class PartitionState {
  kStarting,     // not yet probed
  kUp,           // self-test passed, taking work
  kDown,         // circuit open: recovering with back-off
  kQuarantined,  // produced a signature that failed verification; out until restart
  kDisabled,     // wrong/locked PIN, token or key missing: never retried
};
std::string_view PartitionStateName(PartitionState s);  // "starting", "up", ...

struct PartitionStats {
  std::string name;
  PartitionState state = PartitionState::kStarting;
  int sessions_total = 0;
  int sessions_busy = 0;              // holding a batch
  int sessions_idle = 0;              // open and waiting for work
  int sessions_dead = 0;              // hung past sign_timeout or failed to open
  std::uint64_t signatures = 0;       // verified signatures returned
  std::uint64_t reinits = 0;          // module re-initialisations caused by this partition
  std::uint64_t session_reopens = 0;  // sessions opened again after an error or a re-init
  std::uint64_t verify_failures = 0;
  std::uint64_t timeouts = 0;            // calls past sign_timeout
  std::uint64_t keepalives = 0;          // keepalive calls on idle sessions
  std::uint64_t keepalive_failures = 0;  // of which found the session gone (or failed)
  // Sessions found dropped by the HSM at the first call of a request (idle timeout), re-opened
  // and the request signed on the new session without spending an attempt.
  std::uint64_t stale_session_retries = 0;
  std::uint64_t device_error_retries = 0;         // C_Sign retried in place after CKR_DEVICE_ERROR
  std::vector<std::uint64_t> session_signatures;  // signatures returned, per session
  std::map<std::string, std::uint64_t> errors;    // by CKR_* name
  std::string last_error;                         // empty when none
};

// A private key's protection attributes on one partition, read at startup (eIDAS Annex II 1(b),
// 1(c) and 4: the key never leaves the QSCD in the clear). Signer::Create refuses a key that is
// extractable or not sensitive (or whose attributes the token does not report).
struct KeyProtection {
  std::string key;                 // KeyOptions::name
  std::string partition;           // PartitionOptions::name
  bool sensitive = false;          // CKA_SENSITIVE
  bool extractable = true;         // CKA_EXTRACTABLE
  bool never_extractable = false;  // CKA_NEVER_EXTRACTABLE (false for an imported backup copy)
  bool always_sensitive = false;   // CKA_ALWAYS_SENSITIVE (likewise)
};

// What the startup probe learnt about one partition (qseald --probe-hsm prints it). Strings are
// the PKCS#11 fields with their blank padding removed; versions "major.minor".
struct PartitionReport {
  std::string name;
  PartitionState state = PartitionState::kStarting;  // after the startup probe
  std::string error;                                 // why it is not up; empty when up
  // C_GetInfo of the module.
  std::string module_path;
  std::string library_manufacturer;
  std::string library_description;
  std::string library_version;
  std::string cryptoki_version;
  // C_GetTokenInfo of the partition's token; empty when it could not be read.
  std::string token_label;
  std::string token_manufacturer;
  std::string token_model;
  std::string token_serial;
  std::string hardware_version;
  std::string firmware_version;
  std::vector<std::string> token_flags;  // "CKF_LOGIN_REQUIRED", ...
  // Of CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS: those the token can sign with (CKF_SIGN).
  std::vector<std::string> sign_mechanisms;
  std::vector<KeyProtection> keys;  // every key configured on the partition and found
};

struct SignerStats {
  std::size_t queued = 0;     // accepted, waiting for a session
  std::size_t in_flight = 0;  // handed to a session, not completed
  std::uint64_t submitted = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t rejected = 0;  // TrySubmit/Submit refused (full, deadline, shut down)
  std::uint64_t rerouted = 0;  // attempts put back into the queue after a failure
  std::uint64_t batches = 0;
  std::vector<PartitionStats> partitions;
};

class Signer {
 public:
  // Loads the modules, finds the tokens, logs in, finds the keys and runs the startup checks:
  // per key, the certificate is within its validity period (clock.Now()), has nonRepudiation or
  // digitalSignature key usage and meets the algorithm policy (RSA >= 3072 unless allowed, EC
  // P-256/P-384); per partition and key, a test sign+verify proves the certificate matches the
  // key. Errors: kInvalidArgument (bad options, URI, PIN source, certificate file),
  // kFailedPrecondition (a key refused: the message names the failed check, e.g.
  // "key 'seal' refused: check 'key usage' failed: ..."). A partition that is unreachable at
  // startup does not fail Create: it starts down and recovers in the background (Ready() tells).
  // A partition with a wrong PIN is disabled; Create fails when a key is left with no partition
  // that is not disabled. Blocks while it probes the partitions one after the other.
  static Result<std::unique_ptr<Signer>> Create(SignerOptions options,
                                                std::vector<PartitionOptions> partitions,
                                                std::vector<KeyOptions> keys,
                                                Clock& clock = Clock::Real());

  // The offline part of the startup checks (certificate file, validity, key usage, policy) for
  // one key, without touching an HSM (for `qseald --check-config`). Errors as for Create.
  static Result<KeyInfo> CheckKeyCertificate(const KeyOptions& key, Clock& clock = Clock::Real());

  // Shutdown(), then finalises the modules this signer initialised (each session thread closed its
  // session on leaving; a token is never logged out, login is per token). When Shutdown abandoned
  // threads inside a wedged module, the memory and the modules are left to the process exit.
  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  // Queues a request; never blocks. kResourceExhausted when max_pending requests are outstanding,
  // kInvalidArgument for an unknown key or a request that does not fit the key (digest size,
  // RSA scheme on an EC key, ...), kCancelled after Shutdown, kPermissionDenied/kUnavailable when
  // every partition holding the key is out for good (disabled or quarantined). On OK `done` is
  // called exactly once later; on error it is not called.
  Status TrySubmit(SignRequest request, SignCallback done);

  // As TrySubmit, but waits for room until `deadline` (then kDeadlineExceeded).
  Status Submit(SignRequest request, SignCallback done,
                std::chrono::steady_clock::time_point deadline);

  // The key's certificate chain and properties. kNotFound for an unknown name.
  Result<KeyInfo> GetKey(std::string_view name) const;

  // True when at least one partition has passed its self-test sign+verify and is up, and no
  // module is wedged (Health).
  bool Ready() const;

  // OK, or kUnavailable (latched) once a call has been inside a module longer than
  // hung_call_timeout: that module can never be re-initialised in this process (see
  // SignerOptions::hung_call_timeout) and the process should restart. Never blocks on the HSM.
  Status Health() const;

  // A snapshot for metrics and health.
  SignerStats Stats() const;

  // What the startup probe found, per partition in configuration order (module and token
  // information, sign mechanisms, key protection). Fixed once Create returns; never blocks.
  const std::vector<PartitionReport>& StartupReport() const;

  // Stops taking requests, fails queued ones with kCancelled, waits for in-flight calls to end
  // and joins the threads. A call hung inside a module delays this until it returns or, once
  // Health() reports the module wedged, for sign_timeout more: threads still inside a module are
  // then abandoned (detached; the signer's memory and modules are left to the process exit,
  // never finalised under them). Idempotent.
  void Shutdown();

 private:
  class Impl;
  explicit Signer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::hsm
