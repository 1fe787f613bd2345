#include "hsm/detail/supervisor.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "common/log.h"
#include "hsm/detail/crypto.h"
#include "hsm/detail/pkcs11.h"

namespace qseal::hsm::detail {

Supervisor::Supervisor(const SignerOptions& options, Dispatcher& dispatcher,
                       std::unordered_map<std::string, std::shared_ptr<Module>> modules)
    : options_(options), dispatcher_(dispatcher), modules_(std::move(modules)) {}

SignOutcome Supervisor::Probe(PartitionRuntime& p, std::vector<KeyProtection>* protections) {
  SignOutcome out;
  if (p.keys.empty()) {
    // No key to test with: a session that opens and logs in is the best evidence available.
    CK_RV rv = CKR_OK;
    auto s = p.partition->Open(&rv);
    if (!s.ok()) {
      out.rv = rv;
      out.status = s.status();
      out.verdict = Classify(rv) == CkrClass::kPin ? Verdict::kDisabled : Verdict::kDown;
    }
    return out;
  }
  Session session;
  for (std::size_t k : p.keys) {
    const KeyRoute& key = *dispatcher_.keys()[k];
    SignatureScheme scheme =
        key.info.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1v15 : SignatureScheme::kEcdsa;
    Bytes digest = RandomBytes(32);
    out = SignOne(*p.partition, session, key.key, scheme, DigestAlgorithm::kSha256, digest,
                  /*verify=*/true);
    // The startup checks' wording: "key 'k' refused: check 'c' failed on partition 'p': why".
    auto refused = [&](std::string_view check) {
      return "key '" + key.key.name + "' refused: check '" + std::string(check) +
             "' failed on partition '" + p.partition->name() + "': " + out.status.message();
    };
    if (out.verdict == Verdict::kOk) {
      // eIDAS Annex II 1(b), 1(c) and 4: the seal key must never leave the QSCD in the clear.
      // PKCS#11 only lets CKA_EXTRACTABLE go from true to false and CKA_SENSITIVE from false to
      // true, so a key that passes stays passed; every probe checks anyway (cheap), which covers
      // a partition first reached after startup.
      CK_RV rv = CKR_OK;
      auto kp = p.partition->ReadKeyProtection(session, key.key.index, &rv);
      if (!kp.ok()) {
        out.rv = rv;
        out.status = kp.status();
        out.verdict = VerdictFor(rv == CKR_OK ? CKR_GENERAL_ERROR : rv);
        if (out.verdict != Verdict::kDisabled && out.verdict != Verdict::kQuarantine) {
          out.verdict = Verdict::kDown;
        }
        return out;
      }
      kp->key = key.key.name;
      kp->partition = p.partition->name();
      if (protections != nullptr) protections->push_back(*kp);
      if (kp->extractable || !kp->sensitive) {
        out.verdict = Verdict::kQuarantine;
        out.status = FailedPreconditionError(
            "key '" + key.key.name + "' refused: check 'key protection' failed on partition '" +
            p.partition->name() + "': the private key is " +
            (kp->extractable ? "extractable (CKA_EXTRACTABLE true)"
                             : "not sensitive (CKA_SENSITIVE false)") +
            "; a seal key must never leave the HSM in the clear");
        return out;
      }
      continue;
    }
    switch (out.verdict) {
      case Verdict::kOk:
        continue;
      case Verdict::kQuarantine:
        out.status = FailedPreconditionError(refused("key matches certificate"));
        return out;
      case Verdict::kDisabled:
        if (out.status.code() == StatusCode::kNotFound) {
          out.status = NotFoundError(refused("key present"));
        }
        return out;
      case Verdict::kRequest:
        out.status = FailedPreconditionError(refused("test signature"));
        return out;
      default:
        out.verdict = Verdict::kDown;
        return out;
    }
  }
  return out;
}

void Supervisor::ExpireLocked(Callbacks* cbs) {
  const SteadyTime now = SteadyNow();
  // Hung calls: re-route the request and the rest of the batch; the slot stays out (busy) until
  // its thread comes back from the module.
  for (const auto& sp : dispatcher_.sessions()) {
    SessionSlot& s = *sp;
    if (s.current == nullptr || s.abandoned || now - s.call_started < options_.sign_timeout) {
      continue;
    }
    PartitionRuntime& p = *dispatcher_.partitions()[s.partition];
    s.abandoned = true;
    ++p.stats.timeouts;
    Status why =
        DeadlineExceededError("partition '" + p.stats.name + "': C_Sign exceeded sign_timeout of " +
                              std::to_string(options_.sign_timeout.count()) + " ms");
    p.stats.last_error = why.message();
    LogWarn("hsm call hung; session marked dead, request re-routed",
            {{"partition", p.stats.name}, {"session", s.index}});
    PendingPtr cur = s.current;
    while (!s.batch.empty()) {
      PendingPtr r = std::move(s.batch.back());
      s.batch.pop_back();
      dispatcher_.RequeueLocked(r, r->last_error, false, cbs);
    }
    dispatcher_.RequeueLocked(cur, why, true, cbs);
    if (++p.consecutive_failures >= options_.max_session_failures) {
      dispatcher_.SetStateLocked(p, PartitionState::kDown, why, cbs);
    }
  }
  // Requests that waited too long, or whose key has no partition left.
  for (const auto& kp : dispatcher_.keys()) {
    KeyRoute& k = *kp;
    Status dead;
    bool live = dispatcher_.KeyHasLivePartitionLocked(k, &dead);
    for (auto it = k.queue.begin(); it != k.queue.end();) {
      const PendingPtr& r = *it;
      if (!live) {
        Status why = dead.code() == StatusCode::kOk ? UnavailableError("no partition") : dead;
        dispatcher_.CompleteLocked(
            r,
            Status(why.code(),
                   "key '" + k.key.name + "' has no usable partition: " + why.message()),
            cbs);
        it = k.queue.erase(it);
      } else if (now - r->enqueued >= options_.max_queue_time) {
        // Never attempted: say what each partition of the key was doing (the CI rehearsal's
        // "no partition up" for 180 s could not be explained from the log).
        std::string last = r->last_error.ok()
                               ? "no partition up (" + dispatcher_.PartitionSummaryLocked(k) + ")"
                               : r->last_error.message();
        dispatcher_.CompleteLocked(
            r, UnavailableError("waited longer than max_queue_time; last: " + last), cbs);
        it = k.queue.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void Supervisor::Run() {
  Callbacks cbs;
  const auto tick = std::chrono::milliseconds(
      options_.max_linger.count() > 0
          ? std::clamp<std::int64_t>(options_.max_linger.count() / 2, 1, 50)
          : 50);
  dispatcher_.mu().Lock();
  while (!dispatcher_.StoppedLocked()) {
    ExpireLocked(&cbs);
    dispatcher_.DispatchLocked();
    std::vector<PartitionRuntime*> due;
    const SteadyTime now = SteadyNow();
    for (const auto& p : dispatcher_.partitions()) {
      if (p->state == PartitionState::kDown && now >= p->next_probe) due.push_back(p.get());
    }
    dispatcher_.mu().Unlock();
    RunCallbacks(cbs);
    for (PartitionRuntime* p : due) {
      SignOutcome out = Probe(*p);
      if (out.verdict == Verdict::kDown) {
        // Sticky device errors (a restarted network HSM) clear only with C_Finalize+C_Initialize.
        Status r = p->partition->module().Reinitialize(options_.reinit_interval,
                                                       std::chrono::milliseconds(2000));
        if (r.ok()) {
          {
            MutexLock lock(dispatcher_.mu());
            ++p->stats.reinits;
          }
          out = Probe(*p);
        }
      }
      MutexLock lock(dispatcher_.mu());
      dispatcher_.CountRetriesLocked(*p, out);
      if (out.rv != CKR_OK) ++p->stats.errors[CkrName(out.rv)];
      switch (out.verdict) {
        case Verdict::kOk:
          dispatcher_.SetStateLocked(*p, PartitionState::kUp, Status::Ok(), &cbs);
          break;
        case Verdict::kQuarantine:
          ++p->stats.verify_failures;
          dispatcher_.SetStateLocked(*p, PartitionState::kQuarantined, out.status, &cbs);
          break;
        case Verdict::kDisabled:
        case Verdict::kRequest:
          dispatcher_.SetStateLocked(*p, PartitionState::kDisabled, out.status, &cbs);
          break;
        default:
          p->stats.last_error = out.status.message();
          p->backoff = std::min(p->backoff * 2, options_.probe_backoff_max);
          p->next_probe = SteadyNow() + p->backoff;
          break;
      }
      dispatcher_.DispatchLocked();
    }
    dispatcher_.mu().Lock();
    if (!cbs.empty()) {
      dispatcher_.mu().Unlock();
      RunCallbacks(cbs);
      dispatcher_.mu().Lock();
      continue;
    }
    if (!dispatcher_.StoppedLocked()) dispatcher_.WaitForSupervisorWorkLocked(SteadyNow() + tick);
  }
  dispatcher_.mu().Unlock();
}

Status Supervisor::Health() const {
  // Reads only the modules' call clocks (never a lock held across an HSM call), so it answers
  // while threads are stuck inside a library.
  const SteadyTime now = SteadyNow();
  MutexLock lock(wedged_mu_);
  if (!wedged_.ok()) return wedged_;
  for (const auto& [path, module] : modules_) {
    auto oldest = module->OldestCallStart();
    if (!oldest || now - *oldest < options_.hung_call_timeout) continue;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - *oldest).count();
    wedged_ = UnavailableError(
        "pkcs11 module " + path + " is wedged: a call has been inside it for " +
        std::to_string(secs) + " s (hung_call_timeout " +
        std::to_string(options_.hung_call_timeout.count()) +
        " ms); it cannot be re-initialised while a call is inside it (C_Finalize would be "
        "undefined behaviour), so the process must restart");
    LogError("hsm module wedged", {{"module", path}, {"error", wedged_.message()}});
    return wedged_;
  }
  return Status::Ok();
}

}  // namespace qseal::hsm::detail
