// Daemon wires every component from a validated Config: queue, HSM signer, engine, API server,
// folder watchers, metrics. The only place that knows all of them.
//
// Not thread-safe; owned by main().
#pragma once

#include <memory>

#include "common/status.h"
#include "daemon/config.h"

namespace qseal::daemon {

class Daemon {
 public:
  explicit Daemon(Config config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Opens the queue, brings the HSM partitions up, starts the pipeline and the listeners.
  // Errors: kInvalidArgument for configuration problems found only now (unreadable certificate,
  // key refused by policy), kUnavailable when a listener or the HSM cannot be reached.
  Status Start();

  // SIGHUP: reads the API's TLS certificate, key and client CA again (ApiServer::ReloadTls), and
  // the metrics listener's when it has TLS, and records each in the audit trail. Open
  // connections keep their certificate. On error the old one stays in use. Thread-safe against
  // Fatal; call from main's thread.
  Status ReloadTls();

  // Stops intake, drains in-flight work within engine.drain_timeout, closes everything.
  Status Stop();

  // Non-OK once the daemon can no longer keep its promises and must exit: the queue refused a
  // write (an fsync failed; never retried, DESIGN.md §6; *exit_code = kExitIoErr), or a call has
  // been stuck inside a PKCS#11 module past hsm.hung_call_timeout, so that module can never be
  // re-initialised in this process (*exit_code = kExitUnavailable: a restart recovers it).
  // Never blocks on the HSM. Thread-safe.
  Status Fatal(int* exit_code = nullptr) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::daemon
