// qseald: the sealing daemon. Loads the configuration, wires the components, serves until
// SIGTERM/SIGINT, then drains and exits 0. SIGHUP reloads the API's TLS certificate.
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <openssl/crypto.h>

#include "common/exit_codes.h"
#include "common/log.h"
#include "common/secret.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/hsm_probe.h"

namespace {

constexpr const char* kVersion = QSEAL_VERSION;

}  // namespace

int main(int argc, char** argv) {
  // First: nothing this process holds (the PINs, documents) may end up in a core file, and no
  // process of the same user may attach to it or read its memory.
  qseal::Status no_core = qseal::DisableCoreDumps();
  if (!no_core.ok()) {
    std::cerr << "qseald: " << no_core.ToString() << "\n";
    return qseal::kExitFailure;
  }
  CLI::App app{"qseald: batch sealing daemon (qualified electronic seals through PKCS#11)"};
  std::string config_path = "conf/qseald.toml";
  bool check_only = false;
  bool probe_hsm = false;
  bool version = false;
  bool new_audit_key = false;
  app.add_option("-c,--config", config_path, "configuration file (TOML)");
  app.add_flag("--check-config", check_only, "validate the configuration, print every error, exit");
  app.add_flag("--probe-hsm", probe_hsm,
               "open every partition, log in, find and check every key, sign and verify one "
               "test digest per partition, print the modules, tokens and mechanisms, exit "
               "(0 ok, 69 HSM unreachable, 78 key or PIN refused)");
  app.add_flag("--new-audit-key", new_audit_key,
               "start a new audit checkpoint key although the key file is missing and audit "
               "segments exist (otherwise refused, exit 78); recorded as checkpoint_key_new");
  app.add_flag("--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return e.get_exit_code() == 0 ? rc : qseal::kExitUsage;
  }
  if (version) {
    std::cout << "qseald " << kVersion << " (" << OpenSSL_version(OPENSSL_VERSION) << ")\n";
    return qseal::kExitOk;
  }

  std::vector<std::string> errors;
  qseal::Result<qseal::daemon::Config> config = qseal::daemon::LoadConfig(config_path, &errors);
  if (!config.ok()) {
    for (const auto& e : errors) std::cerr << e << "\n";
    std::cerr << "qseald: " << errors.size() << " configuration error(s) in " << config_path
              << "\n";
    return qseal::kExitConfig;
  }
  config->audit.new_checkpoint_key = new_audit_key;
  if (check_only) {
    std::cout << config_path << ": configuration OK\n";
    return qseal::kExitOk;
  }
  qseal::LogLevel level = qseal::LogLevel::kInfo;
  qseal::ParseLogLevel(config->log_level, &level);
  qseal::SetLogLevel(level);
  {
    struct rlimit core {};
    ::getrlimit(RLIMIT_CORE, &core);
    qseal::LogInfo("core dumps disabled",
                   {{"dumpable", static_cast<std::int64_t>(::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))},
                    {"core_limit", static_cast<std::int64_t>(core.rlim_max)}});
  }
  if (probe_hsm) return qseal::daemon::ProbeHsm(*config, std::cout, std::cerr);

  // Block the stop signals in every thread; the main thread waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  qseal::daemon::Daemon daemon(std::move(*config));
  qseal::Status started = daemon.Start();
  if (!started.ok()) {
    qseal::LogError("startup failed", {{"error", started.ToString()}});
    daemon.Stop().IgnoreError();
    return started.code() == qseal::StatusCode::kInvalidArgument ? qseal::kExitConfig
                                                                 : qseal::ExitCodeFor(started);
  }
  // Wait for a stop signal; once a second, look whether the queue has refused a write (a failed
  // fsync): then nothing more may be acknowledged, so stop and exit non-zero (DESIGN.md §6).
  int sig = 0;
  // Likewise when a call has been stuck inside a PKCS#11 module past hsm.hung_call_timeout: that
  // module cannot be re-initialised in this process, so go not-ready and exit 69; the service
  // manager restarts qseald and the durable queue hands every accepted document back.
  qseal::Status fatal = qseal::Status::Ok();
  int fatal_exit = qseal::kExitIoErr;
  const timespec poll{1, 0};
  while (sig == 0) {
    int got = sigtimedwait(&stop_signals, nullptr, &poll);
    if (got == SIGHUP) {
      qseal::Status reloaded = daemon.ReloadTls();
      if (reloaded.ok()) {
        qseal::LogInfo("TLS certificate reloaded");
      } else {
        qseal::LogError("TLS reload failed; the current certificate stays in use",
                        {{"error", reloaded.ToString()}});
      }
      got = 0;
    }
    if (got > 0) sig = got;
    fatal = daemon.Fatal(&fatal_exit);
    if (sig == 0 && !fatal.ok()) break;
  }
  if (sig == 0) {
    qseal::LogError(fatal_exit == qseal::kExitIoErr ? "stopping: the queue refused a write"
                                                    : "stopping: an HSM module is wedged",
                    {{"error", fatal.ToString()}});
    daemon.Stop().IgnoreError();
    return fatal_exit;
  }
  qseal::LogInfo("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  qseal::Status stopped = daemon.Stop();
  if (!stopped.ok()) {
    qseal::LogError("stopped with an error", {{"error", stopped.ToString()}});
    return qseal::kExitFailure;
  }
  qseal::LogInfo("stopped");
  return qseal::kExitOk;
}
