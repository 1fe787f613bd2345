// Module: one dlopen'd PKCS#11 library, initialised with CKF_OS_LOCKING_OK, with a rate-limited
// re-initialisation (C_Finalize + C_Initialize) and a call gate that keeps calls and
// re-initialisation apart (PKCS#11 leaves C_Finalize undefined while other threads are in calls).
// Implementation-only. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/mutex.h"
#include "common/status.h"
#include "hsm/detail/pkcs11.h"

namespace qseal::hsm::detail {

class Module {
 public:
  // dlopen + C_GetFunctionList + C_Initialize. kInvalidArgument when the library cannot be loaded
  // or has no C_GetFunctionList. A failed C_Initialize does not fail Load: the module is returned
  // uninitialised (Initialized() false) so its partitions can start down and recover.
  static Result<std::shared_ptr<Module>> Load(const std::string& path);

  // C_Finalize when this object initialised the module (not when another user in the process had
  // already done it: CKR_CRYPTOKI_ALREADY_INITIALIZED). The library stays mapped.
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& path() const { return path_; }
  CK_FUNCTION_LIST* fn() const { return fn_; }

  // Increments on every (re)initialisation: sessions, logins and object handles from an older
  // generation are void.
  std::uint64_t generation() const;
  bool Initialized() const;

  // C_Finalize + C_Initialize, at most once per `min_interval` (kResourceExhausted when too soon).
  // Waits up to `drain` for calls in progress to end (kDeadlineExceeded otherwise); new calls wait
  // meanwhile. Errors from C_Initialize are returned with their CKR name.
  Status Reinitialize(std::chrono::milliseconds min_interval, std::chrono::milliseconds drain);

  // When the longest-running call now inside the library started; nullopt when none is inside.
  // A call that never returns (a wedged library) keeps Reinitialize from draining for ever:
  // PKCS#11 leaves C_Finalize undefined while another thread is inside the library, so a stuck
  // call is reported (Signer::Health), never finalised under.
  std::optional<std::chrono::steady_clock::time_point> OldestCallStart() const;

  // Brackets every call into the library. Blocks while a re-initialisation runs.
  class Call {
   public:
    explicit Call(Module& m);
    ~Call();
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
    // The generation the call runs in (constant while the Call lives).
    std::uint64_t generation() const { return generation_; }
    bool initialized() const { return initialized_; }

   private:
    Module& m_;
    std::uint64_t generation_;
    bool initialized_;
    std::multiset<std::chrono::steady_clock::time_point>::iterator started_;
  };

 private:
  Module(std::string path, void* handle, CK_FUNCTION_LIST* fn);
  CK_RV InitializeLocked() QSEAL_REQUIRES(mu_);

  const std::string path_;
  void* const handle_;
  CK_FUNCTION_LIST* const fn_;

  mutable Mutex mu_;
  CondVar cv_;
  bool initialized_ QSEAL_GUARDED_BY(mu_) = false;
  bool we_initialized_ QSEAL_GUARDED_BY(mu_) = false;
  bool closing_ QSEAL_GUARDED_BY(mu_) = false;
  int active_calls_ QSEAL_GUARDED_BY(mu_) = 0;
  // Start times of the calls inside the library (one entry per live Call, and one while
  // C_Finalize/C_Initialize run in Reinitialize). Its own lock: OldestCallStart must answer even
  // while Reinitialize holds mu_ inside a C_Initialize that does not return.
  mutable Mutex starts_mu_;
  std::multiset<std::chrono::steady_clock::time_point> call_starts_ QSEAL_GUARDED_BY(starts_mu_);
  std::uint64_t generation_ QSEAL_GUARDED_BY(mu_) = 0;
  bool ever_reinitialized_ QSEAL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point last_reinit_ QSEAL_GUARDED_BY(mu_);
};

}  // namespace qseal::hsm::detail
