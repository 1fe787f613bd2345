// The p11shim PKCS#11 module (see p11shim.h for what it injects and how it is configured).
// Everything is in an anonymous namespace except C_GetFunctionList, so two copies loaded from two
// paths never bind to each other's symbols.
#include "tests/p11shim/p11shim.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include <p11-kit/pkcs11.h>

namespace {

using qseal::p11shim::Counter;
using Steady = std::chrono::steady_clock;

struct Config {
  std::string module = "/usr/lib/softhsm/libsofthsm2.so";
  std::string counts_file;
  double sign_latency_ms = 0;
  double sign_jitter_ms = 0;
  double ops_per_second = 0;
  double session_invalid_rate = 0;
  std::uint64_t session_invalid_at = 0;
  std::uint64_t device_error_at = 0;
  bool down = false;
  std::uint64_t hang_sign_at = 0;
  std::uint64_t hang_ms = 60000;
  std::uint64_t corrupt_sign_at = 0;
  double corrupt_sign_rate = 0;
  std::uint64_t pin_lockout_after = 0;
  std::uint64_t seed = 1;
  bool offload_sign = false;
  std::uint64_t idle_drop_ms = 0;
  bool idle_drop_logout = false;
  double device_error_rate = 0;
  bool key_extractable = false;
};

void Set(Config& c, const std::string& key, const std::string& value) {
  auto u = [&] { return std::strtoull(value.c_str(), nullptr, 10); };
  auto d = [&] { return std::strtod(value.c_str(), nullptr); };
  if (key == "module")
    c.module = value;
  else if (key == "counts_file")
    c.counts_file = value;
  else if (key == "sign_latency_ms")
    c.sign_latency_ms = d();
  else if (key == "sign_jitter_ms")
    c.sign_jitter_ms = d();
  else if (key == "ops_per_second")
    c.ops_per_second = d();
  else if (key == "session_invalid_rate")
    c.session_invalid_rate = d();
  else if (key == "session_invalid_at")
    c.session_invalid_at = u();
  else if (key == "device_error_at")
    c.device_error_at = u();
  else if (key == "down")
    c.down = u() != 0;
  else if (key == "hang_sign_at")
    c.hang_sign_at = u();
  else if (key == "hang_ms")
    c.hang_ms = u();
  else if (key == "corrupt_sign_at")
    c.corrupt_sign_at = u();
  else if (key == "corrupt_sign_rate")
    c.corrupt_sign_rate = d();
  else if (key == "pin_lockout_after")
    c.pin_lockout_after = u();
  else if (key == "seed")
    c.seed = u();
  else if (key == "offload_sign")
    c.offload_sign = u() != 0;
  else if (key == "idle_drop_ms")
    c.idle_drop_ms = u();
  else if (key == "idle_drop_logout")
    c.idle_drop_logout = u() != 0;
  else if (key == "device_error_rate")
    c.device_error_rate = d();
  else if (key == "key_extractable")
    c.key_extractable = u() != 0;
}

const char* const kKeys[] = {"module",
                             "counts_file",
                             "sign_latency_ms",
                             "sign_jitter_ms",
                             "ops_per_second",
                             "session_invalid_rate",
                             "session_invalid_at",
                             "device_error_at",
                             "down",
                             "hang_sign_at",
                             "hang_ms",
                             "corrupt_sign_at",
                             "corrupt_sign_rate",
                             "pin_lockout_after",
                             "seed",
                             "offload_sign",
                             "idle_drop_ms",
                             "idle_drop_logout",
                             "device_error_rate",
                             "key_extractable"};

struct State {
  std::mutex mu;
  std::string so_path;
  std::string config_path;
  std::shared_ptr<const Config> config;
  Steady::time_point next_check;
  struct timespec config_mtime {};
  ino_t config_ino = 0;
  off_t config_size = -1;

  void* real_handle = nullptr;
  CK_FUNCTION_LIST* real = nullptr;
  CK_FUNCTION_LIST list{};
  std::uint64_t* counts = nullptr;

  bool initialized = false;
  std::atomic<bool> sticky{false};
  std::map<CK_SESSION_HANDLE, CK_SLOT_ID> sessions;
  std::map<CK_SESSION_HANDLE, Steady::time_point> last_call;  // idle_drop_ms, per session
  Steady::time_point app_last_call;                           // idle_drop_logout, any session
  std::map<CK_SLOT_ID, Steady::time_point> next_free;         // capacity limit, per token
  // offload_sign: the C_SignInit held back per session, and signatures made per input.
  struct Deferred {
    CK_MECHANISM_TYPE mechanism;
    CK_OBJECT_HANDLE key;
  };
  std::map<CK_SESSION_HANDLE, Deferred> deferred;
  std::map<std::string, std::string> made;
};

State& S() {
  static State* s = new State();
  return *s;
}

void Count(Counter c) {
  State& s = S();
  if (s.counts != nullptr) __atomic_add_fetch(&s.counts[c], 1, __ATOMIC_SEQ_CST);
}
std::uint64_t CountAndGet(Counter c) {
  State& s = S();
  if (s.counts == nullptr) return 0;
  return __atomic_add_fetch(&s.counts[c], 1, __ATOMIC_SEQ_CST);
}

void LoadConfigLocked(State& s) {
  auto c = std::make_shared<Config>();
  for (const char* k : kKeys) {
    std::string env = "P11SHIM_";
    for (const char* p = k; *p != '\0'; ++p) env += static_cast<char>(std::toupper(*p));
    if (const char* v = std::getenv(env.c_str())) Set(*c, k, v);
  }
  struct stat st {};
  if (stat(s.config_path.c_str(), &st) == 0) {
    s.config_mtime = st.st_mtim;
    s.config_ino = st.st_ino;
    s.config_size = st.st_size;
    FILE* f = std::fopen(s.config_path.c_str(), "r");
    if (f != nullptr) {
      char line[4096];
      while (std::fgets(line, sizeof(line), f) != nullptr) {
        std::string l(line);
        while (!l.empty() && (l.back() == '\n' || l.back() == '\r' || l.back() == ' '))
          l.pop_back();
        if (l.empty() || l[0] == '#') continue;
        auto eq = l.find('=');
        if (eq == std::string::npos) continue;
        Set(*c, l.substr(0, eq), l.substr(eq + 1));
      }
      std::fclose(f);
    }
  } else {
    s.config_size = -1;
  }
  if (c->counts_file.empty()) c->counts_file = s.so_path + ".counts";
  s.config = c;
}

std::shared_ptr<const Config> Cfg() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  auto now = Steady::now();
  if (now >= s.next_check) {
    s.next_check = now + std::chrono::milliseconds(20);
    struct stat st {};
    bool exists = stat(s.config_path.c_str(), &st) == 0;
    bool changed = exists ? (st.st_ino != s.config_ino || st.st_size != s.config_size ||
                             st.st_mtim.tv_sec != s.config_mtime.tv_sec ||
                             st.st_mtim.tv_nsec != s.config_mtime.tv_nsec)
                          : s.config_size != -1;
    if (changed) LoadConfigLocked(s);
  }
  return s.config;
}

double Random01(std::uint64_t seed) {
  thread_local std::mt19937_64 rng(seed ^ std::hash<std::thread::id>()(std::this_thread::get_id()));
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

void SleepMs(double ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

// Device failure injection shared by every wrapped call.
bool Broken(const Config& c) {
  State& s = S();
  if (c.down) s.sticky = true;
  if (s.sticky) {
    Count(qseal::p11shim::kInjectedDeviceError);
    return true;
  }
  return false;
}

bool Initialized() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.initialized;
}

#define SHIM_GUARD()                                       \
  if (!Initialized()) return CKR_CRYPTOKI_NOT_INITIALIZED; \
  auto cfg = Cfg();                                        \
  if (Broken(*cfg)) return CKR_DEVICE_ERROR

CK_RV ShimInitialize(CK_VOID_PTR args) {
  Count(qseal::p11shim::kInitialize);
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.initialized) return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  CK_RV rv = s.real->C_Initialize(args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) return rv;
  s.initialized = true;
  if (!s.config->down) s.sticky = false;
  return CKR_OK;
}

CK_RV ShimFinalize(CK_VOID_PTR reserved_arg) {
  Count(qseal::p11shim::kFinalize);
  if (reserved_arg != nullptr) return CKR_ARGUMENTS_BAD;
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.initialized) return CKR_CRYPTOKI_NOT_INITIALIZED;
  for (const auto& [h, slot] : s.sessions) s.real->C_CloseSession(h);
  s.sessions.clear();
  s.last_call.clear();
  s.deferred.clear();
  s.initialized = false;
  if (!s.config->down) s.sticky = false;
  return CKR_OK;
}

CK_RV ShimGetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
  Count(qseal::p11shim::kGetSlotList);
  SHIM_GUARD();
  return S().real->C_GetSlotList(present, list, count);
}

CK_RV ShimGetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
  Count(qseal::p11shim::kGetTokenInfo);
  SHIM_GUARD();
  return S().real->C_GetTokenInfo(slot, info);
}

CK_RV ShimOpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                      CK_SESSION_HANDLE_PTR session) {
  Count(qseal::p11shim::kOpenSession);
  SHIM_GUARD();
  CK_RV rv = S().real->C_OpenSession(slot, flags, app, notify, session);
  if (rv == CKR_OK) {
    std::lock_guard<std::mutex> lock(S().mu);
    S().sessions[*session] = slot;
    S().last_call[*session] = S().app_last_call = Steady::now();
  }
  return rv;
}

CK_RV ShimCloseSession(CK_SESSION_HANDLE session) {
  Count(qseal::p11shim::kCloseSession);
  if (!Initialized()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  State& s = S();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.deferred.erase(session);
    s.last_call.erase(session);
    if (s.sessions.erase(session) == 0) return CKR_SESSION_HANDLE_INVALID;
  }
  // Closing still frees the real session while the device is "broken", so nothing leaks.
  CK_RV rv = s.real->C_CloseSession(session);
  if (Broken(*Cfg())) return CKR_DEVICE_ERROR;
  return rv;
}

CK_RV ShimCloseAllSessions(CK_SLOT_ID slot) {
  SHIM_GUARD();
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto it = s.sessions.begin(); it != s.sessions.end();) {
    if (it->second == slot) {
      s.real->C_CloseSession(it->first);
      s.last_call.erase(it->first);
      it = s.sessions.erase(it);
    } else {
      ++it;
    }
  }
  return CKR_OK;
}

// A call on session `h`: CKR_SESSION_HANDLE_INVALID for an unknown session; with idle_drop_ms, a
// session idle longer than that is dropped the way an HSM's idle timeout drops it (Utimaco's
// AppTimeout): closed underneath and CKR_SESSION_HANDLE_INVALID; with idle_drop_logout, the
// application idle that long (no call on any session) has its token logged out: this call answers
// CKR_USER_NOT_LOGGED_IN, and the real module the same for every session until a C_Login.
// `may_drop` false (C_Login) only refreshes the idle clocks. Any call counts as activity.
CK_RV Touch(CK_SESSION_HANDLE h, const Config& c, bool may_drop = true) {
  State& s = S();
  bool drop = false;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.sessions.count(h) == 0) return CKR_SESSION_HANDLE_INVALID;
    const auto now = Steady::now();
    const auto limit = std::chrono::milliseconds(static_cast<std::int64_t>(c.idle_drop_ms));
    auto& last = c.idle_drop_logout ? s.app_last_call : s.last_call[h];
    drop = may_drop && c.idle_drop_ms > 0 && now - last > limit;
    last = now;
    s.last_call[h] = now;
    s.app_last_call = now;
    if (drop && !c.idle_drop_logout) {
      s.sessions.erase(h);
      s.last_call.erase(h);
      s.deferred.erase(h);
    }
  }
  if (!drop) return CKR_OK;
  Count(qseal::p11shim::kInjectedIdleDrop);
  if (c.idle_drop_logout) {
    s.real->C_Logout(h);
    return CKR_USER_NOT_LOGGED_IN;
  }
  s.real->C_CloseSession(h);
  return CKR_SESSION_HANDLE_INVALID;
}

CK_RV ShimGetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info) {
  Count(qseal::p11shim::kGetSessionInfo);
  SHIM_GUARD();
  if (CK_RV rv = Touch(session, *cfg); rv != CKR_OK) return rv;
  return S().real->C_GetSessionInfo(session, info);
}

CK_RV ShimLogin(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
  Count(qseal::p11shim::kLogin);
  SHIM_GUARD();
  if (CK_RV rv = Touch(session, *cfg, /*may_drop=*/false); rv != CKR_OK) return rv;
  State& s = S();
  if (cfg->pin_lockout_after > 0 && s.counts != nullptr &&
      __atomic_load_n(&s.counts[qseal::p11shim::kWrongPins], __ATOMIC_SEQ_CST) >=
          cfg->pin_lockout_after) {
    Count(qseal::p11shim::kInjectedPinLocked);
    return CKR_PIN_LOCKED;
  }
  CK_RV rv = s.real->C_Login(session, user, pin, len);
  if (rv == CKR_PIN_INCORRECT) Count(qseal::p11shim::kWrongPins);
  return rv;
}

CK_RV ShimLogout(CK_SESSION_HANDLE session) {
  Count(qseal::p11shim::kLogout);
  SHIM_GUARD();
  return S().real->C_Logout(session);
}

CK_RV ShimFindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  Count(qseal::p11shim::kFindObjectsInit);
  SHIM_GUARD();
  if (CK_RV rv = Touch(session, *cfg); rv != CKR_OK) return rv;
  return S().real->C_FindObjectsInit(session, tmpl, count);
}

CK_RV ShimFindObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR obj, CK_ULONG max,
                      CK_ULONG_PTR count) {
  Count(qseal::p11shim::kFindObjects);
  SHIM_GUARD();
  if (CK_RV rv = Touch(session, *cfg); rv != CKR_OK) return rv;
  return S().real->C_FindObjects(session, obj, max, count);
}

CK_RV ShimFindObjectsFinal(CK_SESSION_HANDLE session) {
  Count(qseal::p11shim::kFindObjectsFinal);
  SHIM_GUARD();
  if (CK_RV rv = Touch(session, *cfg); rv != CKR_OK) return rv;
  return S().real->C_FindObjectsFinal(session);
}

// key_extractable: private keys report themselves extractable and not sensitive (a key generated
// or imported without protection), whatever the real module says.
CK_RV ShimGetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_PTR tmpl, CK_ULONG count) {
  SHIM_GUARD();
  if (CK_RV rv = Touch(session, *cfg); rv != CKR_OK) return rv;
  CK_RV rv = S().real->C_GetAttributeValue(session, object, tmpl, count);
  if (!cfg->key_extractable || tmpl == nullptr) return rv;
  for (CK_ULONG i = 0; i < count; ++i) {
    CK_ATTRIBUTE& a = tmpl[i];
    if ((a.type != CKA_EXTRACTABLE && a.type != CKA_SENSITIVE) || a.pValue == nullptr ||
        a.ulValueLen != sizeof(CK_BBOOL)) {
      continue;
    }
    *static_cast<CK_BBOOL*>(a.pValue) = a.type == CKA_EXTRACTABLE ? CK_TRUE : CK_FALSE;
  }
  return rv;
}

CK_RV ShimSignInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key) {
  Count(qseal::p11shim::kSignInit);
  SHIM_GUARD();
  if (CK_RV rv = Touch(session, *cfg); rv != CKR_OK) return rv;
  if (cfg->offload_sign && mech != nullptr && mech->pParameter == nullptr) {
    std::lock_guard<std::mutex> lock(S().mu);
    S().deferred[session] = {mech->mechanism, key};
    return CKR_OK;
  }
  return S().real->C_SignInit(session, mech, key);
}

// offload_sign: the host does no signing work for an input it has seen before (a network HSM
// signs on its own hardware); the first time, the real module signs and the result is kept.
CK_RV OffloadSign(CK_SESSION_HANDLE session, CK_SLOT_ID slot, CK_BYTE_PTR data, CK_ULONG len,
                  CK_BYTE_PTR sig, CK_ULONG_PTR sig_len, bool* handled) {
  State& s = S();
  State::Deferred d{};
  std::string key;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.deferred.find(session);
    if (it == s.deferred.end()) return CKR_OK;
    d = it->second;
    s.deferred.erase(it);
    key = std::to_string(slot) + "/" + std::to_string(d.key) + "/" + std::to_string(d.mechanism) +
          "/" + std::string(reinterpret_cast<const char*>(data), len);
    auto m = s.made.find(key);
    if (m != s.made.end() && sig != nullptr && *sig_len >= m->second.size()) {
      std::memcpy(sig, m->second.data(), m->second.size());
      *sig_len = static_cast<CK_ULONG>(m->second.size());
      *handled = true;
      return CKR_OK;
    }
  }
  CK_MECHANISM mech{d.mechanism, nullptr, 0};
  CK_RV rv = s.real->C_SignInit(session, &mech, d.key);
  if (rv == CKR_OK) rv = s.real->C_Sign(session, data, len, sig, sig_len);
  *handled = true;
  if (rv == CKR_OK && sig != nullptr) {
    std::lock_guard<std::mutex> lock(s.mu);
    s.made[key] = std::string(reinterpret_cast<const char*>(sig), *sig_len);
  }
  return rv;
}

CK_RV ShimSign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
               CK_ULONG_PTR sig_len) {
  std::uint64_t n = CountAndGet(qseal::p11shim::kSign);
  SHIM_GUARD();
  State& s = S();
  if (CK_RV rv = Touch(session, *cfg); rv != CKR_OK) return rv;
  CK_SLOT_ID slot = 0;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.sessions.find(session);
    if (it == s.sessions.end()) return CKR_SESSION_HANDLE_INVALID;
    slot = it->second;
  }
  if (cfg->device_error_at != 0 && n == cfg->device_error_at) {
    s.sticky = true;
    Count(qseal::p11shim::kInjectedDeviceError);
    return CKR_DEVICE_ERROR;
  }
  if (cfg->hang_sign_at != 0 && n == cfg->hang_sign_at) {
    Count(qseal::p11shim::kInjectedHang);
    SleepMs(static_cast<double>(cfg->hang_ms));
  }
  if (cfg->ops_per_second > 0) {
    Steady::time_point start;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      auto now = Steady::now();
      auto& next = s.next_free[slot];
      start = std::max(now, next);
      next = start + std::chrono::duration_cast<Steady::duration>(
                         std::chrono::duration<double>(1.0 / cfg->ops_per_second));
    }
    std::this_thread::sleep_until(start);
  }
  double latency = cfg->sign_latency_ms;
  if (cfg->sign_jitter_ms > 0) latency += cfg->sign_jitter_ms * Random01(cfg->seed);
  SleepMs(latency);
  bool kill = (cfg->session_invalid_at != 0 && n == cfg->session_invalid_at) ||
              (cfg->session_invalid_rate > 0 && Random01(cfg->seed) < cfg->session_invalid_rate);
  if (kill && sig != nullptr) {
    Count(qseal::p11shim::kInjectedSessionInvalid);
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.sessions.erase(session);
    }
    s.real->C_CloseSession(session);
    return CKR_SESSION_HANDLE_INVALID;
  }
  bool handled = false;
  CK_RV rv = OffloadSign(session, slot, data, len, sig, sig_len, &handled);
  if (!handled) rv = s.real->C_Sign(session, data, len, sig, sig_len);
  // A module failing inside a load-shared slot (nShield CKNFAST_LOADSHARING=1): this call fails,
  // the next may go to a healthy module. The real C_Sign ran, so no operation is left active.
  if (cfg->device_error_rate > 0 && Random01(cfg->seed) < cfg->device_error_rate) {
    Count(qseal::p11shim::kInjectedDeviceError);
    if (sig != nullptr) std::memset(sig, 0, *sig_len);
    return CKR_DEVICE_ERROR;
  }
  bool corrupt = (cfg->corrupt_sign_at != 0 && n == cfg->corrupt_sign_at) ||
                 (cfg->corrupt_sign_rate > 0 && Random01(cfg->seed) < cfg->corrupt_sign_rate);
  if (rv == CKR_OK && sig != nullptr && corrupt && *sig_len > 0) {
    Count(qseal::p11shim::kInjectedCorrupt);
    sig[*sig_len / 2] ^= 0x01;
  }
  return rv;
}

void Setup() {
  State& s = S();
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&Setup), &info) != 0 && info.dli_fname != nullptr) {
    s.so_path = info.dli_fname;
  }
  const char* cp = std::getenv("P11SHIM_CONFIG");
  s.config_path = cp != nullptr ? cp : s.so_path + ".conf";
  LoadConfigLocked(s);
  int fd = open(s.config->counts_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    const off_t size = qseal::p11shim::kCountsSlots * 8;
    struct stat st {};
    if (fstat(fd, &st) == 0 && st.st_size < size && ftruncate(fd, size) != 0) {
      close(fd);
      fd = -1;
    }
    if (fd >= 0) {
      void* p =
          mmap(nullptr, static_cast<std::size_t>(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) s.counts = static_cast<std::uint64_t*>(p);
      close(fd);
    }
  }
  s.real_handle = dlopen(s.config->module.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (s.real_handle == nullptr) return;
  auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(s.real_handle, "C_GetFunctionList"));
  if (get == nullptr || get(&s.real) != CKR_OK) {
    s.real = nullptr;
    return;
  }
  s.list = *s.real;
  s.list.C_Initialize = ShimInitialize;
  s.list.C_Finalize = ShimFinalize;
  s.list.C_GetSlotList = ShimGetSlotList;
  s.list.C_GetTokenInfo = ShimGetTokenInfo;
  s.list.C_OpenSession = ShimOpenSession;
  s.list.C_CloseSession = ShimCloseSession;
  s.list.C_CloseAllSessions = ShimCloseAllSessions;
  s.list.C_GetSessionInfo = ShimGetSessionInfo;
  s.list.C_Login = ShimLogin;
  s.list.C_Logout = ShimLogout;
  s.list.C_FindObjectsInit = ShimFindObjectsInit;
  s.list.C_FindObjects = ShimFindObjects;
  s.list.C_FindObjectsFinal = ShimFindObjectsFinal;
  s.list.C_GetAttributeValue = ShimGetAttributeValue;
  s.list.C_SignInit = ShimSignInit;
  s.list.C_Sign = ShimSign;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(
    CK_FUNCTION_LIST_PTR_PTR list) {
  static std::once_flag once;
  std::call_once(once, Setup);
  if (list == nullptr) return CKR_ARGUMENTS_BAD;
  if (S().real == nullptr) return CKR_GENERAL_ERROR;
  *list = &S().list;
  return CKR_OK;
}
