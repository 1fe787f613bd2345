#include "hsm/signer.h"

#include <algorithm>
#include <optional>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "common/mutex.h"
#include "hsm/detail/crypto.h"
#include "hsm/detail/dispatcher.h"
#include "hsm/detail/module.h"
#include "hsm/detail/options.h"
#include "hsm/detail/partition.h"
#include "hsm/detail/supervisor.h"

namespace qseal::hsm {

using detail::SteadyNow;
using detail::SteadyTime;
using detail::Verdict;

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

// Builds the dispatcher and the supervisor, runs the startup checks, and owns the threads: one per
// session (Dispatcher::RunSession) and the supervisor's (Supervisor::Run).
class Signer::Impl {
 public:
  Impl(SignerOptions options, Clock& clock) : options_(options), clock_(clock) {}
  ~Impl() { Shutdown(); }

  Status Init(std::vector<PartitionOptions> partitions, std::vector<KeyOptions> keys);
  Status TrySubmit(SignRequest request, SignCallback done, const SteadyTime* deadline) {
    return dispatcher_->Submit(std::move(request), std::move(done), deadline);
  }
  Result<KeyInfo> GetKey(std::string_view name) const { return dispatcher_->GetKey(name); }
  bool Ready() const { return Health().ok() && dispatcher_->AnyPartitionUp(); }
  Status Health() const { return supervisor_->Health(); }
  SignerStats Stats() const { return dispatcher_->Stats(); }
  const std::vector<PartitionReport>& StartupReport() const { return report_; }
  void Shutdown();
  // True when Shutdown left threads stuck inside a module behind: the Impl must then outlive them.
  bool leaked() const { return leaked_; }

 private:
  // Runs `body` on a new thread that reports its exit to Shutdown.
  void StartThread(std::function<void()> body);

  const SignerOptions options_;
  Clock& clock_;

  std::unique_ptr<detail::Dispatcher> dispatcher_;
  std::unique_ptr<detail::Supervisor> supervisor_;
  std::vector<PartitionReport> report_;  // written by Init only, before any thread runs

  // The session threads, then the supervisor's. Only touched by Init and by Shutdown callers.
  std::vector<std::thread> threads_;
  Mutex exit_mu_;
  CondVar exit_cv_;                                      // a thread left its body
  std::vector<bool> exited_ QSEAL_GUARDED_BY(exit_mu_);  // per threads_ entry
  bool leaked_ = false;  // only touched by Shutdown callers, serialised by shutdown_mu_
  bool joined_ = false;  // only touched by Shutdown callers, serialised by shutdown_mu_
  Mutex shutdown_mu_;
};

Status Signer::Impl::Init(std::vector<PartitionOptions> partitions, std::vector<KeyOptions> keys) {
  QSEAL_RETURN_IF_ERROR(detail::ValidateOptions(options_, partitions, keys));
  std::unordered_map<std::string, std::size_t> part_by_name;
  for (std::size_t i = 0; i < partitions.size(); ++i) part_by_name.emplace(partitions[i].name, i);

  std::vector<detail::KeyUri> uris;
  std::vector<std::unique_ptr<detail::KeyRoute>> routes;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const KeyOptions& ko = keys[i];
    QSEAL_ASSIGN_OR_RETURN(detail::KeyUri uri, detail::ParseKeyUri(ko.uri));
    uris.push_back(std::move(uri));
    QSEAL_ASSIGN_OR_RETURN(KeyInfo info, detail::LoadAndCheckCertificate(ko, clock_.Now()));
    auto rt = std::make_unique<detail::KeyRoute>();
    rt->key.index = i;
    rt->key.name = ko.name;
    rt->key.type = info.type;
    QSEAL_ASSIGN_OR_RETURN(rt->key.verifier,
                           detail::Verifier::FromSpki(info.subject_public_key_info_der));
    std::size_t bytes = static_cast<std::size_t>((info.bits + 7) / 8);
    rt->key.raw_signature_size = info.type == KeyType::kRsa ? bytes : 2 * bytes;
    rt->info = std::move(info);
    for (const std::string& pn : ko.partitions) rt->partitions.push_back(part_by_name.at(pn));
    routes.push_back(std::move(rt));
  }
  std::unordered_map<std::string, Result<Secret>> pins;
  for (const PartitionOptions& po : partitions) {
    if (pins.count(po.pin_source) == 0) pins.emplace(po.pin_source, detail::ReadPin(po.pin_source));
  }
  std::unordered_map<std::string, std::shared_ptr<detail::Module>> modules;
  std::vector<std::unique_ptr<detail::PartitionRuntime>> runtimes;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    PartitionOptions& po = partitions[i];
    // Each source is read once (an env: source is gone from the environment after it); the
    // partitions sharing it get their own locked copy.
    const Result<Secret>& read = pins.at(po.pin_source);
    if (!read.ok()) return read.status().WithContext("partition '" + po.name + "'");
    QSEAL_ASSIGN_OR_RETURN(Secret pin, read->Clone());
    auto& module = modules[po.module_path];
    if (module == nullptr) {
      QSEAL_ASSIGN_OR_RETURN(module, detail::Module::Load(po.module_path));
    }
    auto rt = std::make_unique<detail::PartitionRuntime>();
    rt->stats.name = po.name;
    rt->stats.sessions_total = po.sessions;
    for (std::size_t k = 0; k < routes.size(); ++k) {
      const auto& kp = routes[k]->partitions;
      if (std::find(kp.begin(), kp.end(), i) != kp.end()) rt->keys.push_back(k);
    }
    rt->partition = std::make_unique<detail::Partition>(po, module, std::move(pin), uris);
    runtimes.push_back(std::move(rt));
  }
  dispatcher_ =
      std::make_unique<detail::Dispatcher>(options_, std::move(routes), std::move(runtimes));
  supervisor_ = std::make_unique<detail::Supervisor>(options_, *dispatcher_, std::move(modules));
  detail::Dispatcher& d = *dispatcher_;

  // Startup self-test of every partition: a partition that answers must hold every key it is
  // configured for, and the key must match its certificate.
  for (const auto& p : d.partitions()) {
    PartitionReport& report = report_.emplace_back();
    report.name = p->partition->name();
    detail::SignOutcome out = supervisor_->Probe(*p, &report.keys);
    p->partition->Describe(&report);
    report.error = out.verdict == Verdict::kOk ? std::string() : out.status.message();
    for (const KeyProtection& kp : report.keys) {
      LogInfo("key protection", {{"key", kp.key},
                                 {"partition", kp.partition},
                                 {"sensitive", kp.sensitive},
                                 {"extractable", kp.extractable},
                                 {"never_extractable", kp.never_extractable},
                                 {"always_sensitive", kp.always_sensitive}});
    }
    detail::Callbacks none;
    MutexLock lock(d.mu());
    d.CountRetriesLocked(*p, out);
    switch (out.verdict) {
      case Verdict::kOk:
        d.SetStateLocked(*p, PartitionState::kUp, Status::Ok(), &none);
        break;
      case Verdict::kQuarantine:
      case Verdict::kRequest:
        return out.status;
      case Verdict::kDisabled:
        if (out.status.code() == StatusCode::kNotFound) {
          return FailedPreconditionError(out.status.message());
        }
        d.SetStateLocked(*p, PartitionState::kDisabled, out.status, &none);
        break;
      default:
        d.SetStateLocked(*p, PartitionState::kDown, out.status, &none);
        break;
    }
  }
  {
    MutexLock lock(d.mu());
    for (std::size_t i = 0; i < report_.size(); ++i) report_[i].state = d.partitions()[i]->state;
    for (const auto& k : d.keys()) {
      Status why;
      if (!d.KeyHasLivePartitionLocked(*k, &why)) {
        return FailedPreconditionError(
            "key '" + k->key.name +
            "' refused: check 'partition available' failed: " + why.message());
      }
    }
  }
  d.CreateSessions();
  for (const auto& s : d.sessions()) {
    detail::SessionSlot* raw = s.get();
    StartThread([&d, raw] { d.RunSession(*raw); });
  }
  StartThread([this] { supervisor_->Run(); });
  return Status::Ok();
}

void Signer::Impl::StartThread(std::function<void()> body) {
  const std::size_t i = threads_.size();
  {
    MutexLock lock(exit_mu_);
    exited_.push_back(false);
  }
  threads_.emplace_back([this, i, body = std::move(body)] {
    body();
    MutexLock lock(exit_mu_);
    exited_[i] = true;
    exit_cv_.SignalAll();
  });
}

void Signer::Impl::Shutdown() {
  MutexLock serial(shutdown_mu_);
  if (joined_) return;
  detail::Callbacks cbs;
  if (dispatcher_ != nullptr) dispatcher_->Shutdown(&cbs);
  detail::RunCallbacks(cbs);
  // Wait for every thread to leave. A thread stuck inside a wedged module (Health) may never
  // return: once the module is wedged, the others get a grace of sign_timeout, then whatever is
  // still inside the module is detached and this Impl is leaked for it (the caller, Signer, does
  // not free it), and no module is finalised under a live call.
  {
    MutexLock lock(exit_mu_);
    auto all_exited = [&]() QSEAL_REQUIRES(exit_mu_) {
      return std::all_of(exited_.begin(), exited_.end(), [](bool e) { return e; });
    };
    std::optional<SteadyTime> give_up;
    while (!all_exited()) {
      if (give_up && SteadyNow() >= *give_up) break;
      exit_cv_.WaitUntil(exit_mu_, SteadyNow() + std::chrono::milliseconds(200));
      if (!give_up) {
        exit_mu_.Unlock();
        bool wedged = !Health().ok();
        exit_mu_.Lock();
        if (wedged) give_up = SteadyNow() + options_.sign_timeout;
      }
    }
  }
  std::size_t detached = 0;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    bool exited;
    {
      MutexLock lock(exit_mu_);
      exited = exited_[i];
    }
    if (!threads_[i].joinable()) continue;
    if (exited) {
      threads_[i].join();
    } else {
      threads_[i].detach();
      ++detached;
    }
  }
  if (detached > 0) {
    leaked_ = true;
    LogError("hsm shut down with threads stuck inside a wedged module; they are abandoned",
             {{"threads", static_cast<std::int64_t>(detached)}});
  }
  // The PINs go with the sessions; a thread left inside a wedged module cannot log in again.
  if (dispatcher_ != nullptr) {
    for (const auto& p : dispatcher_->partitions()) {
      if (p->partition != nullptr) p->partition->WipePin();
    }
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
const std::vector<PartitionReport>& Signer::StartupReport() const { return impl_->StartupReport(); }
void Signer::Shutdown() { impl_->Shutdown(); }

}  // namespace qseal::hsm
