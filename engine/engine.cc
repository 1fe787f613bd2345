#include "engine/engine.h"

#include <algorithm>
#include <deque>
#include <thread>

#include <tbb/task_arena.h>

#include "audit/audit_log.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/sha256.h"
#include "common/tsan.h"
#include "engine/detail/audit_records.h"
#include "engine/detail/format_stages.h"
#include "engine/detail/job.h"
#include "engine/detail/outcomes.h"
#include "engine/detail/profile_states.h"
#include "formats/format.h"
#include "hsm/signer.h"
#include "metrics/metrics.h"
#include "revocation/revocation_cache.h"
#include "tsa/tsa_client.h"

namespace qseal::engine {
namespace {

using detail::Job;
using detail::JobPtr;
using detail::Jobs;
using detail::ProfileState;

// Hand-offs between stages carry batches, not single documents: one arena task prepares a chunk
// of a lease, one drains whatever the signer has returned, the committer takes everything
// finished. Per-document wake-ups cost more CPU than a small document's crypto (bench/RESULTS.md).
constexpr std::size_t kPrepareChunkDocs = 16;
constexpr std::uint64_t kPrepareChunkBytes = 1 << 20;  // big documents hash in parallel
constexpr std::size_t kAssembleChunkDocs = 64;

}  // namespace

class Engine::Impl {
 public:
  Impl(EngineOptions options, queue::Queue* queue, hsm::Signer* signer,
       std::vector<ProfileState> profiles, PublisherLookup publishers, Clock& clock)
      : options_(options),
        queue_(queue),
        signer_(signer),
        profiles_(std::move(profiles)),
        publishers_(std::move(publishers)),
        clock_(clock),
        arena_(options.worker_threads > 0 ? options.worker_threads : tbb::task_arena::automatic) {}

  ~Impl() {
    Stop().IgnoreError();
    // Signer callbacks may still hand jobs to the arena until the signer is shut down; the daemon
    // shuts the signer down before destroying the engine, so this wait ends.
    MutexLock lock(tasks_mu_);
    while (tasks_outstanding_ > 0) tasks_cv_.Wait(tasks_mu_);
  }

  void SetFinishedListener(FinishedListener l) { listener_ = std::move(l); }

  Status Start() {
    leaser_ = std::thread([this] { LeaserLoop(); });
    committer_ = std::thread([this] { CommitterLoop(); });
    return Status::Ok();
  }

  Status Stop() {
    {
      MutexLock lock(mu_);
      if (stopped_) return Status::Ok();
      stopped_ = true;
      stopping_ = true;
      cv_.SignalAll();
    }
    if (leaser_.joinable()) leaser_.join();
    Status result = Status::Ok();
    {
      MutexLock lock(mu_);
      auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
      while (docs_in_flight_ > 0 && std::chrono::steady_clock::now() < deadline) {
        cv_.WaitUntil(mu_, deadline);
      }
      if (docs_in_flight_ > 0) {
        result = DeadlineExceededError(std::to_string(docs_in_flight_) +
                                       " document(s) still in flight after the drain timeout; "
                                       "they stay leased and are requeued on restart");
      }
      committer_done_ = true;
      commit_cv_.SignalAll();
    }
    if (committer_.joinable()) committer_.join();
    return result;
  }

  EngineStats Stats() const {
    MutexLock lock(mu_);
    EngineStats s = stats_;
    s.documents_in_flight = docs_in_flight_;
    s.bytes_in_flight = bytes_in_flight_;
    return s;
  }

  // The profiles and their formats never change after Create: no lock needed.
  Result<std::string> SealName(const queue::Record& record, std::string_view document_name) const {
    const ProfileState* p = FindProfile(record.profile);
    if (p == nullptr) {
      return InvalidArgumentError("no seal format for profile \"" + record.profile + "\"");
    }
    const formats::Format* format = p->format.get();
    // A seal made before the profile changed format keeps the name its media type says.
    if (!record.seal_media_type.empty() && record.seal_media_type != format->media_type()) {
      for (const ProfileState& other : profiles_) {
        if (other.format->media_type() == record.seal_media_type) {
          format = other.format.get();
          break;
        }
      }
    }
    return format->OutputName(document_name);
  }

  std::vector<std::string> SealNames(std::string_view document_name) const {
    std::vector<std::string> names;
    for (const ProfileState& p : profiles_) {
      std::string n = p.format->OutputName(document_name);
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
    }
    return names;
  }

 private:
  void LeaserLoop() {
    while (true) {
      std::size_t room = 0;
      std::uint64_t bytes_room = 0;
      {
        MutexLock lock(mu_);
        while (!stopping_ &&
               (docs_in_flight_ >= options_.max_documents_in_flight ||
                (bytes_in_flight_ >= options_.max_bytes_in_flight && docs_in_flight_ > 0))) {
          stats_.throttled = true;
          cv_.WaitUntil(mu_, std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
        }
        stats_.throttled = false;
        if (stopping_) return;
        if (!AuditWritable()) {
          cv_.WaitUntil(mu_, std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
          continue;
        }
        room = std::min(options_.lease_batch, options_.max_documents_in_flight - docs_in_flight_);
        bytes_room = options_.max_bytes_in_flight > bytes_in_flight_
                         ? options_.max_bytes_in_flight - bytes_in_flight_
                         : 0;
      }
      Result<std::vector<queue::Record>> leased =
          queue_->Lease(room, bytes_room, options_.lease_duration);
      if (!leased.ok()) {
        LogError("lease failed", {{"error", leased.status().ToString()}});
        MutexLock lock(mu_);
        if (!stopping_)
          cv_.WaitUntil(mu_, std::chrono::steady_clock::now() + std::chrono::seconds(1));
        continue;
      }
      if (leased->empty()) {
        queue_->WaitForWork(std::chrono::milliseconds(100));
        continue;
      }
      {
        MutexLock lock(mu_);
        stats_.leased += leased->size();
        if (options_.metrics != nullptr) {
          options_.metrics->ObserveBatchSize(leased->size());
          auto now = clock_.Now();
          for (const auto& r : *leased) options_.metrics->ObserveQueueWait(now - r.created_at);
        }
        for (const auto& r : *leased) {
          docs_in_flight_++;
          bytes_in_flight_ += r.size;
        }
      }
      Jobs jobs;
      jobs.reserve(leased->size());
      for (auto& r : *leased) {
        auto job = std::make_shared<Job>();
        job->record = std::move(r);
        jobs.push_back(std::move(job));
      }
      if (options_.audit != nullptr) {
        AuditIntents(std::move(jobs));  // spawns the chunks once the intents are durable
        continue;
      }
      SpawnChunks(jobs);
    }
  }

  // One arena task per chunk of a lease batch (kPrepareChunkDocs documents or kPrepareChunkBytes).
  void SpawnChunks(const Jobs& jobs) {
    Jobs chunk;
    std::uint64_t chunk_bytes = 0;
    for (const JobPtr& job : jobs) {
      chunk_bytes += job->record.size;
      chunk.push_back(job);
      if (chunk.size() >= kPrepareChunkDocs || chunk_bytes >= kPrepareChunkBytes) {
        Spawn([this, c = std::move(chunk)] { PrepareChunk(c); });
        chunk = Jobs();
        chunk_bytes = 0;
      }
    }
    if (!chunk.empty()) Spawn([this, c = std::move(chunk)] { PrepareChunk(c); });
  }

  // Runs `f` on the arena without waiting for it; counted so the destructor can wait.
  template <typename F>
  void Spawn(F f) {
    {
      MutexLock lock(tasks_mu_);
      tasks_outstanding_++;
    }
    // The task lives in its own heap block: its address keys the TSan edge from here to the
    // worker that runs it (oneTBB's queue is invisible to TSan; common/tsan.h).
    auto task = std::make_shared<F>(std::move(f));
    TsanRelease(task.get());
    arena_.enqueue([this, task = std::move(task)] {
      TsanAcquire(task.get());
      (*task)();
      MutexLock lock(tasks_mu_);
      if (--tasks_outstanding_ == 0) tasks_cv_.SignalAll();
    });
  }

  void PrepareChunk(const Jobs& chunk) {
    Jobs prepared, finished;
    for (const JobPtr& job : chunk) {
      (Prepare(job) ? prepared : finished).push_back(job);
    }
    ToCommitter(finished);
    SubmitToSigner(prepared);
  }

  // The format's first half (read + hash + to-be-signed) and the sign request for its digest.
  // false: the job failed here (Fail set its error); it goes to the committer with its chunk.
  // Errors of the payload reader keep their retry meaning (kUnavailable: retry); the format's
  // refusals (kInvalidArgument, kFailedPrecondition, kDataLoss) are final.
  bool Prepare(const JobPtr& job) {
    job->profile = FindProfile(job->record.profile);
    if (job->profile == nullptr) {
      return Fail(job, InvalidArgumentError("unknown profile \"" + job->record.profile + "\""),
                  false);
    }
    job->content = detail::PayloadContent(queue_, job->record, options_.read_chunk_bytes);
    Status digest_only = detail::LoadPrecomputedDigest(queue_, job->record,
                                                       job->profile->profile.digest, &job->content);
    if (!digest_only.ok()) return Fail(job, digest_only, IsRetryable(digest_only.code()));
    auto prepare_start = std::chrono::steady_clock::now();
    Result<std::unique_ptr<formats::ToBeSigned>> tbs =
        job->profile->format->Prepare(job->content, clock_.Now());
    if (!tbs.ok()) return Fail(job, tbs.status(), IsRetryable(tbs.status().code()));
    if (options_.metrics != nullptr)
      options_.metrics->ObserveHash(std::chrono::steady_clock::now() - prepare_start);
    job->tbs = std::move(*tbs);
    if (!job->record.digest_algorithm.empty()) {
      job->digest_only_detail =
          "digest-only " + job->record.digest_algorithm + ":" + HexEncode(job->tbs->content_digest);
    }

    job->request.key = job->profile->profile.key;
    job->request.scheme = job->profile->profile.scheme;
    job->request.digest = job->profile->profile.digest;
    job->request.digest_value = job->tbs->digest;
    return true;
  }

  // Hands the prepared digests to the signer (never waits for it); the ones it refuses go to the
  // committer as failures.
  void SubmitToSigner(const Jobs& jobs) {
    Jobs refused;
    for (const JobPtr& job : jobs) {
      // B-LT without current revocation data (or with a revoked chain): no signature and no
      // time-stamp is spent on a seal that could not be finished now.
      if (revocation::RevocationCache* r = job->profile->profile.revocation; r != nullptr) {
        if (auto data = r->Current(); !data.ok()) {
          WaitOrFail(job, data.status(), "revocation data");
          refused.push_back(job);
          continue;
        }
      }
      job->sign_submitted = std::chrono::steady_clock::now();
      Status submitted =
          signer_->TrySubmit(std::move(job->request), [this, job](Result<Bytes> signature) {
            // On a signer thread: queue for assembly; the arena drains signed documents in
            // batches.
            job->signature = std::move(signature);
            if (job->signature.ok() && job->profile->profile.timestamps != nullptr) {
              RequestTimestamp(job);
            } else {
              OnSigned(job);
            }
          });
      if (!submitted.ok()) {
        Fail(job, submitted, submitted.code() != StatusCode::kInvalidArgument);
        refused.push_back(job);
      }
    }
    ToCommitter(refused);
  }

  // B-T: asks the profile's TSA client for a token over the format's imprint; its callback
  // (on the client's I/O thread) hands the document to assembly. Counted as an outstanding task,
  // so the destructor waits for the callback (the daemon shuts the client down first).
  void RequestTimestamp(const JobPtr& job) {
    const Profile& p = job->profile->profile;
    Result<Bytes> imprint = job->profile->format->TimestampImprint(*job->tbs, *job->signature);
    if (!imprint.ok()) {
      job->timestamp = imprint.status();
      return OnSigned(job);
    }
    {
      MutexLock lock(tasks_mu_);
      tasks_outstanding_++;
    }
    auto done = [this, job](Result<tsa::TimeStampToken> token) {
      if (token.ok()) {
        job->timestamp = std::move(token->der);
      } else {
        job->timestamp = token.status();
      }
      OnSigned(job);
      MutexLock lock(tasks_mu_);
      if (--tasks_outstanding_ == 0) tasks_cv_.SignalAll();
    };
    Status queued = p.timestamps->TryStamp(p.digest, *imprint, done);
    if (!queued.ok()) {
      // max_pending requests outstanding: the document waits in the queue instead.
      done(UnavailableError("time-stamp: " + queued.message()));
    }
  }

  // ---- Audit trail (docs/audit.md). The only places the engine talks to the audit log. ----

  bool AuditWritable() const { return options_.audit == nullptr || options_.audit->Health().ok(); }

  // One sign_intent per leased document, written as one group for the lease batch; the
  // documents go to the arena (hash, to-be-signed, signer) only once the group is durable, so
  // every digest reaches C_Sign after its intent. The callback runs on the audit writer thread
  // and only spawns. No record, no signature: a failed write requeues the documents.
  void AuditIntents(Jobs jobs) {
    std::vector<audit::Entry> entries;
    entries.reserve(jobs.size());
    for (const auto& job : jobs) {
      audit::Entry e = detail::AuditEntry(audit::Event::kSignIntent, *job);
      if (const ProfileState* p = FindProfile(job->record.profile)) e.key = p->profile.key;
      entries.push_back(std::move(e));
    }
    {
      // Counted like an arena task, so the destructor waits for the callback to have run.
      MutexLock lock(tasks_mu_);
      tasks_outstanding_++;
    }
    options_.audit->AppendAsync(std::move(entries), [this, jobs = std::move(jobs)](Status written) {
      if (written.ok()) {
        SpawnChunks(jobs);
      } else {
        Spawn([this, jobs, written] {
          for (const JobPtr& job : jobs) Fail(job, written.WithContext("audit"), true);
          ToCommitter(jobs);
        });
      }
      MutexLock lock(tasks_mu_);
      if (--tasks_outstanding_ == 0) tasks_cv_.SignalAll();
    });
  }

  // The sealed/failed records of a commit batch, durable before the queue commit. When they
  // cannot be written, no outcome is committed: every document goes back to the queue as a
  // retryable failure (its signature is dropped, never released).
  void AuditOutcomes(const std::vector<std::shared_ptr<Job>>& batch) {
    if (options_.audit == nullptr) return;
    Status written = options_.audit->Append(detail::OutcomeEntries(batch));
    if (!written.ok()) detail::RequeueUnaudited(batch, written);
  }

  // ---- End of the audit trail hooks. ----

  void OnSigned(JobPtr job) {
    bool spawn = false;
    {
      MutexLock lock(signed_mu_);
      signed_.push_back(std::move(job));
      if (drainers_ < max_drainers_) {
        ++drainers_;
        spawn = true;
      }
    }
    if (spawn) Spawn([this] { DrainSigned(); });
  }

  // Assembles (and publishes) signed documents a batch at a time until none are left.
  void DrainSigned() {
    while (true) {
      Jobs batch;
      {
        MutexLock lock(signed_mu_);
        if (signed_.empty()) {
          --drainers_;
          return;
        }
        std::size_t n = std::min(kAssembleChunkDocs, signed_.size());
        batch.assign(std::make_move_iterator(signed_.begin()),
                     std::make_move_iterator(signed_.begin() + static_cast<std::ptrdiff_t>(n)));
        signed_.erase(signed_.begin(), signed_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      for (const JobPtr& job : batch) Assemble(job);
      PublishSeals(batch);
      ToCommitter(batch);
    }
  }

  // Builds job->seal; on failure sets the job's error instead.
  void Assemble(const JobPtr& job) {
    Result<Bytes>& signature = job->signature;
    if (options_.metrics != nullptr && signature.ok()) {
      options_.metrics->ObserveSign(std::chrono::steady_clock::now() - job->sign_submitted);
    }
    if (!signature.ok()) {
      bool retryable = signature.status().code() != StatusCode::kInvalidArgument;
      Fail(job, signature.status().WithContext("signing"), retryable);
      return;
    }
    if (options_.audit != nullptr) job->signature_sha256 = Sha256Hex(*signature);
    if (job->profile->profile.timestamps != nullptr) {
      if (!TimestampReady(job)) return;
      job->tbs->signature_timestamp_token = std::move(*job->timestamp);
    }
    if (job->profile->profile.revocation != nullptr) {
      auto data = job->profile->profile.revocation->Current();
      if (!data.ok()) {
        WaitOrFail(job, data.status(), "revocation data");
        return;
      }
      job->tbs->validation_data = std::move(data).value();
    }
    Status s = detail::AssembleSeal(*job->profile->format, *job->tbs, *signature, job->content,
                                    {queue_, job->record.id, options_.seal_spool_min_bytes},
                                    &job->seal, &job->seal_file);
    if (!s.ok()) {
      Fail(job, s, IsRetryable(s.code()));
      return;
    }
    job->signature = Bytes();
    job->tbs.reset();
  }

  // B-T: whether the document's time-stamp token came; the format writes it into the seal as it
  // assembles (formats::ToBeSigned::signature_timestamp_token). No token: the document goes back
  // to the queue (the TSA may answer later), never sealed at B-B instead.
  bool TimestampReady(const JobPtr& job) {
    if (job->timestamp.ok()) return true;
    if (job->timestamp.status().code() == StatusCode::kInvalidArgument) {
      // Nothing a TSA could change (the imprint could not be made): final.
      Fail(job, job->timestamp.status().WithContext("time-stamp"), false);
      return false;
    }
    WaitOrFail(job, job->timestamp.status(), "time-stamp");
    return false;
  }

  // A document whose B-T token or B-LT revocation data is not to be had (detail::WaitOrFail).
  void WaitOrFail(const JobPtr& job, const Status& why, std::string_view what) {
    detail::Missing missing =
        detail::WaitOrFail(why, what,
                           std::chrono::duration_cast<std::chrono::milliseconds>(
                               clock_.Now() - job->record.created_at),
                           job->profile->profile.timestamp_wait);
    if (missing.undelivered) job->undelivered = true;
    Fail(job, std::move(missing.error), missing.retryable);
  }

  // Seals of watched-folder and broker documents go to their publishers, one PublishBatch per
  // publisher, before the committer marks them sealed (API seals stay in the queue).
  void PublishSeals(const Jobs& batch) {
    std::vector<std::pair<publish::Publisher*, Jobs>> groups;
    for (const JobPtr& job : batch) {
      if (!job->error.ok() || job->record.source == queue::Source::kApi) continue;
      publish::Publisher* publisher = publishers_ ? publishers_(job->record) : nullptr;
      if (publisher == nullptr) {
        Fail(job, FailedPreconditionError("no publisher for \"" + job->record.client + "\""), true);
        continue;
      }
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const auto& g) { return g.first == publisher; });
      if (it == groups.end()) it = groups.insert(groups.end(), {publisher, Jobs()});
      it->second.push_back(job);
    }
    for (auto& [publisher, jobs] : groups) {
      std::vector<publish::PublishItem> items;
      items.reserve(jobs.size());
      for (const JobPtr& job : jobs) {
        // The publisher sees the record as the queue will keep it: sealed by this format.
        job->record.seal_media_type = std::string(job->profile->format->media_type());
        items.push_back({&job->record, job->seal, job->seal_file.get()});
      }
      std::vector<Status> published = publisher->PublishBatch(items);
      for (std::size_t i = 0; i < jobs.size(); ++i) {
        Status s = i < published.size() ? published[i] : InternalError("publisher lost a result");
        if (s.ok()) continue;
        // A sink that is down (broker, disk) must not use up the document's attempts: sealing
        // worked, so it is retried until the seal is delivered. Only a refusal of this record
        // (kInvalidArgument) counts as an attempt.
        if (s.code() != StatusCode::kInvalidArgument) jobs[i]->undelivered = true;
        Fail(jobs[i], s.WithContext("publishing"), true);
      }
    }
  }

  const ProfileState* FindProfile(std::string_view name) const {
    for (const auto& p : profiles_) {
      if (p.profile.name == name) return &p;
    }
    return nullptr;
  }

  // Marks `job` failed (retryable or final); a final failure of a watched-folder document is
  // published here. Returns false so callers can `return Fail(...)`.
  bool Fail(const JobPtr& job, Status error, bool retryable) {
    job->error = std::move(error);
    job->retryable =
        retryable && (job->undelivered || job->record.attempts < options_.max_attempts);
    if (!job->error.ok()) {
      LogWarn("document not sealed", {{"id", job->record.id.ToString()},
                                      {"error", job->error.ToString()},
                                      {"final", !job->retryable}});
      if (!job->retryable && job->record.source != queue::Source::kApi) {
        // The failure reaches the folder (or broker) before the queue forgets the document.
        publish::Publisher* publisher = publishers_ ? publishers_(job->record) : nullptr;
        Status published = publisher != nullptr ? publisher->PublishFailure(job->record, job->error)
                                                : FailedPreconditionError("no publisher");
        if (!published.ok()) {
          LogError("failure not published; retrying later",
                   {{"id", job->record.id.ToString()}, {"error", published.ToString()}});
          job->retryable = true;
          job->undelivered = true;  // the queue must not finalise it unpublished
        }
      }
    }
    return false;
  }

  void ToCommitter(const Jobs& jobs) {
    if (jobs.empty()) return;
    MutexLock lock(mu_);
    if (committer_done_) return;  // Stopped: the records stay leased and are requeued on restart.
    commit_queue_.insert(commit_queue_.end(), jobs.begin(), jobs.end());
    commit_cv_.Signal();
  }

  void CommitterLoop() {
    while (true) {
      std::vector<std::shared_ptr<Job>> batch;
      {
        MutexLock lock(mu_);
        while (commit_queue_.empty() && !committer_done_) commit_cv_.Wait(mu_);
        if (commit_queue_.empty() && committer_done_) return;
        batch.assign(commit_queue_.begin(), commit_queue_.end());
        commit_queue_.clear();
      }
      Commit(batch);
    }
  }

  void Commit(const std::vector<std::shared_ptr<Job>>& batch) {
    AuditOutcomes(batch);
    std::vector<queue::Queue::Completion> completions;
    std::vector<queue::Queue::Failure> failures;
    for (const auto& job : batch) {
      if (job->error.ok()) {
        completions.push_back({job->record.id, std::move(job->seal),
                               std::string(job->profile->format->media_type()),
                               std::move(job->seal_file)});
      } else {
        failures.push_back({job->record.id, job->error, job->retryable, !job->undelivered});
      }
    }
    Status completed =
        completions.empty() ? Status::Ok() : queue_->Complete(std::move(completions));
    Status failed = failures.empty() ? Status::Ok() : queue_->Fail(std::move(failures));
    if (!completed.ok() || !failed.ok()) {
      // The queue is read-only now (sync failure): records stay leased and are requeued on restart.
      LogError("queue commit failed",
               {{"complete", completed.ToString()}, {"fail", failed.ToString()}});
    }
    std::vector<queue::DocumentId> finished;
    {
      MutexLock lock(mu_);
      stats_.commit_batches++;
      for (const auto& job : batch) {
        docs_in_flight_--;
        bytes_in_flight_ -= job->record.size;
        if (job->error.ok()) {
          if (completed.ok()) stats_.sealed++;
        } else if (job->retryable) {
          stats_.requeued++;
        } else {
          stats_.failed++;
        }
      }
      cv_.SignalAll();
    }
    if (options_.metrics != nullptr) {
      detail::CountOutcomes(batch, completed.ok(), failed.ok(), clock_.Now(), *options_.metrics);
    }
    if (listener_) {
      for (const auto& job : batch) {
        if ((job->error.ok() && completed.ok()) || (!job->error.ok() && failed.ok()))
          listener_(job->record.id);
      }
    }
  }

  const EngineOptions options_;
  queue::Queue* const queue_;
  hsm::Signer* const signer_;
  const std::vector<ProfileState> profiles_;
  const PublisherLookup publishers_;
  Clock& clock_;
  FinishedListener listener_;

  tbb::task_arena arena_;
  Mutex tasks_mu_;
  CondVar tasks_cv_;
  std::size_t tasks_outstanding_ QSEAL_GUARDED_BY(tasks_mu_) = 0;
  // Signed documents waiting for assembly, and the arena tasks draining them.
  Mutex signed_mu_;
  std::deque<JobPtr> signed_ QSEAL_GUARDED_BY(signed_mu_);
  int drainers_ QSEAL_GUARDED_BY(signed_mu_) = 0;
  const int max_drainers_ = std::max(1, arena_.max_concurrency());
  std::thread leaser_;
  std::thread committer_;

  mutable Mutex mu_;
  CondVar cv_;         // in-flight capacity freed, or stopping
  CondVar commit_cv_;  // work for the committer
  bool stopping_ QSEAL_GUARDED_BY(mu_) = false;
  bool stopped_ QSEAL_GUARDED_BY(mu_) = false;
  bool committer_done_ QSEAL_GUARDED_BY(mu_) = false;
  std::size_t docs_in_flight_ QSEAL_GUARDED_BY(mu_) = 0;
  std::uint64_t bytes_in_flight_ QSEAL_GUARDED_BY(mu_) = 0;
  std::deque<std::shared_ptr<Job>> commit_queue_ QSEAL_GUARDED_BY(mu_);
  EngineStats stats_ QSEAL_GUARDED_BY(mu_);
};

Result<std::unique_ptr<Engine>> Engine::Create(EngineOptions options, queue::Queue* queue,
                                               hsm::Signer* signer, std::vector<Profile> profiles,
                                               PublisherLookup publishers, Clock& clock) {
  QSEAL_ASSIGN_OR_RETURN(std::vector<ProfileState> states,
                         detail::MakeProfileStates(*signer, profiles));
  return std::unique_ptr<Engine>(new Engine(std::make_unique<Impl>(
      options, queue, signer, std::move(states), std::move(publishers), clock)));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
void Engine::SetFinishedListener(FinishedListener listener) {
  impl_->SetFinishedListener(std::move(listener));
}
Status Engine::Start() { return impl_->Start(); }
Status Engine::Stop() { return impl_->Stop(); }
EngineStats Engine::Stats() const { return impl_->Stats(); }
Result<std::string> Engine::SealName(const queue::Record& record,
                                     std::string_view document_name) const {
  return impl_->SealName(record, document_name);
}
std::vector<std::string> Engine::SealNames(std::string_view document_name) const {
  return impl_->SealNames(document_name);
}

}  // namespace qseal::engine
