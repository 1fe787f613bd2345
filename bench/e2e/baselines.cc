#include "bench/e2e/baselines.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "bench/e2e/process_stats.h"
#include "hsm/detail/crypto.h"
#include "hsm/detail/module.h"
#include "hsm/detail/partition.h"
#include "tests/testing/qseald_harness.h"

namespace qseal::bench::e2e {
namespace {

namespace fs = std::filesystem;
using Seconds = std::chrono::duration<double>;
using testing::CommandResult;
using testing::RunCommand;
using testing::ShellQuote;

constexpr const char* kSoftHsm = "/usr/lib/softhsm/libsofthsm2.so";

}  // namespace

double RawLoop(const Options& o, const std::string& pin_file,
               const std::vector<std::string>& tokens, int sessions, Figures* fig,
               const std::string& module_path_in) {
  const std::string module_path = module_path_in.empty() ? kSoftHsm : module_path_in;
  auto module = hsm::detail::Module::Load(module_path);
  if (!module.ok()) {
    Say("raw: " + module.status().ToString());
    return -1;
  }
  auto key_uri = hsm::detail::ParseKeyUri("pkcs11:object=seal;type=private");
  auto pin = hsm::detail::ReadPin("file:" + pin_file);
  if (!key_uri.ok() || !pin.ok()) return -1;
  std::vector<std::unique_ptr<hsm::detail::Partition>> parts;
  for (const auto& token : tokens) {
    hsm::PartitionOptions p;
    p.name = token;
    p.module_path = module_path;
    p.token_label = token;
    p.pin_source = "file:" + pin_file;
    p.sessions = sessions;
    parts.push_back(std::make_unique<hsm::detail::Partition>(
        p, *module, *pin->Clone(), std::vector<hsm::detail::KeyUri>{*key_uri}));
  }
  const std::size_t sig_len = o.rsa() ? 384 : 64;
  Bytes digest(32, 7);
  Bytes input = o.rsa() ? hsm::detail::DigestInfo(DigestAlgorithm::kSha256, digest) : digest;
  std::atomic<bool> go{false}, stop{false};
  std::atomic<std::uint64_t> count{0}, errors{0};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (auto& part : parts) {
    for (int i = 0; i < sessions; ++i) {
      threads.emplace_back([&, p = part.get()] {
        CK_RV rv = CKR_OK;
        auto session = p->Open(&rv);
        auto key = session.ok() ? p->KeyHandle(*session, 0, &rv)
                                : Result<CK_OBJECT_HANDLE>(session.status());
        ++ready;
        if (!key.ok()) {
          ++errors;
          return;
        }
        CK_MECHANISM mech{o.rsa() ? CKM_RSA_PKCS : CKM_ECDSA, nullptr, 0};
        while (!go) std::this_thread::yield();
        std::uint64_t n = 0;
        while (!stop) {
          if (p->Sign(*session, *key, &mech, input, sig_len).rv == CKR_OK) {
            ++n;
          } else {
            ++errors;
          }
        }
        count += n;
      });
    }
  }
  while (ready < static_cast<int>(threads.size())) std::this_thread::yield();
  double cpu0 = RusageCpu(RUSAGE_SELF);
  auto start = std::chrono::steady_clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(o.raw_seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = Seconds(std::chrono::steady_clock::now() - start).count();
  double cpu = RusageCpu(RUSAGE_SELF) - cpu0;
  parts.clear();
  if (errors > 0) Say("raw: " + std::to_string(errors.load()) + " C_Sign errors");
  double rate = static_cast<double>(count) / elapsed;
  if (fig != nullptr && count > 0) {
    fig->cpu_s_per_1000 = cpu * 1000.0 / static_cast<double>(count);
    fig->docs += static_cast<int>(count);
  }
  return rate;
}

Figures OpensslLoop(const Options& o, const testing::SoftHsm& hsm, const Corpus& corpus,
                    const std::string& work, int parallel) {
  Figures fig;
  fig.scenario = parallel == 1 ? "openssl_seq" : "openssl_xargs";
  fig.sessions = std::to_string(parallel) + "proc";
  int n = std::min<int>(o.openssl_docs, static_cast<int>(corpus.paths.size()));
  fig.docs = n;
  std::string out = work + "/" + fig.scenario;
  fs::remove_all(out);
  fs::create_directories(out);
  std::string list = out + "/list";
  {
    std::ofstream l(list);
    for (int i = 0; i < n; ++i) l << corpus.paths[static_cast<std::size_t>(i)] << "\n";
  }
  std::string pin = testing::ReadFile(hsm.PinFile());
  while (!pin.empty() && (pin.back() == '\n' || pin.back() == '\r')) pin.pop_back();
  // Every process opens its own session on the first partition's token, as a script would.
  std::string sign =
      "openssl cms -sign -binary -cades -md sha256 -engine pkcs11 -keyform engine "
      "-inkey " +
      ShellQuote("pkcs11:token=qseal-p1;object=seal;type=private;pin-value=" + pin) + " -signer " +
      ShellQuote(hsm.CertPem("seal")) + " -outform DER";
  std::string env = "SOFTHSM2_CONF=" + ShellQuote(hsm.conf) + " PKCS11_MODULE_PATH=" + kSoftHsm +
                    " OPENSSL_CONF=/dev/null ";
  std::string script = out + "/run.sh";
  if (parallel == 1) {
    testing::WriteFile(script, "while read f; do " + sign + " -in \"$f\" -out " + ShellQuote(out) +
                                   "/$(basename \"$f\").p7s 2>>" + ShellQuote(out + "/errors") +
                                   "; done < " + ShellQuote(list) + "\n");
  } else {
    testing::WriteFile(script,
                       "xargs -P " + std::to_string(parallel) + " -I{} sh -c " +
                           ShellQuote(sign + " -in \"$1\" -out " + ShellQuote(out) +
                                      "/$(basename \"$1\").p7s 2>>" + ShellQuote(out + "/errors")) +
                           " sh {} < " + ShellQuote(list) + "\n");
  }
  double cpu0 = RusageCpu(RUSAGE_CHILDREN);
  auto start = std::chrono::steady_clock::now();
  CommandResult r = RunCommand(env + "sh " + ShellQuote(script));
  double elapsed = Seconds(std::chrono::steady_clock::now() - start).count();
  double cpu = RusageCpu(RUSAGE_CHILDREN) - cpu0;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    std::string p = out + "/" + corpus.names[static_cast<std::size_t>(i)] + ".p7s";
    std::error_code ec;
    if (fs::exists(p, ec) && fs::file_size(p, ec) > 0) ++ok;
  }
  fig.failed = n - ok;
  if (fig.failed > 0) {
    CommandResult e = RunCommand("grep -v '^Engine' " + ShellQuote(out + "/errors") + " | head -3");
    Say(fig.scenario + ": " + std::to_string(fig.failed) + " files not signed: " + e.output);
  }
  fig.docs_per_s = ok / elapsed;
  fig.cpu_s_per_1000 = cpu * 1000.0 / std::max(1, ok);
  // Per-file latency of the sequential loop is its mean; under xargs it is not measured.
  if (parallel == 1) fig.p50_ms = fig.p99_ms = elapsed * 1000.0 / std::max(1, ok);
  (void)r;
  // Independent check of a sample.
  for (int i = 0; i < std::min(n, o.verify_sample); ++i) {
    std::string p = out + "/" + corpus.names[static_cast<std::size_t>(i)] + ".p7s";
    std::error_code ec;
    if (!fs::exists(p, ec) || fs::file_size(p, ec) == 0) continue;  // counted as not signed
    std::string err =
        testing::OpensslVerify(p, hsm.ca_pem, corpus.paths[static_cast<std::size_t>(i)]);
    if (!err.empty()) {
      Say(fig.scenario + " verify failed: " + err);
      ++fig.failed;
    }
  }
  return fig;
}

}  // namespace qseal::bench::e2e
