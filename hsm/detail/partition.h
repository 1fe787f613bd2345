// Partition: one token of a Module, found by label or serial, logged in once (single-flight
// C_Login; a wrong or locked PIN is remembered and never tried again), with the keys it holds
// (named by RFC 7512 URIs) found once and their handles cached per module generation.
// Session: one PKCS#11 session, move-only, closed on destruction.
// Implementation-only. Partition is thread-safe; a Session is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/mutex.h"
#include "common/status.h"
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

// Reads "file:/path" or "env:NAME". kInvalidArgument for another scheme, a missing file or
// variable.
Result<std::string> ReadPin(const std::string& pin_source);

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
  Bytes signature;
};

class Partition {
 public:
  Partition(PartitionOptions options, std::shared_ptr<Module> module, std::string pin,
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

  // The private key handle of keys[key_index], cached per module generation. kNotFound when the
  // token does not hold it (rv CKR_OK), kInvalidArgument when the URI matches several objects.
  // `key_type` (optional) receives the key's CKA_KEY_TYPE.
  Result<CK_OBJECT_HANDLE> KeyHandle(Session& session, std::size_t key_index, CK_RV* rv,
                                     CK_KEY_TYPE* key_type = nullptr);
  void ForgetKeyHandle(std::size_t key_index);

  // C_SignInit + C_Sign. `max_len` is the expected signature size.
  SignResult Sign(Session& session, CK_OBJECT_HANDLE key, CK_MECHANISM* mechanism, ByteSpan input,
                  std::size_t max_len);

  // Set once a C_Login failed with a PIN error; Open and Relogin then fail without calling.
  bool PinFailed() const;

 private:
  friend class Session;
  Status LoginOnce(Session& session, CK_RV* rv) QSEAL_EXCLUDES(mu_);
  Status FindSlot(std::uint64_t generation, CK_RV* rv) QSEAL_EXCLUDES(mu_);

  const PartitionOptions options_;
  const std::shared_ptr<Module> module_;
  const std::string pin_;
  const std::vector<KeyUri> keys_;

  mutable Mutex mu_;
  CondVar cv_;
  std::uint64_t slot_generation_ QSEAL_GUARDED_BY(mu_) = 0;
  CK_SLOT_ID slot_ QSEAL_GUARDED_BY(mu_) = 0;
  bool login_in_progress_ QSEAL_GUARDED_BY(mu_) = false;
  std::uint64_t login_epoch_ QSEAL_GUARDED_BY(mu_) = 0;
  Status pin_error_ QSEAL_GUARDED_BY(mu_);
  CK_RV pin_rv_ QSEAL_GUARDED_BY(mu_) = CKR_OK;
  struct CachedHandle {
    std::uint64_t generation = 0;
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    CK_KEY_TYPE key_type = CKK_VENDOR_DEFINED;
  };
  std::vector<CachedHandle> handles_ QSEAL_GUARDED_BY(mu_);
};

}  // namespace qseal::hsm::detail
