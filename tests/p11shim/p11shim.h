// p11shim: a PKCS#11 module for tests that behaves like a network HSM. It forwards every call to a
// real module (SoftHSM2) and injects latency, a capacity limit, errors, hung calls, corrupted
// signatures and a PIN lockout, and counts calls in a file that outlives the process.
//
// Each copy of the .so under another path is an independent "HSM" (its own state, config and
// counts). A copy at /x/shim-a.so reads its configuration from /x/shim-a.so.conf (or the file named
// by $P11SHIM_CONFIG) and counts into /x/shim-a.so.counts (or counts_file=). The config file is
// re-read within ~20 ms of a change, so a test can switch faults on and off while a client runs.
// Keys may also come from the environment as P11SHIM_<UPPER_KEY>; the file wins.
//
// Config keys (one "key=value" per line, '#' comments):
//   module=PATH               the real module. Default: /usr/lib/softhsm/libsofthsm2.so
//   counts_file=PATH          where counters live. Default: <so path>.counts
//   sign_latency_ms=F         added to every C_Sign (fractional ms allowed). Default: 0
//   sign_jitter_ms=F          plus a uniform random 0..F ms. Default: 0
//   ops_per_second=N          C_Sign capacity per token (calls queue behind it). Default: 0 (none)
//   session_invalid_rate=F    probability that a C_Sign kills its session (closed underneath,
//                             CKR_SESSION_HANDLE_INVALID returned). Default: 0
//   session_invalid_at=N      the N-th C_Sign (counted in the counts file) does that. Default: 0
//   device_error_at=N         the N-th C_Sign turns the device sticky-broken: every call returns
//                             CKR_DEVICE_ERROR until C_Finalize + C_Initialize. Default: 0
//   down=0|1                  while 1, every call returns CKR_DEVICE_ERROR and the sticky error is
//                             set (cleared by C_Finalize + C_Initialize once down=0). Default: 0
//   hang_sign_at=N            the N-th C_Sign blocks hang_ms before going on. Default: 0
//   hang_ms=N                 Default: 60000
//   corrupt_sign_at=N         the N-th C_Sign returns a signature with one bit flipped. Default: 0
//   corrupt_sign_rate=F       probability of that for every C_Sign. Default: 0
//   pin_lockout_after=K       after K wrong C_Login tries (persisted in the counts file, like a
//   real
//                             HSM) every C_Login answers CKR_PIN_LOCKED without trying. Default: 0
//   seed=N                    random seed. Default: 1
//   idle_drop_ms=N            a session idle (no call on it) longer than N ms is dropped by the
//                             "HSM" (Utimaco's AppTimeout): its next call closes it underneath and
//                             returns CKR_SESSION_HANDLE_INVALID. Default: 0 (never)
//   idle_drop_logout=0|1      with idle_drop_ms, the other form an idle timeout takes: once
//                             no session had a call for N ms, the next call logs the token out
//                             and returns CKR_USER_NOT_LOGGED_IN (the real module then answers
//                             that for every session until C_Login). Default: 0
//   device_error_rate=F       probability that a C_Sign answers CKR_DEVICE_ERROR while the next
//                             call works (one module failing inside an nShield load-shared slot);
//                             not sticky. Default: 0
//   key_extractable=0|1       C_GetAttributeValue reports CKA_EXTRACTABLE true and CKA_SENSITIVE
//                             false (an unprotected key). Default: 0
//   offload_sign=0|1          emulate a network HSM doing the crypto on its own hardware: an
//                             input signed once before (same token, key, mechanism without
//                             parameters) gets that signature back without host CPU work.
//                             For benchmarks that measure the dispatcher, not SoftHSM. Default: 0
//
// C_Finalize closes the sessions this copy opened and clears its state but does not finalise the
// real module (other copies share it in the process).
//
// Test-only; the helpers below are thread-compatible.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace qseal::p11shim {

// Counter slots in the counts file: an array of 64 native-endian uint64.
enum Counter : int {
  kInitialize = 0,
  kFinalize,
  kGetSlotList,
  kGetTokenInfo,
  kOpenSession,
  kCloseSession,
  kGetSessionInfo,
  kLogin,
  kLogout,
  kFindObjectsInit,
  kFindObjects,
  kFindObjectsFinal,
  kSignInit,
  kSign,
  kWrongPins,  // C_Login answered CKR_PIN_INCORRECT by the real module
  kInjectedSessionInvalid,
  kInjectedDeviceError,  // calls answered CKR_DEVICE_ERROR by injection
  kInjectedHang,
  kInjectedCorrupt,
  kInjectedPinLocked,
  kInjectedIdleDrop,  // sessions dropped (or logged out) by idle_drop_ms
  kCounterCount,
};
inline constexpr int kCountsSlots = 64;

// Reads the counters (zeros when the file does not exist yet).
inline std::vector<std::uint64_t> ReadCounts(const std::string& counts_file) {
  std::vector<std::uint64_t> v(kCountsSlots, 0);
  std::ifstream in(counts_file, std::ios::binary);
  if (in) in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 8));
  return v;
}

inline std::uint64_t ReadCount(const std::string& counts_file, Counter c) {
  return ReadCounts(counts_file)[static_cast<std::size_t>(c)];
}

// Replaces the config file atomically (write + rename), so the shim never reads half a file.
inline void WriteConfig(const std::string& config_file, const std::string& contents) {
  std::string tmp = config_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  std::rename(tmp.c_str(), config_file.c_str());
}

}  // namespace qseal::p11shim
