// Shared helpers for the hsm integration tests: three SoftHSM2 tokens (hsm-a and hsm-b hold the
// same P-256 key "seal", hsm-c holds an RSA-3072 key "other"), copies of the p11shim module, and
// signature checks with the openssl command line. Test-only; thread-compatible.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/algorithms.h"
#include "common/bytes.h"
#include "hsm/signer.h"
#include "tests/p11shim/p11shim.h"
#include "tests/testing/testing.h"

namespace qseal::hsm::testing {

using qseal::testing::RunCommand;
using qseal::testing::ShellQuote;
using qseal::testing::TempDir;

inline constexpr const char* kSoftHsm = "/usr/lib/softhsm/libsofthsm2.so";

// The three tokens, provisioned once per build tree (scripts/provision-softhsm into
// <build>/tests/hsm/softhsm-cache, under an flock so parallel test processes do not race) and
// copied into a fresh temp dir per test process, with its own softhsm2.conf.
inline const qseal::testing::SoftHsm& Tokens() {
  static TempDir temp;  // removed at exit
  static TempDir* dir = &temp;
  static qseal::testing::SoftHsm hsm = [] {
    namespace fs = std::filesystem;
    const std::string cache = std::string(QSEAL_BINARY_DIR) + "/tests/hsm/softhsm-cache";
    fs::create_directories(fs::path(cache).parent_path());
    int lock = open((cache + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) std::abort();
    if (!fs::exists(cache + "/.complete")) {
      fs::remove_all(cache);
      auto r = qseal::testing::ProvisionSoftHsm(cache, {"hsm-a", "hsm-b"}, "ec-p256", "seal");
      if (r.ok()) r = qseal::testing::ProvisionSoftHsm(cache, {"hsm-c"}, "rsa-3072", "other");
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
        std::abort();
      }
      qseal::testing::WriteFile(cache + "/.complete", "");
    }
    const std::string copy = dir->Sub("softhsm");
    fs::copy(cache, copy, fs::copy_options::recursive);
    close(lock);
    qseal::testing::SoftHsm h;
    h.dir = copy;
    h.conf = copy + "/softhsm2.conf";
    h.module = kSoftHsm;
    h.pin = qseal::testing::ReadFile(copy + "/pin");
    h.ca_pem = copy + "/pki/ca.pem";
    qseal::testing::WriteFile(h.conf, "directories.tokendir = " + copy +
                                          "/tokens\nobjectstore.backend = file\n"
                                          "log.level = ERROR\nslots.removable = false\n");
    setenv("SOFTHSM2_CONF", h.conf.c_str(), 1);
    return h;
  }();
  return hsm;
}

// A copy of the shim module: one simulated network HSM.
struct Shim {
  std::string so;
  std::string conf() const { return so + ".conf"; }
  std::string counts() const { return so + ".counts"; }
  void Configure(const std::string& text) const { p11shim::WriteConfig(conf(), text); }
  std::uint64_t Count(p11shim::Counter c) const { return p11shim::ReadCount(counts(), c); }
};

inline Shim MakeShim(const TempDir& dir, const std::string& name, const std::string& config = "") {
  Shim s{dir.Sub(name + ".so")};
  std::filesystem::copy_file(QSEAL_P11SHIM_PATH, s.so,
                             std::filesystem::copy_options::overwrite_existing);
  s.Configure(config);
  return s;
}

inline PartitionOptions Part(const std::string& name, const std::string& module,
                             const std::string& token, int sessions = 4) {
  PartitionOptions p;
  p.name = name;
  p.module_path = module;
  p.token_label = token;
  p.pin_source = "file:" + Tokens().PinFile();
  p.sessions = sessions;
  return p;
}

inline KeyOptions SealKey(std::vector<std::string> partitions) {
  KeyOptions k;
  k.name = "seal";
  k.uri = "pkcs11:object=seal;type=private";
  k.certificate_chain_file = Tokens().ChainPem("seal");
  k.partitions = std::move(partitions);
  return k;
}

inline KeyOptions OtherKey(std::vector<std::string> partitions) {
  KeyOptions k;
  k.name = "other";
  k.uri = "pkcs11:object=other;id=%01";
  k.certificate_chain_file = Tokens().ChainPem("other");
  k.partitions = std::move(partitions);
  return k;
}

// Fast recovery for tests.
inline SignerOptions TestOptions() {
  SignerOptions o;
  o.reinit_interval = std::chrono::milliseconds(500);
  o.probe_backoff_initial = std::chrono::milliseconds(100);
  o.probe_backoff_max = std::chrono::milliseconds(500);
  return o;
}

inline Bytes Digest(DigestAlgorithm d, int seed) {
  Bytes b(DigestSize(d));
  for (std::size_t i = 0; i < b.size(); ++i) {
    b[i] = static_cast<std::uint8_t>((static_cast<std::size_t>(seed) * 131 + i * 7) & 0xff);
  }
  return b;
}

struct Outcome {
  Bytes digest;
  Result<Bytes> signature = InternalError("not completed");
  int calls = 0;
};

// Submits `n` requests (blocking Submit, 60 s deadline) and waits for every callback.
class Collector {
 public:
  explicit Collector(std::size_t n) : outcomes_(n) {}

  void Submit(Signer& signer, std::size_t i, const std::string& key, SignatureScheme scheme,
              DigestAlgorithm digest, int seed) {
    outcomes_[i].digest = Digest(digest, seed);
    SignRequest r{key, scheme, digest, outcomes_[i].digest};
    Status s = signer.Submit(
        std::move(r),
        [this, i](Result<Bytes> sig) {
          std::lock_guard<std::mutex> lock(mu_);
          outcomes_[i].signature = std::move(sig);
          ++outcomes_[i].calls;
          ++done_;
          cv_.notify_all();
        },
        std::chrono::steady_clock::now() + std::chrono::seconds(60));
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      outcomes_[i].signature = s;
      ++outcomes_[i].calls;
      ++done_;
      cv_.notify_all();
    }
  }

  bool Wait(std::chrono::seconds timeout = std::chrono::seconds(90)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_ >= outcomes_.size(); });
  }

  std::size_t Failed() {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t n = 0;
    for (const auto& o : outcomes_) n += o.signature.ok() ? 0 : 1;
    return n;
  }
  std::string FirstError() {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& o : outcomes_) {
      if (!o.signature.ok()) return o.signature.status().ToString();
    }
    return "";
  }
  std::vector<Outcome>& outcomes() { return outcomes_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Outcome> outcomes_;
  std::size_t done_ = 0;
};

// Verifies with the openssl CLI and the public key of `cert_pem` (independent of qseal's code).
inline bool OpensslVerify(const TempDir& dir, const std::string& cert_pem, SignatureScheme scheme,
                          DigestAlgorithm digest, const Bytes& digest_value, const Bytes& sig) {
  static std::atomic<int> counter{0};
  std::string base = dir.Sub("verify" + std::to_string(counter++));
  qseal::testing::WriteFile(base + ".dgst", std::string(AsChars(digest_value)));
  qseal::testing::WriteFile(base + ".sig", std::string(AsChars(sig)));
  std::string md(DigestName(digest));
  std::string opts = " -pkeyopt digest:" + md;
  if (scheme == SignatureScheme::kRsaPkcs1v15) opts += " -pkeyopt rsa_padding_mode:pkcs1";
  if (scheme == SignatureScheme::kRsaPss) {
    opts += " -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:" +
            std::to_string(DigestSize(digest)) + " -pkeyopt rsa_mgf1_md:" + md;
  }
  auto r = RunCommand("openssl pkeyutl -verify -certin -inkey " + ShellQuote(cert_pem) + " -in " +
                      ShellQuote(base + ".dgst") + " -sigfile " + ShellQuote(base + ".sig") + opts);
  return r.exit_code == 0 && r.output.find("Signature Verified Successfully") != std::string::npos;
}

inline const PartitionStats* FindPartition(const SignerStats& s, const std::string& name) {
  for (const auto& p : s.partitions) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace qseal::hsm::testing

namespace qseal::hsm::testing {

// Keeps up to `window` requests outstanding against one key until Stop(), verifying nothing
// itself but counting outcomes (and keeping the first failures for the test's message).
class LoadGen {
 public:
  LoadGen(Signer& signer, std::string key, std::size_t window = 32)
      : signer_(signer), key_(std::move(key)), window_(window) {
    thread_ = std::thread([this] { Run(); });
  }
  ~LoadGen() { Stop(); }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_ = false;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return outstanding_ == 0; });
  }

  std::uint64_t ok() {
    std::lock_guard<std::mutex> lock(mu_);
    return ok_;
  }
  std::uint64_t failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }
  std::string first_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

 private:
  void Run() {
    int seed = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (running_) {
      if (outstanding_ >= window_) {
        cv_.wait(lock);
        continue;
      }
      ++outstanding_;
      lock.unlock();
      Status s = signer_.Submit(
          {key_, SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
           Digest(DigestAlgorithm::kSha256, seed++)},
          [this](Result<Bytes> r) { Done(r.ok() ? Status::Ok() : r.status()); },
          std::chrono::steady_clock::now() + std::chrono::seconds(30));
      if (!s.ok()) Done(s);
      lock.lock();
    }
  }
  void Done(const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    --outstanding_;
    if (s.ok()) {
      ++ok_;
    } else {
      ++failed_;
      if (first_error_.empty()) first_error_ = s.ToString();
    }
    cv_.notify_all();
  }

  Signer& signer_;
  const std::string key_;
  const std::size_t window_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = true;
  std::size_t outstanding_ = 0;
  std::uint64_t ok_ = 0;
  std::uint64_t failed_ = 0;
  std::string first_error_;
  std::thread thread_;
};

// Polls `pred` every 10 ms until it holds or `timeout` passes (for states the signer reaches on
// its own time, such as a readmission after a probe).
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = std::chrono::milliseconds(20000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace qseal::hsm::testing
