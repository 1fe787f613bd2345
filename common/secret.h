// Secrets in memory (a PKCS#11 user PIN): a small buffer that is locked into RAM, kept out of
// core dumps, wiped when it is no longer needed, and never turned into a std::string by accident;
// the secret-file and environment readers that fill one without a std::string in between; and the
// process-wide switch that turns core dumps off.
//
// Lifetime of a PIN in qseald (docs/security.md, "PIN hygiene"): hsm::Signer::Create reads each
// partition's pin_source once into a Secret (ReadSecretFile, ReadSecretEnv: the variable is wiped
// and removed from the environment), and the Partition owns it. The Partition must keep it after
// the first C_Login: a session lost or a module re-initialised after a device error logs the token
// in again (Partition::Relogin, the keepalive), and re-reading the source then would mean keeping
// the environment variable or depending on a file that may have changed. So the PIN lives, locked
// and excluded from core dumps, exactly as long as the Partition; Signer::Shutdown and the
// Partition's destructor wipe it. The only copy handed out is the pointer C_Login reads.
//
// Thread-safety: Secret is thread-compatible (a const Secret may be read from several threads);
// the functions are thread-safe except ReadSecretEnv, which changes the environment (call it
// before threads that call getenv run, as Signer::Create is at startup).
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace qseal {

// A secret of at most kMaxBytes bytes in one anonymous page of its own: mlock'ed (so it is not
// swapped out; when the limit on locked memory refuses, the Secret still works and locked() says
// so), marked MADV_DONTDUMP (left out of core dumps even when they are on), wiped with
// OPENSSL_cleanse before the page is unmapped. Move-only; there is no conversion to std::string
// and no operator== (compare with Equals, in constant time). An empty Secret owns no page.
class Secret {
 public:
  static constexpr std::size_t kMaxBytes = 1024;

  Secret() = default;
  ~Secret() { Wipe(); }
  Secret(Secret&& other) noexcept;
  Secret& operator=(Secret&& other) noexcept;
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;

  // A Secret holding a copy of `size` bytes at `data` (the caller wipes its own copy).
  // kInvalidArgument above kMaxBytes, kResourceExhausted when no page can be mapped.
  static Result<Secret> Of(const char* data, std::size_t size);
  // An explicit copy into a page of its own (one per partition sharing a PIN source).
  Result<Secret> Clone() const { return Of(data(), size()); }

  const char* data() const { return data_ == nullptr ? "" : data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool locked() const { return locked_; }
  // Constant-time comparison with `size` bytes at `other` (for tests and checks).
  bool Equals(const char* other, std::size_t size) const;

  // Wipes the bytes and unmaps the page; the Secret is empty afterwards. Idempotent.
  void Wipe() noexcept;

 private:
  char* data_ = nullptr;  // the start of the mapped page, or null
  std::size_t size_ = 0;
  bool locked_ = false;
};

// Reads the whole file at `path` into a Secret, one trailing "\n" or "\r\n" stripped, through a
// fixed buffer that is wiped (no std::string holds the PIN). Refuses a file that group or other
// may read, write or execute (CheckSecretFileMode). kInvalidArgument when the file cannot be
// opened, is not a regular file, has loose permissions or is longer than Secret::kMaxBytes; the
// message never contains the file's contents. Blocks on the read.
Result<Secret> ReadSecretFile(const std::string& path);

// Copies the environment variable `name` into a Secret, then overwrites its value in place (so
// /proc/PID/environ no longer shows it) and unsetenv()s it. kInvalidArgument when it is not set.
// Weaker than a file: the variable was visible to the parent and, until it is read, in
// /proc/PID/environ to the same user and root (docs/security.md).
Result<Secret> ReadSecretEnv(const std::string& name);

// OK when `path` has no group/other permission bits (mode & 077 == 0); kInvalidArgument naming
// the mode otherwise ("chmod 600 it"); kInvalidArgument when it cannot be stat'ed. `what` names
// the file in the message ("pin_source file").
Status CheckSecretFileMode(const std::string& path, const std::string& what);

// Turns core dumps off for this process: prctl(PR_SET_DUMPABLE, 0) (no core, no ptrace attach or
// /proc/PID/mem, environ reads by other processes of the same user) and RLIMIT_CORE 0 for the soft
// and the hard limit (inherited by children). kInternal naming the call that failed. Call first
// thing in main, before any secret is read.
Status DisableCoreDumps();

}  // namespace qseal
