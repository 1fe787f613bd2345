#include "hsm/detail/dispatcher.h"

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "hsm/detail/pkcs11.h"

namespace qseal::hsm::detail {

Dispatcher::Dispatcher(const SignerOptions& options, std::vector<std::unique_ptr<KeyRoute>> keys,
                       std::vector<std::unique_ptr<PartitionRuntime>> partitions)
    : options_(options), keys_(std::move(keys)), partitions_(std::move(partitions)) {
  for (std::size_t i = 0; i < keys_.size(); ++i) key_by_name_.emplace(keys_[i]->key.name, i);
}

void Dispatcher::CreateSessions() {
  for (std::size_t i = 0; i < partitions_.size(); ++i) {
    for (int j = 0; j < partitions_[i]->partition->options().sessions; ++j) {
      auto s = std::make_unique<SessionSlot>();
      s->partition = i;
      s->index = j;
      partitions_[i]->slots.push_back(s.get());
      sessions_.push_back(std::move(s));
    }
  }
}

Status Dispatcher::Submit(SignRequest request, SignCallback done, const SteadyTime* deadline) {
  auto it = key_by_name_.find(request.key);
  if (it == key_by_name_.end()) return InvalidArgumentError("unknown key '" + request.key + "'");
  const KeyRoute& key = *keys_[it->second];
  if (request.digest_value.size() != DigestSize(request.digest)) {
    return InvalidArgumentError("digest_value has " + std::to_string(request.digest_value.size()) +
                                " bytes, " + std::string(DigestName(request.digest)) + " needs " +
                                std::to_string(DigestSize(request.digest)));
  }
  bool rsa_scheme = request.scheme != SignatureScheme::kEcdsa;
  if (rsa_scheme != (key.info.type == KeyType::kRsa)) {
    return InvalidArgumentError("scheme " + std::string(SchemeName(request.scheme)) +
                                " does not fit key '" + request.key + "'");
  }
  if (!done) return InvalidArgumentError("no callback");
  {
    MutexLock lock(mu_);
    for (;;) {
      if (shutdown_) return CancelledError("signer shut down");
      if (outstanding_ < options_.max_pending) break;
      if (deadline == nullptr) {
        ++counters_.rejected;
        return ResourceExhaustedError("hsm dispatcher full (" +
                                      std::to_string(options_.max_pending) + " pending)");
      }
      if (!room_cv_.WaitUntil(mu_, *deadline) && outstanding_ >= options_.max_pending) {
        ++counters_.rejected;
        return DeadlineExceededError("hsm dispatcher full until the deadline");
      }
    }
    Status dead;
    if (!KeyHasLivePartitionLocked(key, &dead)) {
      ++counters_.rejected;
      return Status(dead.code(),
                    "key '" + request.key + "' has no usable partition: " + dead.message());
    }
    auto p = std::make_shared<PendingRequest>();
    p->request = std::move(request);
    p->done = std::move(done);
    p->key = it->second;
    p->enqueued = SteadyNow();
    ++outstanding_;
    ++counters_.submitted;
    keys_[it->second]->queue.push_back(std::move(p));
    DispatchLocked();
    if (options_.max_linger.count() > 0) supervisor_cv_.Signal();
  }
  return Status::Ok();
}

Result<KeyInfo> Dispatcher::GetKey(std::string_view name) const {
  auto it = key_by_name_.find(std::string(name));
  if (it == key_by_name_.end()) return NotFoundError("unknown key '" + std::string(name) + "'");
  return keys_[it->second]->info;
}

bool Dispatcher::AnyPartitionUp() const {
  MutexLock lock(mu_);
  for (const auto& p : partitions_) {
    if (p->state == PartitionState::kUp) return true;
  }
  return false;
}

SignerStats Dispatcher::Stats() const {
  MutexLock lock(mu_);
  SignerStats st = counters_;
  st.queued = 0;
  for (const auto& k : keys_) st.queued += k->queue.size();
  st.in_flight = in_flight_;
  for (const auto& p : partitions_) {
    PartitionStats ps = p->stats;
    ps.state = p->state;
    ps.sessions_total = static_cast<int>(p->slots.size());
    ps.sessions_busy = ps.sessions_idle = ps.sessions_dead = 0;
    for (const SessionSlot* s : p->slots) {
      ps.session_signatures.push_back(s->signatures);
      if (s->abandoned) {
        ++ps.sessions_dead;
      } else if (s->busy) {
        ++ps.sessions_busy;
      } else {
        ++ps.sessions_idle;
      }
    }
    st.partitions.push_back(std::move(ps));
  }
  return st;
}

void Dispatcher::RunSession(SessionSlot& s) {
  PartitionRuntime& p = *partitions_[s.partition];
  const std::chrono::milliseconds keepalive = p.partition->options().keepalive_interval;
  Session session;
  SteadyTime last_call = SteadyNow();  // of this thread's session, for the keepalive
  Callbacks cbs;
  mu_.Lock();
  for (;;) {
    while (!shutdown_ && s.batch.empty()) {
      if (keepalive.count() == 0 || !session.open() || p.state != PartitionState::kUp) {
        s.cv.Wait(mu_);
        continue;
      }
      // The session's own thread keeps it alive (one thread per session, always).
      const SteadyTime due = last_call + keepalive;
      if (SteadyNow() < due) {
        s.cv.WaitUntil(mu_, due);
        continue;
      }
      mu_.Unlock();
      CK_RV rv = CKR_OK;
      Status alive = p.partition->KeepAlive(session, &rv);
      mu_.Lock();
      last_call = SteadyNow();
      ++p.stats.keepalives;
      if (!alive.ok()) {
        ++p.stats.keepalive_failures;
        if (rv != CKR_OK) ++p.stats.errors[CkrName(rv)];
        LogWarn("hsm keepalive failed",
                {{"partition", p.stats.name}, {"session", s.index}, {"error", alive.message()}});
      }
    }
    if (s.batch.empty()) break;
    PendingPtr req = std::move(s.batch.front());
    s.batch.pop_front();
    bool close_session = false;
    if (req->completed) {
      // Completed elsewhere (a re-routed copy won): nothing to sign.
    } else if (p.state != PartitionState::kUp) {
      RequeueLocked(req, req->last_error, /*count_attempt=*/false, &cbs);
      ReturnBatchesLocked(p, &cbs);
    } else {
      s.current = req;
      s.call_started = SteadyNow();
      const std::size_t key_index = s.batch_key;
      mu_.Unlock();
      SignOutcome out =
          SignOne(*p.partition, session, keys_[key_index]->key, req->request.scheme,
                  req->request.digest, req->request.digest_value, options_.verify_after_sign);
      mu_.Lock();
      last_call = SteadyNow();
      s.current.reset();
      if (s.abandoned) {
        // The supervisor re-routed this call after sign_timeout; whatever it returned is void.
        s.abandoned = false;
        close_session = true;
      } else {
        ApplyOutcomeLocked(p, s, req, out, &cbs);
      }
    }
    if (s.batch.empty()) {
      s.busy = false;
      DispatchLocked(&s);
    }
    if (!cbs.empty() || close_session) {
      mu_.Unlock();
      RunCallbacks(cbs);
      if (close_session) session.Close();
      mu_.Lock();
    }
  }
  mu_.Unlock();
  session.Close();
}

void Dispatcher::Shutdown(Callbacks* cbs) {
  MutexLock lock(mu_);
  shutdown_ = true;
  for (auto& k : keys_) {
    while (!k->queue.empty()) {
      PendingPtr r = std::move(k->queue.front());
      k->queue.pop_front();
      CompleteLocked(r, CancelledError("signer shut down"), cbs);
    }
  }
  for (auto& s : sessions_) {
    while (!s->batch.empty()) {
      PendingPtr r = std::move(s->batch.front());
      s->batch.pop_front();
      CompleteLocked(r, CancelledError("signer shut down"), cbs);
    }
    s->cv.SignalAll();
  }
  supervisor_cv_.SignalAll();
  room_cv_.SignalAll();
}

void Dispatcher::DispatchLocked(SessionSlot* prefer) {
  if (shutdown_) return;
  const SteadyTime now = SteadyNow();
  const std::size_t nkeys = keys_.size();
  for (std::size_t i = 0; i < nkeys; ++i) {
    const std::size_t key_index = (rr_ + i) % nkeys;
    KeyRoute& k = *keys_[key_index];
    // Linger gates the whole queue: once it holds a full batch or its oldest request has waited
    // max_linger, everything queued is spread over the idle sessions.
    if (options_.max_linger.count() > 0 && k.queue.size() < options_.max_batch &&
        !k.queue.empty() && now - k.queue.front()->enqueued < options_.max_linger) {
      continue;  // the supervisor comes back for it
    }
    while (!k.queue.empty()) {
      // Least loaded partition (busy / total sessions) among those up with an idle session.
      SessionSlot* best = nullptr;
      double best_load = 0;
      std::size_t total_idle = 0;
      for (std::size_t pi : k.partitions) {
        PartitionRuntime& p = *partitions_[pi];
        if (p.state != PartitionState::kUp) continue;
        SessionSlot* idle = nullptr;
        std::size_t idle_count = 0;
        std::size_t busy = 0;
        for (SessionSlot* s : p.slots) {
          if (!s->busy) {
            ++idle_count;
            if (idle == nullptr || s == prefer) idle = s;
          } else {
            ++busy;
          }
        }
        total_idle += idle_count;
        if (idle == nullptr) continue;
        double load = static_cast<double>(busy) / static_cast<double>(p.slots.size());
        if (best == nullptr || load < best_load) {
          best = idle;
          best_load = load;
        }
      }
      if (best == nullptr) break;
      // Spread what is queued over the idle sessions rather than filling one batch first.
      std::size_t n = (k.queue.size() + total_idle - 1) / total_idle;
      n = std::min({n, options_.max_batch, k.queue.size()});
      for (std::size_t j = 0; j < n; ++j) {
        PendingPtr r = std::move(k.queue.front());
        k.queue.pop_front();
        r->in_flight = true;
        ++in_flight_;
        best->batch.push_back(std::move(r));
      }
      best->batch_key = key_index;
      best->busy = true;
      ++counters_.batches;
      best->cv.Signal();
    }
  }
  ++rr_;
}

void Dispatcher::CountRetriesLocked(PartitionRuntime& p, const SignOutcome& out) {
  for (CK_RV rv : out.recovered) ++p.stats.errors[CkrName(rv)];
  p.stats.stale_session_retries += static_cast<std::uint64_t>(out.stale_session_retries);
  p.stats.device_error_retries += static_cast<std::uint64_t>(out.device_error_retries);
}

void Dispatcher::ApplyOutcomeLocked(PartitionRuntime& p, SessionSlot& s, const PendingPtr& req,
                                    SignOutcome& out, Callbacks* cbs) {
  if (out.reopened) {
    if (s.opened_before) ++p.stats.session_reopens;
    s.opened_before = true;
  }
  if (out.verdict != Verdict::kOk && out.rv != CKR_OK) ++p.stats.errors[CkrName(out.rv)];
  CountRetriesLocked(p, out);
  switch (out.verdict) {
    case Verdict::kOk:
      p.consecutive_failures = 0;
      ++p.stats.signatures;
      ++s.signatures;
      CompleteLocked(req, std::move(out.signature), cbs);
      return;
    case Verdict::kRequest:
      p.stats.last_error = out.status.message();
      CompleteLocked(req, out.status, cbs);
      return;
    case Verdict::kSession:
    case Verdict::kRetry:
      p.stats.last_error = out.status.message();
      if (++p.consecutive_failures >= options_.max_session_failures) {
        SetStateLocked(p, PartitionState::kDown, out.status, cbs);
      }
      break;
    case Verdict::kDown:
      SetStateLocked(p, PartitionState::kDown, out.status, cbs);
      break;
    case Verdict::kDisabled:
      SetStateLocked(p, PartitionState::kDisabled, out.status, cbs);
      break;
    case Verdict::kQuarantine:
      ++p.stats.verify_failures;
      SetStateLocked(p, PartitionState::kQuarantined, out.status, cbs);
      break;
  }
  RequeueLocked(req, out.status, /*count_attempt=*/true, cbs);
}

void Dispatcher::CompleteLocked(const PendingPtr& req, Result<Bytes> result, Callbacks* cbs) {
  if (req->completed) return;
  req->completed = true;
  if (req->in_flight) {
    req->in_flight = false;
    --in_flight_;
  }
  --outstanding_;
  if (result.ok()) {
    ++counters_.succeeded;
  } else {
    ++counters_.failed;
  }
  room_cv_.Signal();
  cbs->push_back(
      [done = std::move(req->done), r = std::move(result)]() mutable { done(std::move(r)); });
}

void Dispatcher::RequeueLocked(const PendingPtr& req, const Status& why, bool count_attempt,
                               Callbacks* cbs) {
  if (req->completed) return;
  if (req->in_flight) {
    req->in_flight = false;
    --in_flight_;
  }
  req->last_error = why;
  if (count_attempt) ++req->attempts;
  if (shutdown_) {
    CompleteLocked(req, CancelledError("signer shut down"), cbs);
    return;
  }
  if (req->attempts >= options_.max_attempts) {
    Status last = why.ok() ? UnavailableError("no partition could sign") : why;
    CompleteLocked(
        req,
        Status(
            last.code() == StatusCode::kDeadlineExceeded ? StatusCode::kUnavailable : last.code(),
            "failed after " + std::to_string(req->attempts) + " attempts, last: " + last.message()),
        cbs);
    return;
  }
  ++counters_.rerouted;
  keys_[req->key]->queue.push_front(req);
}

void Dispatcher::ReturnBatchesLocked(PartitionRuntime& p, Callbacks* cbs) {
  for (SessionSlot* s : p.slots) {
    while (!s->batch.empty()) {
      PendingPtr r = std::move(s->batch.back());
      s->batch.pop_back();
      RequeueLocked(r, r->last_error, /*count_attempt=*/false, cbs);
    }
  }
}

void Dispatcher::SetStateLocked(PartitionRuntime& p, PartitionState state, const Status& why,
                                Callbacks* cbs) {
  if (!why.ok()) p.stats.last_error = why.message();
  if (p.state == state) return;
  PartitionState old = p.state;
  p.state = state;
  if (state == PartitionState::kDown) {
    p.backoff = options_.probe_backoff_initial;
    p.next_probe = SteadyNow() + p.backoff;
  }
  if (state == PartitionState::kUp) p.consecutive_failures = 0;
  if (state != PartitionState::kUp) ReturnBatchesLocked(p, cbs);
  std::string error = why.ok() ? std::string() : why.message();
  if (state == PartitionState::kUp) {
    LogInfo("partition up", {{"partition", p.stats.name}, {"from", PartitionStateName(old)}});
  } else {
    LogWarn("partition out",
            {{"partition", p.stats.name}, {"state", PartitionStateName(state)}, {"error", error}});
  }
  supervisor_cv_.Signal();
}

bool Dispatcher::KeyHasLivePartitionLocked(const KeyRoute& k, Status* why) const {
  for (std::size_t pi : k.partitions) {
    const PartitionRuntime& p = *partitions_[pi];
    if (p.state == PartitionState::kUp || p.state == PartitionState::kDown ||
        p.state == PartitionState::kStarting) {
      return true;
    }
    *why = UnavailableError("partition '" + p.stats.name + "' is " +
                            std::string(PartitionStateName(p.state)) + ": " + p.stats.last_error);
  }
  return false;
}

std::string Dispatcher::PartitionSummaryLocked(const KeyRoute& k) const {
  std::string out;
  for (std::size_t pi : k.partitions) {
    const PartitionRuntime& p = *partitions_[pi];
    int busy = 0;
    for (const SessionSlot* s : p.slots) busy += s->busy ? 1 : 0;
    if (!out.empty()) out += "; ";
    out += p.stats.name + ": " + std::string(PartitionStateName(p.state)) + ", " +
           std::to_string(busy) + "/" + std::to_string(p.slots.size()) + " sessions busy";
    if (!p.stats.last_error.empty()) out += ", last error: " + p.stats.last_error;
  }
  return out;
}

void Dispatcher::WaitForSupervisorWorkLocked(SteadyTime until) {
  supervisor_cv_.WaitUntil(mu_, until);
}

}  // namespace qseal::hsm::detail
