#include "hsm/detail/module.h"

#include <dlfcn.h>

#include "common/log.h"

namespace qseal::hsm::detail {

Result<std::shared_ptr<Module>> Module::Load(const std::string& path) {
  // RTLD_NODELETE: some modules (SoftHSM2 among them) do not survive being unmapped and mapped
  // again in one process; keeping the mapping is harmless.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* err = dlerror();
    return InvalidArgumentError("cannot load PKCS#11 module " + path + ": " +
                                (err != nullptr ? err : "unknown error"));
  }
  void* sym = dlsym(handle, "C_GetFunctionList");
  if (sym == nullptr) {
    dlclose(handle);
    return InvalidArgumentError("PKCS#11 module " + path + " has no C_GetFunctionList");
  }
  auto get_list = reinterpret_cast<CK_C_GetFunctionList>(sym);
  CK_FUNCTION_LIST* fn = nullptr;
  CK_RV rv = get_list(&fn);
  if (rv != CKR_OK || fn == nullptr) {
    dlclose(handle);
    return InvalidArgumentError("C_GetFunctionList of " + path + " failed: " + CkrName(rv));
  }
  std::shared_ptr<Module> m(new Module(path, handle, fn));
  {
    MutexLock lock(m->mu_);
    CK_RV irv = m->InitializeLocked();
    if (irv != CKR_OK) {
      LogWarn("pkcs11 module initialise failed", {{"module", path}, {"error", CkrName(irv)}});
    }
  }
  return m;
}

Module::Module(std::string path, void* handle, CK_FUNCTION_LIST* fn)
    : path_(std::move(path)), handle_(handle), fn_(fn) {}

Module::~Module() {
  {
    MutexLock lock(mu_);
    if (initialized_ && we_initialized_) fn_->C_Finalize(nullptr);
    initialized_ = false;
  }
  dlclose(handle_);
}

CK_RV Module::InitializeLocked() {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = fn_->C_Initialize(&args);
  if (rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    initialized_ = true;
    we_initialized_ = rv == CKR_OK;
    ++generation_;
    return CKR_OK;
  }
  initialized_ = false;
  return rv;
}

std::uint64_t Module::generation() const {
  MutexLock lock(mu_);
  return generation_;
}

std::optional<std::chrono::steady_clock::time_point> Module::OldestCallStart() const {
  MutexLock lock(starts_mu_);
  if (call_starts_.empty()) return std::nullopt;
  return *call_starts_.begin();
}

bool Module::Initialized() const {
  MutexLock lock(mu_);
  return initialized_;
}

Status Module::Reinitialize(std::chrono::milliseconds min_interval,
                            std::chrono::milliseconds drain) {
  MutexLock lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (ever_reinitialized_ && now - last_reinit_ < min_interval) {
    return ResourceExhaustedError("module " + path_ + " was re-initialised less than " +
                                  std::to_string(min_interval.count()) + " ms ago");
  }
  if (closing_) return ResourceExhaustedError("module " + path_ + " is being re-initialised");
  closing_ = true;
  auto deadline = now + drain;
  while (active_calls_ > 0) {
    if (!cv_.WaitUntil(mu_, deadline) && active_calls_ > 0) {
      closing_ = false;
      cv_.SignalAll();
      return DeadlineExceededError("module " + path_ +
                                   ": calls still running, cannot re-initialise");
    }
  }
  ever_reinitialized_ = true;
  last_reinit_ = now;
  // The lock is held across C_Finalize/C_Initialize on purpose: no other call may enter the
  // library meanwhile (closing_ keeps them waiting in Call anyway).
  std::multiset<std::chrono::steady_clock::time_point>::iterator started;
  {
    MutexLock starts(starts_mu_);
    started = call_starts_.insert(std::chrono::steady_clock::now());
  }
  if (initialized_) fn_->C_Finalize(nullptr);
  initialized_ = false;
  CK_RV rv = InitializeLocked();
  {
    MutexLock starts(starts_mu_);
    call_starts_.erase(started);
  }
  if (!initialized_) ++generation_;
  closing_ = false;
  cv_.SignalAll();
  LogInfo("pkcs11 module re-initialised", {{"module", path_}, {"result", CkrName(rv)}});
  if (rv != CKR_OK) return CkrStatus(rv, "C_Initialize of " + path_);
  return Status::Ok();
}

Module::Call::Call(Module& m) : m_(m) {
  MutexLock lock(m_.mu_);
  while (m_.closing_) m_.cv_.Wait(m_.mu_);
  ++m_.active_calls_;
  generation_ = m_.generation_;
  initialized_ = m_.initialized_;
  MutexLock starts(m_.starts_mu_);
  started_ = m_.call_starts_.insert(std::chrono::steady_clock::now());
}

Module::Call::~Call() {
  MutexLock lock(m_.mu_);
  {
    MutexLock starts(m_.starts_mu_);
    m_.call_starts_.erase(started_);
  }
  if (--m_.active_calls_ == 0 && m_.closing_) m_.cv_.SignalAll();
}

}  // namespace qseal::hsm::detail
