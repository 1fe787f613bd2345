// The dispatcher (docs/hsm.md, "The dispatcher and its batching policy"): one FIFO of requests per
// key, handed in batches to idle sessions of the least loaded partition that is up and holds the
// key; the body of the session threads, which sign one request after the other and apply the
// recovery ladder's verdict; completion, re-routing and the partition circuit state.
//
// Lock discipline: one mutex, Dispatcher::mu(), guards every field below marked "under mu" and the
// dispatcher's own state; the supervisor (supervisor.h) takes the same mutex to use the *Locked
// primitives. It is never held across an HSM call (SignOne, a probe, a re-initialisation, closing a
// session) nor while callbacks run: completions are collected in Callbacks under the lock and run
// after it is released.
//
// Implementation-only. Dispatcher is thread-safe; the structs are data guarded as marked.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "hsm/detail/partition.h"
#include "hsm/signer.h"

namespace qseal::hsm::detail {

using SteadyTime = std::chrono::steady_clock::time_point;
inline SteadyTime SteadyNow() { return std::chrono::steady_clock::now(); }

// Completions collected under the lock, run once it is released (a callback must never run under
// the dispatcher's lock: it may take its time, and hands work on).
using Callbacks = std::vector<std::function<void()>>;
inline void RunCallbacks(Callbacks& cbs) {
  for (auto& cb : cbs) cb();
  cbs.clear();
}

// One accepted request, from Submit to its callback. `request` and `key` do not change once it is
// queued (a session thread reads them unlocked); the rest is under mu.
struct PendingRequest {
  SignRequest request;
  SignCallback done;
  std::size_t key = 0;  // index into Dispatcher::keys()
  SteadyTime enqueued;
  int attempts = 0;
  Status last_error;
  bool in_flight = false;
  bool completed = false;
};
using PendingPtr = std::shared_ptr<PendingRequest>;

// A configured key and the way to it: what signs with it, the partitions holding it, its queue.
struct KeyRoute {
  SigningKey key;
  KeyInfo info;
  std::vector<std::size_t> partitions;  // indices into Dispatcher::partitions()
  std::deque<PendingPtr> queue;         // under mu
};

// One session of a partition: its thread's work and what the thread is doing.
struct SessionSlot {
  std::size_t partition = 0;  // index into Dispatcher::partitions()
  int index = 0;              // within the partition
  CondVar cv;                 // wakes the session thread (waits on mu)
  // All below under mu.
  std::deque<PendingPtr> batch;  // assigned, not started
  std::size_t batch_key = 0;
  PendingPtr current;  // inside the HSM call
  SteadyTime call_started;
  bool busy = false;       // holds a batch
  bool abandoned = false;  // the call passed sign_timeout; its result is discarded
  std::uint64_t signatures = 0;
  bool opened_before = false;  // a later open is a re-open
};

// One partition while the signer runs: the token, the keys it holds, its sessions and its
// circuit state.
struct PartitionRuntime {
  std::unique_ptr<Partition> partition;
  std::vector<std::size_t> keys;    // indices into Dispatcher::keys()
  std::vector<SessionSlot*> slots;  // owned by Dispatcher::sessions()
  // All below under mu.
  PartitionState state = PartitionState::kStarting;
  PartitionStats stats;
  int consecutive_failures = 0;
  std::chrono::milliseconds backoff{0};
  SteadyTime next_probe;
};

class Dispatcher {
 public:
  // `options` have passed ValidateOptions.
  Dispatcher(const SignerOptions& options, std::vector<std::unique_ptr<KeyRoute>> keys,
             std::vector<std::unique_ptr<PartitionRuntime>> partitions);
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // The sets never change after CreateSessions; their elements' fields "under mu" do.
  const std::vector<std::unique_ptr<KeyRoute>>& keys() const { return keys_; }
  const std::vector<std::unique_ptr<PartitionRuntime>>& partitions() const { return partitions_; }
  const std::vector<std::unique_ptr<SessionSlot>>& sessions() const { return sessions_; }

  // Creates PartitionOptions::sessions slots per partition. Once, before any thread runs.
  void CreateSessions();

  // Signer::TrySubmit (deadline null) and Signer::Submit, with their contract.
  Status Submit(SignRequest request, SignCallback done, const SteadyTime* deadline);
  Result<KeyInfo> GetKey(std::string_view name) const;
  bool AnyPartitionUp() const;
  SignerStats Stats() const;

  // The body of the thread of `slot`: waits for a batch, signs its requests one by one with the
  // slot's own session (unlocked) and applies each outcome. Returns after Shutdown, its session
  // closed.
  void RunSession(SessionSlot& slot);

  // Stops taking requests, fails what is queued or assigned with kCancelled (into `cbs`) and wakes
  // every waiting thread.
  void Shutdown(Callbacks* cbs);

  Mutex& mu() const QSEAL_THREAD_ANNOTATION(lock_returned(mu_)) { return mu_; }

  // The primitives the supervisor shares. All need mu.
  bool StoppedLocked() const QSEAL_REQUIRES(mu_) { return shutdown_; }
  // Hands queued requests to idle sessions. `prefer`, when idle and on the chosen partition, gets
  // the batch (a session thread that just finished keeps working instead of waking another).
  void DispatchLocked(SessionSlot* prefer = nullptr) QSEAL_REQUIRES(mu_);
  void CompleteLocked(const PendingPtr& req, Result<Bytes> result, Callbacks* cbs)
      QSEAL_REQUIRES(mu_);
  // Puts a request back at the front of its key's queue, or fails it after max_attempts.
  void RequeueLocked(const PendingPtr& req, const Status& why, bool count_attempt, Callbacks* cbs)
      QSEAL_REQUIRES(mu_);
  // The calls `out` retried in place (stale sessions, device errors), counted in p's stats: for
  // requests and for the supervisor's probes alike.
  void CountRetriesLocked(PartitionRuntime& p, const SignOutcome& out) QSEAL_REQUIRES(mu_);
  // Moves the partition's circuit; leaving kUp returns its assigned batches to the key queues.
  void SetStateLocked(PartitionRuntime& p, PartitionState state, const Status& why, Callbacks* cbs)
      QSEAL_REQUIRES(mu_);
  // True while a partition of the key is up, down (recovering) or starting; else `why` says why.
  bool KeyHasLivePartitionLocked(const KeyRoute& k, Status* why) const QSEAL_REQUIRES(mu_);
  // "p1: down, 0/4 sessions busy, last error: ..." for each partition of the key.
  std::string PartitionSummaryLocked(const KeyRoute& k) const QSEAL_REQUIRES(mu_);
  // The supervisor sleeps here until a partition changes state, a request arrives while
  // max_linger is set, Shutdown, or `until`.
  void WaitForSupervisorWorkLocked(SteadyTime until) QSEAL_REQUIRES(mu_);

 private:
  void ReturnBatchesLocked(PartitionRuntime& p, Callbacks* cbs) QSEAL_REQUIRES(mu_);
  void ApplyOutcomeLocked(PartitionRuntime& p, SessionSlot& s, const PendingPtr& req,
                          SignOutcome& out, Callbacks* cbs) QSEAL_REQUIRES(mu_);

  const SignerOptions options_;
  const std::vector<std::unique_ptr<KeyRoute>> keys_;
  std::unordered_map<std::string, std::size_t> key_by_name_;
  const std::vector<std::unique_ptr<PartitionRuntime>> partitions_;
  std::vector<std::unique_ptr<SessionSlot>> sessions_;

  mutable Mutex mu_;
  CondVar room_cv_;        // a request completed: Submit may find room
  CondVar supervisor_cv_;  // see WaitForSupervisorWorkLocked
  bool shutdown_ QSEAL_GUARDED_BY(mu_) = false;
  std::size_t outstanding_ QSEAL_GUARDED_BY(mu_) = 0;
  std::size_t in_flight_ QSEAL_GUARDED_BY(mu_) = 0;
  std::size_t rr_ QSEAL_GUARDED_BY(mu_) = 0;
  SignerStats counters_ QSEAL_GUARDED_BY(mu_);
};

}  // namespace qseal::hsm::detail
