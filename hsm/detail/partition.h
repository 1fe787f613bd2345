// Partition: one token of a Module, found by label or serial, logged in once (single-flight
// C_Login; a wrong or locked PIN is remembered and never tried again), with the keys it holds
// (named by RFC 7512 URIs) found once and their handles cached per module generation.
// Session: one PKCS#11 session, move-only, closed on destruction.
// SignOne: one signature on one session, and the recovery ladder's reading of how it failed
// (Verdict, from the CK_RV classes of pkcs11.h; docs/hsm.md, "The recovery ladder").
// Implementation-only. Partition is thread-safe; a Session is used by one thread at a time;
// SignOne and VerdictFor are thread-safe (SignOne uses its session from the calling thread only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/mutex.h"
#include "common/secret.h"
#include "common/status.h"
#include "hsm/detail/crypto.h"
#include "hsm/detail/module.h"
#include "hsm/detail/pkcs11.h"
#include "hsm/signer.h"

namespace qseal::hsm::detail {

// The object attributes an RFC 7512 key URI names (parsed with p11-kit).
struct KeyUri {
  std::string label;  // CKA_LABEL ("object="); empty when absent
  Bytes id;           // CKA_ID ("id="); empty when absent
};
// kInvalidArgument when the URI does not parse, names no label/id, or a type other than private.
Result<KeyUri> ParseKeyUri(const std::string& uri);

// A PKCS#11 fixed-width, blank-padded field (CK_TOKEN_INFO::label, ...) without its padding.
std::string PaddedField(const CK_UTF8CHAR* field, std::size_t size);

// Reads "file:/path" (ReadSecretFile: whole file, one trailing newline stripped, refused when
// group or other have any permission on it) or "env:NAME" (ReadSecretEnv: the variable is wiped
// and unset once read). kInvalidArgument for another scheme, a missing or loose file, a missing
// variable; the message never holds the PIN. Not thread-safe for env: (it changes the
// environment).
Result<Secret> ReadPin(const std::string& pin_source);

class Partition;

class Session {
 public:
  Session() = default;
  ~Session() { Close(); }
  Session(Session&& o) noexcept { *this = std::move(o); }
  Session& operator=(Session&& o) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  bool open() const { return partition_ != nullptr; }
  CK_SESSION_HANDLE handle() const { return handle_; }
  std::uint64_t generation() const { return generation_; }
  // C_CloseSession when still valid for the module's generation; errors ignored.
  void Close();
  // Forgets the handle without a call (after the session is known to be dead).
  void Drop() { partition_ = nullptr; }

 private:
  friend class Partition;
  Partition* partition_ = nullptr;
  CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
  std::uint64_t generation_ = 0;
};

// The result of one C_Sign: rv and, on CKR_OK, the raw signature.
struct SignResult {
  CK_RV rv = CKR_OK;
  bool at_init = false;  // rv came from C_SignInit (C_Sign was not called)
  Bytes signature;
};

class Partition {
 public:
  // `pin` is kept for every later C_Login (a re-login after a lost session or a module
  // re-initialisation needs it; common/secret.h) and wiped by WipePin or the destructor.
  Partition(PartitionOptions options, std::shared_ptr<Module> module, Secret pin,
            std::vector<KeyUri> keys);

  const PartitionOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }
  Module& module() const { return *module_; }

  // Finds the slot (when not known in this generation), opens a session and makes sure the token
  // is logged in. Errors: the CKR status (kUnavailable for device trouble, kPermissionDenied for
  // a PIN error, which is then remembered), kNotFound when no token matches. `rv` gets the CK_RV.
  Result<Session> Open(CK_RV* rv);

  // Logs in again once (after CKR_USER_NOT_LOGGED_IN).
  Status Relogin(Session& session, CK_RV* rv);

  // The idle-session keepalive (PartitionOptions::keepalive_interval): C_GetSessionInfo on an
  // open session. A session the module no longer knows is closed (best effort; `session` is then
  // closed and the next request opens a new one); a token found logged out is logged in again.
  // Errors: the CKR status of the call that failed (`rv` gets its CK_RV).
  Status KeepAlive(Session& session, CK_RV* rv);

  // The private key handle of keys[key_index], cached per module generation. kNotFound when the
  // token does not hold it (rv CKR_OK), kInvalidArgument when the URI matches several objects.
  // `key_type` (optional) receives the key's CKA_KEY_TYPE.
  Result<CK_OBJECT_HANDLE> KeyHandle(Session& session, std::size_t key_index, CK_RV* rv,
                                     CK_KEY_TYPE* key_type = nullptr);
  void ForgetKeyHandle(std::size_t key_index);

  // The protection attributes of keys[key_index] (KeyProtection; `key`/`partition` left empty):
  // CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE. An attribute the
  // token does not report reads as the unsafe value (not sensitive, extractable). Errors: the
  // CKR status of the key lookup or of C_GetAttributeValue (`rv` gets its CK_RV).
  Result<KeyProtection> ReadKeyProtection(Session& session, std::size_t key_index, CK_RV* rv);

  // Fills PartitionReport's module and token fields (module_path .. sign_mechanisms): C_GetInfo,
  // C_GetTokenInfo, C_GetMechanismInfo of the sign mechanisms qseal uses. Best effort: a field
  // whose call fails stays empty. Defined in hsm/detail/describe.cc.
  void Describe(PartitionReport* report);

  // C_SignInit + C_Sign. `max_len` is the expected signature size.
  SignResult Sign(Session& session, CK_OBJECT_HANDLE key, CK_MECHANISM* mechanism, ByteSpan input,
                  std::size_t max_len);

  // Set once a C_Login failed with a PIN error; Open and Relogin then fail without calling.
  bool PinFailed() const;

  // Wipes the PIN (after a C_Login in flight returns); a later login fails with kCancelled.
  // For Signer::Shutdown. Idempotent.
  void WipePin();

 private:
  friend class Session;
  Status LoginOnce(Session& session, CK_RV* rv) QSEAL_EXCLUDES(mu_);
  // The slot found in the module's current generation, or FindSlot when it is stale. Needs a
  // Module::Call held by the caller.
  Result<CK_SLOT_ID> CurrentSlot(std::uint64_t generation, CK_RV* rv) QSEAL_EXCLUDES(mu_);
  Status FindSlot(std::uint64_t generation, CK_RV* rv) QSEAL_EXCLUDES(mu_);

  const PartitionOptions options_;
  const std::shared_ptr<Module> module_;
  // Written only under mu_ by WipePin, which waits for login_in_progress_ to clear; read by
  // the one login in flight (login_in_progress_ set) outside mu_.
  Secret pin_;
  const std::vector<KeyUri> keys_;

  mutable Mutex mu_;
  CondVar cv_;
  std::uint64_t slot_generation_ QSEAL_GUARDED_BY(mu_) = 0;
  CK_SLOT_ID slot_ QSEAL_GUARDED_BY(mu_) = 0;
  bool login_in_progress_ QSEAL_GUARDED_BY(mu_) = false;
  std::uint64_t login_epoch_ QSEAL_GUARDED_BY(mu_) = 0;
  Status pin_error_ QSEAL_GUARDED_BY(mu_);
  CK_RV pin_rv_ QSEAL_GUARDED_BY(mu_) = CKR_OK;
  bool pin_wiped_ QSEAL_GUARDED_BY(mu_) = false;
  struct CachedHandle {
    std::uint64_t generation = 0;
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    CK_KEY_TYPE key_type = CKK_VENDOR_DEFINED;
  };
  std::vector<CachedHandle> handles_ QSEAL_GUARDED_BY(mu_);
};

// What one sign attempt led to, and so what the recovery ladder does about it.
enum class Verdict {
  kOk,
  kSession,     // session dead: drop it, re-queue the request
  kRetry,       // other retryable error: re-queue
  kDown,        // partition down
  kDisabled,    // PIN or key missing: partition out for good
  kQuarantine,  // signature failed verification (or the token's key is not the certificate's)
  kRequest,     // this request cannot be signed: fail it
};

// The verdict for a CK_RV that failed an attempt, by its class (Classify): kSession for a lost
// session, kDown for device trouble and for a token still logged out after the one re-login,
// kDisabled for a PIN error, kRequest for a request the HSM refuses, kRetry for the rest (a stale
// key handle that was already found again once, kOther, and CKR_OK, which fails no attempt).
Verdict VerdictFor(CK_RV rv);

struct SignOutcome {
  Verdict verdict = Verdict::kOk;
  CK_RV rv = CKR_OK;      // the return value that decided the verdict; CKR_OK when none did
  Status status;          // why, when the verdict is not kOk
  Bytes signature;        // on kOk: DER ECDSA-Sig-Value, or the raw RSA signature
  bool reopened = false;  // the session was opened (again) for this attempt
  // Failures recovered inside this attempt without spending it: a session found dropped at its
  // first call (re-opened, signed again) and CKR_DEVICE_ERROR retried on the same partition
  // (PartitionOptions::device_error_retries). `recovered` lists their CK_RVs, for the stats.
  int stale_session_retries = 0;
  int device_error_retries = 0;
  std::vector<CK_RV> recovered;
};

// A configured key as SignOne needs it. Immutable once the signer is built.
struct SigningKey {
  std::size_t index = 0;  // the key's position in the URIs every Partition was built with
  std::string name;       // KeyOptions::name, for messages
  KeyType type = KeyType::kEc;
  std::size_t raw_signature_size = 0;  // what C_Sign returns: the modulus, or r||s
  std::shared_ptr<const Verifier> verifier;
};

// One signature over `digest_value` with `key` on `part`: opens `session` when it is closed or
// void in the module's current generation, builds the mechanism (CKM_ECDSA, CKM_RSA_PKCS over a
// DigestInfo, CKM_RSA_PKCS_PSS with MGF1 of the same hash and a digest-sized salt), finds the key
// (logging in once more when the key is invisible or the token logged out, finding it again once
// after a stale handle), calls C_Sign, converts ECDSA r||s to DER and, when `verify`, checks the
// signature with the certificate's public key (a failure is kQuarantine, the signature dropped).
// A reused session that fails its first call of this request with a session error was dropped
// while idle (nothing of the request reached the HSM): it is re-opened (logging in when needed)
// and the request signed on the new session, once. CKR_DEVICE_ERROR is retried in place up to
// the partition's device_error_retries. Reports every failure in the outcome. Blocks on the HSM:
// call it with no lock held.
SignOutcome SignOne(Partition& part, Session& session, const SigningKey& key,
                    SignatureScheme scheme, DigestAlgorithm digest, ByteSpan digest_value,
                    bool verify);

}  // namespace qseal::hsm::detail
