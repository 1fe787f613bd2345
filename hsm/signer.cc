#include "hsm/signer.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <thread>
#include <unordered_map>

#include "common/crash_point.h"
#include "common/log.h"
#include "common/mutex.h"
#include "hsm/detail/crypto.h"
#include "hsm/detail/module.h"
#include "hsm/detail/partition.h"
#include "hsm/detail/pkcs11.h"

namespace qseal::hsm {

using detail::CkrClass;
using detail::CkrName;
using detail::Classify;
using SteadyTime = std::chrono::steady_clock::time_point;

std::string_view PartitionStateName(PartitionState s) {
  switch (s) {
    case PartitionState::kStarting:
      return "starting";
    case PartitionState::kUp:
      return "up";
    case PartitionState::kDown:
      return "down";
    case PartitionState::kQuarantined:
      return "quarantined";
    case PartitionState::kDisabled:
      return "disabled";
  }
  return "unknown";
}

namespace {

SteadyTime SteadyNow() { return std::chrono::steady_clock::now(); }

struct Pending {
  SignRequest request;
  SignCallback done;
  std::size_t key = 0;
  SteadyTime enqueued;
  int attempts = 0;
  Status last_error;
  bool in_flight = false;
  bool completed = false;
};
using PendingPtr = std::shared_ptr<Pending>;

struct KeyRt {
  KeyOptions options;
  KeyInfo info;
  std::shared_ptr<const detail::Verifier> verifier;
  std::vector<std::size_t> partitions;
  std::size_t raw_signature_size = 0;
  std::deque<PendingPtr> queue;  // Impl::mu_
};

struct Slot {
  std::size_t partition = 0;
  int index = 0;
  std::thread thread;
  CondVar cv;
  // All below under Impl::mu_.
  std::deque<PendingPtr> batch;  // assigned, not started
  std::size_t batch_key = 0;
  PendingPtr current;  // inside the HSM call
  SteadyTime call_started;
  bool busy = false;       // holds a batch
  bool abandoned = false;  // the call passed sign_timeout; its result is discarded
  bool exited = false;     // the thread has left RunSlot
  std::uint64_t signatures = 0;
  bool opened_before = false;  // a later open is a re-open
};

struct PartRt {
  std::unique_ptr<detail::Partition> partition;
  std::vector<std::size_t> keys;
  std::vector<Slot*> slots;
  // All below under Impl::mu_.
  PartitionState state = PartitionState::kStarting;
  PartitionStats stats;
  int consecutive_failures = 0;
  std::chrono::milliseconds backoff{0};
  SteadyTime next_probe;
  bool probing = false;
};

// What one C_Sign attempt led to, and what the ladder does about it.
enum class Verdict {
  kOk,
  kSession,     // session dead: drop it, re-queue the request
  kRetry,       // other retryable error: re-queue
  kDown,        // partition down
  kDisabled,    // PIN or key missing: partition out for good
  kQuarantine,  // signature failed verification
  kRequest,     // this request cannot be signed: fail it
};

struct Outcome {
  Verdict verdict = Verdict::kOk;
  CK_RV rv = CKR_OK;
  Status status;
  Bytes signature;
  bool reopened = false;
};

}  // namespace

class Signer::Impl {
 public:
  Impl(SignerOptions options, Clock& clock) : options_(options), clock_(clock) {}
  ~Impl() { Shutdown(); }

  Status Init(std::vector<PartitionOptions> partitions, std::vector<KeyOptions> keys);
  Status TrySubmit(SignRequest request, SignCallback done, const SteadyTime* deadline);
  Result<KeyInfo> GetKey(std::string_view name) const;
  bool Ready() const;
  Status Health() const;
  SignerStats Stats() const;
  void Shutdown();
  // True when Shutdown left threads stuck inside a module behind: the Impl must then outlive them.
  bool leaked() const { return leaked_; }

 private:
  using Callbacks = std::vector<std::function<void()>>;

  Outcome SignOne(PartRt& p, detail::Session& session, std::size_t key_index,
                  SignatureScheme scheme, DigestAlgorithm digest, ByteSpan digest_value,
                  bool verify);
  Outcome Probe(PartRt& p);
  void RunSlot(Slot& s);
  void RunSupervisor();

  // Hands queued requests to idle sessions. `prefer`, when idle and on the chosen partition, gets
  // the batch (a session thread that just finished keeps working instead of waking another).
  void DispatchLocked(Slot* prefer = nullptr) QSEAL_REQUIRES(mu_);
  void CompleteLocked(const PendingPtr& req, Result<Bytes> result, Callbacks* cbs)
      QSEAL_REQUIRES(mu_);
  void RequeueLocked(const PendingPtr& req, const Status& why, bool count_attempt, Callbacks* cbs)
      QSEAL_REQUIRES(mu_);
  void ReturnBatchesLocked(PartRt& p, Callbacks* cbs) QSEAL_REQUIRES(mu_);
  void SetStateLocked(PartRt& p, PartitionState state, const Status& why, Callbacks* cbs)
      QSEAL_REQUIRES(mu_);
  void ApplyOutcomeLocked(PartRt& p, Slot& s, const PendingPtr& req, Outcome& out, Callbacks* cbs)
      QSEAL_REQUIRES(mu_);
  void ExpireLocked(Callbacks* cbs) QSEAL_REQUIRES(mu_);
  bool KeyHasLivePartitionLocked(const KeyRt& k, Status* why) const QSEAL_REQUIRES(mu_);
  // "p1: down, 0/4 sessions busy, last error: ..." for each partition of the key.
  std::string PartitionSummaryLocked(const KeyRt& k) const QSEAL_REQUIRES(mu_);
  static void Run(Callbacks& cbs) {
    for (auto& cb : cbs) cb();
    cbs.clear();
  }

  const SignerOptions options_;
  Clock& clock_;

  std::unordered_map<std::string, std::shared_ptr<detail::Module>> modules_;
  std::vector<std::unique_ptr<KeyRt>> keys_;
  std::unordered_map<std::string, std::size_t> key_by_name_;
  std::vector<std::unique_ptr<PartRt>> parts_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::thread supervisor_;

  mutable Mutex mu_;
  CondVar room_cv_;
  CondVar supervisor_cv_;
  CondVar exit_cv_;  // a thread left RunSlot or RunSupervisor
  bool supervisor_exited_ QSEAL_GUARDED_BY(mu_) = false;
  bool leaked_ = false;  // only touched by Shutdown callers, serialised by shutdown_mu_
  // The first hung-call verdict, latched: a module once wedged stays so for this process.
  mutable Status wedged_ QSEAL_GUARDED_BY(mu_);
  bool shutdown_ QSEAL_GUARDED_BY(mu_) = false;
  bool joined_ = false;  // only touched by Shutdown callers, serialised by shutdown_mu_
  Mutex shutdown_mu_;
  std::size_t outstanding_ QSEAL_GUARDED_BY(mu_) = 0;
  std::size_t in_flight_ QSEAL_GUARDED_BY(mu_) = 0;
  std::size_t rr_ QSEAL_GUARDED_BY(mu_) = 0;
  SignerStats counters_ QSEAL_GUARDED_BY(mu_);
};

Status Signer::Impl::Init(std::vector<PartitionOptions> partitions, std::vector<KeyOptions> keys) {
  if (partitions.empty()) return InvalidArgumentError("no partition configured");
  if (keys.empty()) return InvalidArgumentError("no key configured");
  if (options_.max_batch == 0 || options_.max_pending == 0 || options_.max_attempts < 1) {
    return InvalidArgumentError("max_batch, max_pending and max_attempts must be positive");
  }
  if (options_.hung_call_timeout < options_.sign_timeout) {
    return InvalidArgumentError("hung_call_timeout must be at least sign_timeout");
  }
  if (options_.max_linger >= options_.max_queue_time) {
    return InvalidArgumentError("max_linger must be shorter than max_queue_time");
  }
  std::unordered_map<std::string, std::size_t> part_by_name;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const PartitionOptions& po = partitions[i];
    if (po.name.empty()) return InvalidArgumentError("a partition has no name");
    if (!part_by_name.emplace(po.name, i).second) {
      return InvalidArgumentError("partition '" + po.name + "' configured twice");
    }
    if (po.module_path.empty()) {
      return InvalidArgumentError("partition '" + po.name + "': module is empty");
    }
    if (po.token_label.empty() && po.token_serial.empty()) {
      return InvalidArgumentError("partition '" + po.name + "': needs a token label or serial");
    }
    if (po.sessions < 1 || po.sessions > 1024) {
      return InvalidArgumentError("partition '" + po.name + "': sessions must be 1..1024");
    }
  }
  std::vector<detail::KeyUri> uris;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const KeyOptions& ko = keys[i];
    if (ko.name.empty()) return InvalidArgumentError("a key has no name");
    if (!key_by_name_.emplace(ko.name, i).second) {
      return InvalidArgumentError("key '" + ko.name + "' configured twice");
    }
    auto uri = detail::ParseKeyUri(ko.uri);
    if (!uri.ok()) return uri.status().WithContext("key '" + ko.name + "'");
    uris.push_back(*uri);
    QSEAL_ASSIGN_OR_RETURN(KeyInfo info, detail::LoadAndCheckCertificate(ko, clock_.Now()));
    auto rt = std::make_unique<KeyRt>();
    rt->options = ko;
    QSEAL_ASSIGN_OR_RETURN(rt->verifier,
                           detail::Verifier::FromSpki(info.subject_public_key_info_der));
    std::size_t bytes = static_cast<std::size_t>((info.bits + 7) / 8);
    rt->raw_signature_size = info.type == KeyType::kRsa ? bytes : 2 * bytes;
    rt->info = std::move(info);
    if (ko.partitions.empty()) return InvalidArgumentError("key '" + ko.name + "': no partitions");
    for (const std::string& pn : ko.partitions) {
      auto it = part_by_name.find(pn);
      if (it == part_by_name.end()) {
        return InvalidArgumentError("key '" + ko.name + "': unknown partition '" + pn + "'");
      }
      rt->partitions.push_back(it->second);
    }
    keys_.push_back(std::move(rt));
  }
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    PartitionOptions& po = partitions[i];
    auto pin = detail::ReadPin(po.pin_source);
    if (!pin.ok()) return pin.status().WithContext("partition '" + po.name + "'");
    auto& module = modules_[po.module_path];
    if (module == nullptr) {
      QSEAL_ASSIGN_OR_RETURN(module, detail::Module::Load(po.module_path));
    }
    auto rt = std::make_unique<PartRt>();
    rt->stats.name = po.name;
    rt->stats.sessions_total = po.sessions;
    for (std::size_t k = 0; k < keys_.size(); ++k) {
      const auto& kp = keys_[k]->partitions;
      if (std::find(kp.begin(), kp.end(), i) != kp.end()) rt->keys.push_back(k);
    }
    rt->partition = std::make_unique<detail::Partition>(po, module, std::move(*pin), uris);
    parts_.push_back(std::move(rt));
  }

  // Startup self-test of every partition: a partition that answers must hold every key it is
  // configured for, and the key must match its certificate.
  for (auto& p : parts_) {
    Outcome out = Probe(*p);
    Callbacks none;
    MutexLock lock(mu_);
    switch (out.verdict) {
      case Verdict::kOk:
        SetStateLocked(*p, PartitionState::kUp, Status::Ok(), &none);
        break;
      case Verdict::kQuarantine:
      case Verdict::kRequest:
        return out.status;
      case Verdict::kDisabled:
        if (out.status.code() == StatusCode::kNotFound) {
          return FailedPreconditionError(out.status.message());
        }
        SetStateLocked(*p, PartitionState::kDisabled, out.status, &none);
        break;
      default:
        SetStateLocked(*p, PartitionState::kDown, out.status, &none);
        break;
    }
  }
  {
    MutexLock lock(mu_);
    for (const auto& k : keys_) {
      Status why;
      if (!KeyHasLivePartitionLocked(*k, &why)) {
        return FailedPreconditionError(
            "key '" + k->options.name +
            "' refused: check 'partition available' failed: " + why.message());
      }
    }
  }
  for (std::size_t i = 0; i < parts_.size(); ++i) {
    for (int j = 0; j < partitions[i].sessions; ++j) {
      auto s = std::make_unique<Slot>();
      s->partition = i;
      s->index = j;
      parts_[i]->slots.push_back(s.get());
      slots_.push_back(std::move(s));
    }
  }
  for (auto& s : slots_) {
    Slot* raw = s.get();
    s->thread = std::thread([this, raw] { RunSlot(*raw); });
  }
  supervisor_ = std::thread([this] { RunSupervisor(); });
  return Status::Ok();
}

std::string Signer::Impl::PartitionSummaryLocked(const KeyRt& k) const {
  std::string out;
  for (std::size_t pi : k.partitions) {
    const PartRt& p = *parts_[pi];
    int busy = 0;
    for (const Slot* s : p.slots) busy += s->busy ? 1 : 0;
    if (!out.empty()) out += "; ";
    out += p.stats.name + ": " + std::string(PartitionStateName(p.state)) + ", " +
           std::to_string(busy) + "/" + std::to_string(p.slots.size()) + " sessions busy";
    if (!p.stats.last_error.empty()) out += ", last error: " + p.stats.last_error;
  }
  return out;
}

bool Signer::Impl::KeyHasLivePartitionLocked(const KeyRt& k, Status* why) const {
  for (std::size_t pi : k.partitions) {
    const PartRt& p = *parts_[pi];
    if (p.state == PartitionState::kUp || p.state == PartitionState::kDown ||
        p.state == PartitionState::kStarting) {
      return true;
    }
    *why = UnavailableError("partition '" + p.stats.name + "' is " +
                            std::string(PartitionStateName(p.state)) + ": " + p.stats.last_error);
  }
  return false;
}

Outcome Signer::Impl::SignOne(PartRt& p, detail::Session& session, std::size_t key_index,
                              SignatureScheme scheme, DigestAlgorithm digest, ByteSpan digest_value,
                              bool verify) {
  Outcome out;
  detail::Partition& part = *p.partition;
  const KeyRt& key = *keys_[key_index];
  auto fail = [&](CK_RV rv, Status s) {
    out.rv = rv;
    out.status = std::move(s);
    switch (Classify(rv)) {
      case CkrClass::kOk:
        out.verdict = Verdict::kRetry;
        break;
      case CkrClass::kSession:
        out.verdict = Verdict::kSession;
        break;
      case CkrClass::kNotLoggedIn:
      case CkrClass::kDevice:
        out.verdict = Verdict::kDown;
        break;
      case CkrClass::kPin:
        out.verdict = Verdict::kDisabled;
        break;
      case CkrClass::kRequest:
        out.verdict = Verdict::kRequest;
        break;
      case CkrClass::kObject:
      case CkrClass::kOther:
        out.verdict = Verdict::kRetry;
        break;
    }
    return out;
  };

  CK_RV rv = CKR_OK;
  if (session.open() && session.generation() != part.module().generation()) session.Drop();
  if (!session.open()) {
    auto opened = part.Open(&rv);
    if (!opened.ok()) {
      if (rv == CKR_OK) rv = CKR_GENERAL_ERROR;
      fail(rv, opened.status());
      // A session that cannot be opened is a device problem unless the module said otherwise.
      if (out.verdict == Verdict::kSession || out.verdict == Verdict::kRetry) {
        out.verdict = Verdict::kSession;
      }
      return out;
    }
    session = std::move(*opened);
    out.reopened = true;
  }

  Bytes input;
  CK_MECHANISM mech{};
  CK_RSA_PKCS_PSS_PARAMS pss{};
  switch (scheme) {
    case SignatureScheme::kEcdsa:
      mech.mechanism = CKM_ECDSA;
      input.assign(digest_value.begin(), digest_value.end());
      break;
    case SignatureScheme::kRsaPkcs1v15:
      mech.mechanism = CKM_RSA_PKCS;
      input = detail::DigestInfo(digest, digest_value);
      break;
    case SignatureScheme::kRsaPss:
      mech.mechanism = CKM_RSA_PKCS_PSS;
      pss.hashAlg = digest == DigestAlgorithm::kSha256   ? CKM_SHA256
                    : digest == DigestAlgorithm::kSha384 ? CKM_SHA384
                                                         : CKM_SHA512;
      pss.mgf = digest == DigestAlgorithm::kSha256   ? CKG_MGF1_SHA256
                : digest == DigestAlgorithm::kSha384 ? CKG_MGF1_SHA384
                                                     : CKG_MGF1_SHA512;
      pss.sLen = DigestSize(digest);
      mech.pParameter = &pss;
      mech.ulParameterLen = sizeof(pss);
      input.assign(digest_value.begin(), digest_value.end());
      break;
  }

  bool relogged = false;
  bool refound = false;
  for (;;) {
    CK_KEY_TYPE token_key_type = CKK_VENDOR_DEFINED;
    auto handle = part.KeyHandle(session, key_index, &rv, &token_key_type);
    if (!handle.ok()) {
      if (rv == CKR_OK && handle.status().code() == StatusCode::kNotFound && !relogged) {
        // Private objects are invisible when the token is logged out: log in once, look again.
        relogged = true;
        if (part.Relogin(session, &rv).ok()) continue;
        return fail(rv, handle.status());
      }
      if (rv == CKR_OK) {
        out.verdict = Verdict::kDisabled;
        out.status = handle.status();
        return out;
      }
      return fail(rv, handle.status());
    }
    const CK_KEY_TYPE want = key.info.type == KeyType::kRsa ? CKK_RSA : CKK_EC;
    if (token_key_type != CKK_VENDOR_DEFINED && token_key_type != want) {
      out.verdict = Verdict::kQuarantine;
      out.status =
          FailedPreconditionError("partition '" + part.name() + "': the token's key is " +
                                  (token_key_type == CKK_RSA  ? "RSA"
                                   : token_key_type == CKK_EC ? "EC"
                                                              : "of another type") +
                                  ", the certificate's is " + (want == CKK_RSA ? "RSA" : "EC"));
      return out;
    }
    detail::SignResult r = part.Sign(session, *handle, &mech, input, key.raw_signature_size);
    CkrClass cls = Classify(r.rv);
    if (cls == CkrClass::kNotLoggedIn && !relogged) {
      relogged = true;
      if (part.Relogin(session, &rv).ok()) continue;
      return fail(rv, detail::CkrStatus(rv, "partition '" + part.name() + "': C_Login"));
    }
    if (cls == CkrClass::kObject && !refound) {
      refound = true;
      part.ForgetKeyHandle(key_index);
      continue;
    }
    if (cls != CkrClass::kOk) {
      if (cls == CkrClass::kSession)
        session.Close();  // best effort: frees it if the module still knows it
      return fail(r.rv, detail::CkrStatus(r.rv, "partition '" + part.name() + "': C_Sign"));
    }
    out.signature = std::move(r.signature);
    break;
  }
  if (scheme == SignatureScheme::kEcdsa) {
    auto der = detail::EcdsaRawToDer(out.signature);
    if (!der.ok()) {
      out.verdict = Verdict::kQuarantine;
      out.status = UnavailableError("partition '" + part.name() +
                                    "': malformed ECDSA signature from C_Sign");
      return out;
    }
    out.signature = std::move(*der);
  }
  QSEAL_CRASH_POINT("hsm.signed_before_verify");
  if (verify && !key.verifier->Verify(scheme, digest, digest_value, out.signature)) {
    out.verdict = Verdict::kQuarantine;
    out.status = UnavailableError("partition '" + part.name() +
                                  "': signature failed verification with the certificate of key '" +
                                  key.options.name + "'");
    out.signature.clear();
    return out;
  }
  out.verdict = Verdict::kOk;
  return out;
}

Outcome Signer::Impl::Probe(PartRt& p) {
  Outcome out;
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
  detail::Session session;
  for (std::size_t k : p.keys) {
    const KeyRt& key = *keys_[k];
    SignatureScheme scheme =
        key.info.type == KeyType::kRsa ? SignatureScheme::kRsaPkcs1v15 : SignatureScheme::kEcdsa;
    Bytes digest = detail::RandomBytes(32);
    out = SignOne(p, session, k, scheme, DigestAlgorithm::kSha256, digest, /*verify=*/true);
    switch (out.verdict) {
      case Verdict::kOk:
        continue;
      case Verdict::kQuarantine:
        out.status = FailedPreconditionError("key '" + key.options.name +
                                             "' refused: check 'key matches certificate' failed "
                                             "on partition '" +
                                             p.stats.name + "': " + out.status.message());
        return out;
      case Verdict::kDisabled:
        if (out.status.code() == StatusCode::kNotFound) {
          out.status = NotFoundError("key '" + key.options.name +
                                     "' refused: check 'key present' "
                                     "failed on partition '" +
                                     p.stats.name + "': " + out.status.message());
        }
        return out;
      case Verdict::kRequest:
        out.status = FailedPreconditionError("key '" + key.options.name +
                                             "' refused: check 'test signature' failed on "
                                             "partition '" +
                                             p.stats.name + "': " + out.status.message());
        return out;
      default:
        out.verdict = Verdict::kDown;
        return out;
    }
  }
  return out;
}

void Signer::Impl::CompleteLocked(const PendingPtr& req, Result<Bytes> result, Callbacks* cbs) {
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

void Signer::Impl::RequeueLocked(const PendingPtr& req, const Status& why, bool count_attempt,
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

void Signer::Impl::ReturnBatchesLocked(PartRt& p, Callbacks* cbs) {
  for (Slot* s : p.slots) {
    while (!s->batch.empty()) {
      PendingPtr r = std::move(s->batch.back());
      s->batch.pop_back();
      RequeueLocked(r, r->last_error, /*count_attempt=*/false, cbs);
    }
  }
}

void Signer::Impl::SetStateLocked(PartRt& p, PartitionState state, const Status& why,
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

void Signer::Impl::ApplyOutcomeLocked(PartRt& p, Slot& s, const PendingPtr& req, Outcome& out,
                                      Callbacks* cbs) {
  if (out.reopened) {
    if (s.opened_before) ++p.stats.session_reopens;
    s.opened_before = true;
  }
  if (out.verdict != Verdict::kOk && out.rv != CKR_OK) ++p.stats.errors[CkrName(out.rv)];
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

void Signer::Impl::DispatchLocked(Slot* prefer) {
  if (shutdown_) return;
  const SteadyTime now = SteadyNow();
  const std::size_t nkeys = keys_.size();
  for (std::size_t i = 0; i < nkeys; ++i) {
    const std::size_t key_index = (rr_ + i) % nkeys;
    KeyRt& k = *keys_[key_index];
    // Linger gates the whole queue: once it holds a full batch or its oldest request has waited
    // max_linger, everything queued is spread over the idle sessions.
    if (options_.max_linger.count() > 0 && k.queue.size() < options_.max_batch &&
        !k.queue.empty() && now - k.queue.front()->enqueued < options_.max_linger) {
      continue;  // the supervisor comes back for it
    }
    while (!k.queue.empty()) {
      // Least loaded partition (busy / total sessions) among those up with an idle session.
      Slot* best = nullptr;
      double best_load = 0;
      std::size_t total_idle = 0;
      for (std::size_t pi : k.partitions) {
        PartRt& p = *parts_[pi];
        if (p.state != PartitionState::kUp) continue;
        Slot* idle = nullptr;
        std::size_t idle_count = 0;
        std::size_t busy = 0;
        for (Slot* s : p.slots) {
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

void Signer::Impl::RunSlot(Slot& s) {
  PartRt& p = *parts_[s.partition];
  detail::Session session;
  Callbacks cbs;
  mu_.Lock();
  for (;;) {
    while (!shutdown_ && s.batch.empty()) s.cv.Wait(mu_);
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
      Outcome out = SignOne(p, session, key_index, req->request.scheme, req->request.digest,
                            req->request.digest_value, options_.verify_after_sign);
      mu_.Lock();
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
      Run(cbs);
      if (close_session) session.Close();
      mu_.Lock();
    }
  }
  mu_.Unlock();
  session.Close();
  MutexLock lock(mu_);
  s.exited = true;
  exit_cv_.SignalAll();
}

void Signer::Impl::ExpireLocked(Callbacks* cbs) {
  const SteadyTime now = SteadyNow();
  // Hung calls: re-route the request and the rest of the batch; the slot stays out (busy) until
  // its thread comes back from the module.
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (s.current == nullptr || s.abandoned || now - s.call_started < options_.sign_timeout) {
      continue;
    }
    PartRt& p = *parts_[s.partition];
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
      RequeueLocked(r, r->last_error, false, cbs);
    }
    RequeueLocked(cur, why, true, cbs);
    if (++p.consecutive_failures >= options_.max_session_failures) {
      SetStateLocked(p, PartitionState::kDown, why, cbs);
    }
  }
  // Requests that waited too long, or whose key has no partition left.
  for (auto& kp : keys_) {
    KeyRt& k = *kp;
    Status dead;
    bool live = KeyHasLivePartitionLocked(k, &dead);
    for (auto it = k.queue.begin(); it != k.queue.end();) {
      const PendingPtr& r = *it;
      if (!live) {
        Status why = dead.code() == StatusCode::kOk ? UnavailableError("no partition") : dead;
        CompleteLocked(r,
                       Status(why.code(), "key '" + k.options.name +
                                              "' has no usable partition: " + why.message()),
                       cbs);
        it = k.queue.erase(it);
      } else if (now - r->enqueued >= options_.max_queue_time) {
        // Never attempted: say what each partition of the key was doing (the CI rehearsal's
        // "no partition up" for 180 s could not be explained from the log).
        std::string last = r->last_error.ok()
                               ? "no partition up (" + PartitionSummaryLocked(k) + ")"
                               : r->last_error.message();
        CompleteLocked(r, UnavailableError("waited longer than max_queue_time; last: " + last),
                       cbs);
        it = k.queue.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void Signer::Impl::RunSupervisor() {
  Callbacks cbs;
  const auto tick = std::chrono::milliseconds(
      options_.max_linger.count() > 0
          ? std::clamp<std::int64_t>(options_.max_linger.count() / 2, 1, 50)
          : 50);
  mu_.Lock();
  while (!shutdown_) {
    ExpireLocked(&cbs);
    DispatchLocked();
    std::vector<PartRt*> due;
    const SteadyTime now = SteadyNow();
    for (auto& p : parts_) {
      if (p->state == PartitionState::kDown && now >= p->next_probe) due.push_back(p.get());
    }
    mu_.Unlock();
    Run(cbs);
    for (PartRt* p : due) {
      Outcome out = Probe(*p);
      if (out.verdict == Verdict::kDown) {
        // Sticky device errors (a restarted network HSM) clear only with C_Finalize+C_Initialize.
        Status r = p->partition->module().Reinitialize(options_.reinit_interval,
                                                       std::chrono::milliseconds(2000));
        if (r.ok()) {
          {
            MutexLock lock(mu_);
            ++p->stats.reinits;
          }
          out = Probe(*p);
        }
      }
      MutexLock lock(mu_);
      if (out.rv != CKR_OK) ++p->stats.errors[CkrName(out.rv)];
      switch (out.verdict) {
        case Verdict::kOk:
          SetStateLocked(*p, PartitionState::kUp, Status::Ok(), &cbs);
          break;
        case Verdict::kQuarantine:
          ++p->stats.verify_failures;
          SetStateLocked(*p, PartitionState::kQuarantined, out.status, &cbs);
          break;
        case Verdict::kDisabled:
        case Verdict::kRequest:
          SetStateLocked(*p, PartitionState::kDisabled, out.status, &cbs);
          break;
        default:
          p->stats.last_error = out.status.message();
          p->backoff = std::min(p->backoff * 2, options_.probe_backoff_max);
          p->next_probe = SteadyNow() + p->backoff;
          break;
      }
      DispatchLocked();
    }
    mu_.Lock();
    if (!cbs.empty()) {
      mu_.Unlock();
      Run(cbs);
      mu_.Lock();
      continue;
    }
    if (!shutdown_) supervisor_cv_.WaitUntil(mu_, SteadyNow() + tick);
  }
  supervisor_exited_ = true;
  exit_cv_.SignalAll();
  mu_.Unlock();
}

Status Signer::Impl::TrySubmit(SignRequest request, SignCallback done, const SteadyTime* deadline) {
  auto it = key_by_name_.find(request.key);
  if (it == key_by_name_.end()) return InvalidArgumentError("unknown key '" + request.key + "'");
  const KeyRt& key = *keys_[it->second];
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
  Callbacks cbs;
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
    auto p = std::make_shared<Pending>();
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

Result<KeyInfo> Signer::Impl::GetKey(std::string_view name) const {
  auto it = key_by_name_.find(std::string(name));
  if (it == key_by_name_.end()) return NotFoundError("unknown key '" + std::string(name) + "'");
  return keys_[it->second]->info;
}

bool Signer::Impl::Ready() const {
  if (!Health().ok()) return false;
  MutexLock lock(mu_);
  for (const auto& p : parts_) {
    if (p->state == PartitionState::kUp) return true;
  }
  return false;
}

Status Signer::Impl::Health() const {
  // Reads only the modules' call clocks (never a lock held across an HSM call), so it answers
  // while threads are stuck inside a library.
  const SteadyTime now = SteadyNow();
  MutexLock lock(mu_);
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

SignerStats Signer::Impl::Stats() const {
  MutexLock lock(mu_);
  SignerStats st = counters_;
  st.queued = 0;
  for (const auto& k : keys_) st.queued += k->queue.size();
  st.in_flight = in_flight_;
  for (const auto& p : parts_) {
    PartitionStats ps = p->stats;
    ps.state = p->state;
    ps.sessions_total = static_cast<int>(p->slots.size());
    ps.sessions_busy = ps.sessions_idle = ps.sessions_dead = 0;
    for (const Slot* s : p->slots) {
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

void Signer::Impl::Shutdown() {
  MutexLock serial(shutdown_mu_);
  if (joined_) return;
  Callbacks cbs;
  {
    MutexLock lock(mu_);
    shutdown_ = true;
    for (auto& k : keys_) {
      while (!k->queue.empty()) {
        PendingPtr r = std::move(k->queue.front());
        k->queue.pop_front();
        CompleteLocked(r, CancelledError("signer shut down"), &cbs);
      }
    }
    for (auto& s : slots_) {
      while (!s->batch.empty()) {
        PendingPtr r = std::move(s->batch.front());
        s->batch.pop_front();
        CompleteLocked(r, CancelledError("signer shut down"), &cbs);
      }
      s->cv.SignalAll();
    }
    supervisor_cv_.SignalAll();
    room_cv_.SignalAll();
  }
  Run(cbs);
  // Wait for every thread to leave. A thread stuck inside a wedged module (Health) may never
  // return: once the module is wedged, the others get a grace of sign_timeout, then whatever is
  // still inside the module is detached and this Impl is leaked for it (the caller, Signer, does
  // not free it), and no module is finalised under a live call.
  {
    MutexLock lock(mu_);
    auto all_exited = [&]() QSEAL_REQUIRES(mu_) {
      if (supervisor_.joinable() && !supervisor_exited_) return false;
      for (auto& s : slots_) {
        if (s->thread.joinable() && !s->exited) return false;
      }
      return true;
    };
    std::optional<SteadyTime> give_up;
    while (!all_exited()) {
      if (give_up && SteadyNow() >= *give_up) break;
      exit_cv_.WaitUntil(mu_, SteadyNow() + std::chrono::milliseconds(200));
      if (!give_up) {
        mu_.Unlock();
        bool wedged = !Health().ok();
        mu_.Lock();
        if (wedged) give_up = SteadyNow() + options_.sign_timeout;
      }
    }
  }
  std::size_t detached = 0;
  auto finish = [&](std::thread& t, bool exited) {
    if (!t.joinable()) return;
    if (exited) {
      t.join();
    } else {
      t.detach();
      ++detached;
    }
  };
  for (auto& s : slots_) {
    bool exited;
    {
      MutexLock lock(mu_);
      exited = s->exited;
    }
    finish(s->thread, exited);
  }
  bool sup_exited;
  {
    MutexLock lock(mu_);
    sup_exited = supervisor_exited_;
  }
  finish(supervisor_, sup_exited);
  if (detached > 0) {
    leaked_ = true;
    LogError("hsm shut down with threads stuck inside a wedged module; they are abandoned",
             {{"threads", static_cast<std::int64_t>(detached)}});
  }
  joined_ = true;
}

// --- Signer ---

Result<std::unique_ptr<Signer>> Signer::Create(SignerOptions options,
                                               std::vector<PartitionOptions> partitions,
                                               std::vector<KeyOptions> keys, Clock& clock) {
  auto impl = std::make_unique<Impl>(options, clock);
  Status s = impl->Init(std::move(partitions), std::move(keys));
  if (!s.ok()) {
    impl->Shutdown();
    return s;
  }
  return std::unique_ptr<Signer>(new Signer(std::move(impl)));
}

Result<KeyInfo> Signer::CheckKeyCertificate(const KeyOptions& key, Clock& clock) {
  auto uri = detail::ParseKeyUri(key.uri);
  if (!uri.ok()) return uri.status().WithContext("key '" + key.name + "'");
  return detail::LoadAndCheckCertificate(key, clock.Now());
}

Signer::Signer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Signer::~Signer() {
  Shutdown();
  // Threads stuck inside a wedged module still use the Impl (and its modules, never finalised
  // under them): leave it to the process exit.
  if (impl_->leaked()) static_cast<void>(impl_.release());
}

Status Signer::TrySubmit(SignRequest request, SignCallback done) {
  return impl_->TrySubmit(std::move(request), std::move(done), nullptr);
}

Status Signer::Submit(SignRequest request, SignCallback done,
                      std::chrono::steady_clock::time_point deadline) {
  return impl_->TrySubmit(std::move(request), std::move(done), &deadline);
}

Result<KeyInfo> Signer::GetKey(std::string_view name) const { return impl_->GetKey(name); }
bool Signer::Ready() const { return impl_->Ready(); }
Status Signer::Health() const { return impl_->Health(); }
SignerStats Signer::Stats() const { return impl_->Stats(); }
void Signer::Shutdown() { impl_->Shutdown(); }

}  // namespace qseal::hsm
