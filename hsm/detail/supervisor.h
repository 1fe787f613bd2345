// The partition supervisor (docs/hsm.md, "The recovery ladder" and "Hung calls"): the background
// half of recovery. One thread that, every tick, abandons calls past sign_timeout (their requests
// and the rest of their batches re-routed), fails requests that waited past max_queue_time or
// whose key has no usable partition left, probes the partitions that are down (with back-off,
// re-initialising the module after a device failure) and readmits those whose probe passes. Also
// the self-test probe Signer::Create runs at startup, and the hung-call watch behind Health.
//
// The supervisor shares the dispatcher's mutex and state (dispatcher.h) and, like it, never holds
// the mutex across an HSM call: probes and re-initialisations run unlocked.
//
// Implementation-only. Thread-safe: Run on its own thread, Probe and Health from any thread.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "hsm/detail/dispatcher.h"
#include "hsm/detail/module.h"
#include "hsm/detail/partition.h"
#include "hsm/signer.h"

namespace qseal::hsm::detail {

class Supervisor {
 public:
  // `modules` (by path) are the ones the partitions use; `dispatcher` outlives the supervisor.
  Supervisor(const SignerOptions& options, Dispatcher& dispatcher,
             std::unordered_map<std::string, std::shared_ptr<Module>> modules);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Opens a session and signs a random SHA-256 digest with every key the partition holds,
  // verifying each signature, and reads each key's protection attributes (a partition without
  // keys: opens a session and logs in). The verdict says what to do with the partition; failed
  // startup checks name the check ("key 'k' refused: check 'key present' failed on partition
  // 'p': ..."); an extractable or non-sensitive key is kQuarantine, check 'key protection'.
  // `protections` (optional) receives the attributes of each key read. Blocks on the HSM: call
  // it with no lock held.
  SignOutcome Probe(PartitionRuntime& p, std::vector<KeyProtection>* protections = nullptr);

  // The supervisor thread's body. Returns after Dispatcher::Shutdown.
  void Run();

  // Signer::Health: kUnavailable, latched, once a call has been inside a module longer than
  // hung_call_timeout. Reads the modules' call clocks only; never waits for the HSM.
  Status Health() const;

 private:
  // Hung calls and expired requests (see the file comment).
  void ExpireLocked(Callbacks* cbs) QSEAL_REQUIRES(dispatcher_.mu());

  const SignerOptions options_;
  Dispatcher& dispatcher_;
  const std::unordered_map<std::string, std::shared_ptr<Module>> modules_;

  mutable Mutex wedged_mu_;
  // The first hung-call verdict, latched: a module once wedged stays so for this process.
  mutable Status wedged_ QSEAL_GUARDED_BY(wedged_mu_);
};

}  // namespace qseal::hsm::detail
