#include "daemon/metrics_bridge.h"

#include <array>
#include <atomic>
#include <thread>

#include "audit/audit_log.h"
#include "common/mutex.h"
#include "engine/engine.h"
#include "hsm/signer.h"
#include "ingest/jetstream_source.h"
#include "ingest/kafka_source.h"
#include "ingest/watcher.h"
#include "publish/jetstream_publisher.h"
#include "publish/kafka_publisher.h"
#include "queue/queue.h"
#include "revocation/revocation_cache.h"
#include "tsa/tsa_client.h"

namespace qseal::daemon {
namespace {

using metrics::Labels;
using metrics::SnapshotWriter;

double D(std::uint64_t v) { return static_cast<double>(v); }

constexpr std::array<hsm::PartitionState, 5> kPartitionStates = {
    hsm::PartitionState::kStarting, hsm::PartitionState::kUp, hsm::PartitionState::kDown,
    hsm::PartitionState::kQuarantined, hsm::PartitionState::kDisabled};

enum Stage { kEngineStage = 0, kQueueStage = 1, kWatchStage = 2, kStages = 3 };
constexpr std::array<const char*, kStages> kStageNames = {"engine", "queue", "watch"};

}  // namespace

// Shared by the bridge and the sources registered on Metrics (which may outlive the bridge).
struct MetricsBridge::State {
  MetricsBridgeSources sources;
  std::vector<std::pair<std::string, double>> not_after;  // key -> seconds since the epoch
  std::vector<std::pair<std::string, double>> copies;     // key -> partitions holding it

  // Held while a source reads the components, and by Stop() to end that.
  Mutex mu;
  bool stopped QSEAL_GUARDED_BY(mu) = false;
  CondVar wake;
  std::thread sampler;

  std::array<std::atomic<bool>, kStages> throttled{};
  std::array<std::atomic<std::uint64_t>, kStages> throttled_ns{};

  // The stages' throttling right now.
  std::array<bool, kStages> Sample() const {
    std::array<bool, kStages> now{};
    if (sources.engine != nullptr) now[kEngineStage] = sources.engine->Stats().throttled;
    if (sources.queue != nullptr) now[kQueueStage] = sources.queue->Stats().saturated;
    for (const auto& w : sources.watches) {
      if (w.watcher != nullptr && w.watcher->Stats().paused) now[kWatchStage] = true;
    }
    return now;
  }

  void RunSampler() {
    auto last = std::chrono::steady_clock::now();
    MutexLock lock(mu);
    while (!stopped) {
      wake.WaitUntil(mu, last + sources.sample_interval);
      if (stopped) break;
      const auto now = std::chrono::steady_clock::now();
      const auto elapsed = static_cast<std::uint64_t>(std::chrono::nanoseconds(now - last).count());
      last = now;
      const std::array<bool, kStages> s = Sample();
      for (int i = 0; i < kStages; ++i) {
        // Time counts for the interval that ends throttled: exact to one interval.
        if (s[static_cast<std::size_t>(i)]) {
          throttled_ns[static_cast<std::size_t>(i)].fetch_add(elapsed, std::memory_order_relaxed);
        }
        throttled[static_cast<std::size_t>(i)].store(s[static_cast<std::size_t>(i)],
                                                     std::memory_order_relaxed);
      }
    }
  }

  void Fill(SnapshotWriter& w) {
    MutexLock lock(mu);
    if (stopped) return;
    if (sources.queue != nullptr) FillQueue(w, sources.queue->Stats());
    if (sources.engine != nullptr) FillEngine(w, sources.engine->Stats());
    if (sources.signer != nullptr) FillSigner(w, sources.signer->Stats());
    if (sources.audit != nullptr) FillAudit(w, *sources.audit);
    // Listed even without watched folders, so dashboards find the names.
    w.DeclareCounter("qseal_watch_files_claimed_total", "Files claimed from inbox/ and enqueued.");
    w.DeclareCounter("qseal_watch_files_failed_total", "Files moved to failed/.");
    w.DeclareGauge("qseal_watch_inbox_pending_files", "Files seen in inbox/ and not yet claimed.");
    w.DeclareGauge("qseal_watch_paused", "1 while claiming is stopped by backpressure.");
    for (std::size_t i = 0; i < sources.watches.size(); ++i) {
      const auto& watch = sources.watches[i];
      if (watch.watcher != nullptr) {
        FillWatch(w, {{"watch", std::to_string(i)}, {"profile", watch.profile}},
                  watch.watcher->Stats());
      }
    }
    for (const auto& js : sources.jetstreams) FillJetStream(w, js);
    for (const auto& k : sources.kafkas) FillKafka(w, k);
    // Listed without b-t profiles too, so the TSA alert's series exists on every node.
    w.DeclareGauge("qseal_tsa_breaker_open",
                   "The TSA's circuit breaker: 0 closed, 0.5 half-open (one probe), 1 open.");
    w.DeclareCounter("qseal_tsa_failures_total",
                     "Attempts that failed: transport, HTTP or a refused or invalid response.");
    w.DeclareCounter("qseal_tsa_requests_total", "Time-stamp requests sent to the TSA (attempts).");
    for (const auto& t : sources.timestamps) FillTimestamps(w, t);
    // Listed without b-lt profiles too, so the revocation alert's series exists on every node.
    w.DeclareGauge("qseal_revocation_current",
                   "1 while the key's chain has current revocation data (B-LT seals are made).");
    w.DeclareGauge("qseal_revocation_revoked",
                   "1 once a certificate of the key's chain was reported revoked.");
    for (const auto& r : sources.revocations) FillRevocation(w, r);
    for (const auto& [key, seconds] : not_after) {
      w.Gauge("qseal_hsm_certificate_not_after_seconds",
              "Not-after of the key's seal certificate, seconds since the epoch.", {{"key", key}},
              seconds);
    }
    for (const auto& [key, n] : copies) {
      w.Gauge("qseal_hsm_key_copies",
              "Partitions where the startup probe found the key and checked it (more than one: "
              "copies, e.g. backups on an HSM cluster).",
              {{"key", key}}, n);
    }
    for (std::size_t i = 0; i < kStages; ++i) {
      const Labels stage = {{"stage", kStageNames[i]}};
      w.Gauge("qseal_backpressure_throttled",
              "1 while the stage refuses or slows admission (engine: in-flight limit; queue: "
              "above the high watermark, the API answers 503; watch: claiming paused).",
              stage, throttled[i].load(std::memory_order_relaxed) ? 1 : 0);
      w.Counter("qseal_backpressure_throttled_seconds_total",
                "Time the stage spent throttled (sampled).", stage,
                static_cast<double>(throttled_ns[i].load(std::memory_order_relaxed)) * 1e-9);
    }
  }

  static void FillQueue(SnapshotWriter& w, const queue::QueueStats& s) {
    const char* help = "Documents in the queue by state (sealed and failed: still retained).";
    w.Gauge("qseal_queue_documents", help, {{"state", "queued"}}, D(s.queued));
    w.Gauge("qseal_queue_documents", help, {{"state", "leased"}}, D(s.leased));
    w.Gauge("qseal_queue_documents", help, {{"state", "sealed"}}, D(s.sealed));
    w.Gauge("qseal_queue_documents", help, {{"state", "failed"}}, D(s.failed));
    w.Gauge("qseal_queue_pending_bytes", "Bytes of queued and leased documents.", {},
            D(s.pending_bytes));
    w.Gauge("qseal_queue_oldest_queued_age_seconds",
            "Age of the oldest queued document (0 when none).", {},
            std::chrono::duration<double>(s.oldest_queued_age).count());
    w.Gauge("qseal_queue_saturated",
            "1 above the high watermark until below the low one (doors refuse with 503).", {},
            s.saturated ? 1 : 0);
    w.Gauge("qseal_queue_healthy", "0 when the queue refuses writes (I/O failure, corruption).", {},
            s.healthy ? 1 : 0);
    w.Counter("qseal_queue_commit_batches_total", "Synced group commits.", {},
              D(s.batches_committed));
    w.Counter("qseal_queue_committed_operations_total", "Operations in the synced group commits.",
              {}, D(s.operations_committed));
  }

  static void FillEngine(SnapshotWriter& w, const engine::EngineStats& s) {
    w.Gauge("qseal_engine_documents_in_flight", "Documents between lease and commit.", {},
            D(s.documents_in_flight));
    w.Gauge("qseal_engine_bytes_in_flight", "Document bytes between lease and commit.", {},
            D(s.bytes_in_flight));
    w.Counter("qseal_engine_leased_total", "Documents leased from the queue.", {}, D(s.leased));
    w.Counter("qseal_engine_commit_batches_total", "Engine commit batches.", {},
              D(s.commit_batches));
  }

  static void FillSigner(SnapshotWriter& w, const hsm::SignerStats& s) {
    w.Gauge("qseal_hsm_requests_queued", "Sign requests waiting for a session.", {}, D(s.queued));
    w.Gauge("qseal_hsm_requests_in_flight", "Sign requests handed to a session.", {},
            D(s.in_flight));
    const char* help = "Sign requests by outcome (rerouted: attempts retried on another session).";
    w.Counter("qseal_hsm_requests_total", help, {{"outcome", "succeeded"}}, D(s.succeeded));
    w.Counter("qseal_hsm_requests_total", help, {{"outcome", "failed"}}, D(s.failed));
    w.Counter("qseal_hsm_requests_total", help, {{"outcome", "rejected"}}, D(s.rejected));
    w.Counter("qseal_hsm_requests_total", help, {{"outcome", "rerouted"}}, D(s.rerouted));
    w.Counter("qseal_hsm_sign_batches_total", "Batches handed to sessions.", {}, D(s.batches));
    w.DeclareCounter("qseal_hsm_sign_errors_total", "PKCS#11 errors by CKR_* name.");
    for (const hsm::PartitionStats& p : s.partitions) {
      const Labels part = {{"partition", p.name}};
      w.Gauge("qseal_hsm_partition_up", "1 when the partition passed its self-test and signs.",
              part, p.state == hsm::PartitionState::kUp ? 1 : 0);
      for (hsm::PartitionState st : kPartitionStates) {
        w.Gauge("qseal_hsm_partition_state", "1 for the partition's current state.",
                {{"partition", p.name}, {"state", std::string(hsm::PartitionStateName(st))}},
                p.state == st ? 1 : 0);
      }
      const char* sessions_help = "Sessions of the partition by state.";
      w.Gauge("qseal_hsm_sessions", sessions_help, {{"partition", p.name}, {"state", "busy"}},
              p.sessions_busy);
      w.Gauge("qseal_hsm_sessions", sessions_help, {{"partition", p.name}, {"state", "idle"}},
              p.sessions_idle);
      w.Gauge("qseal_hsm_sessions", sessions_help, {{"partition", p.name}, {"state", "dead"}},
              p.sessions_dead);
      w.Gauge("qseal_hsm_partition_in_flight_requests",
              "Sign batches being executed on the partition (one per busy session).", part,
              p.sessions_busy);
      w.Counter("qseal_hsm_signatures_total", "Verified signatures returned by the partition.",
                part, D(p.signatures));
      for (const auto& [code, count] : p.errors) {
        w.Counter("qseal_hsm_sign_errors_total", "PKCS#11 errors by CKR_* name.",
                  {{"partition", p.name}, {"code", code}}, D(count));
      }
      w.Counter("qseal_hsm_module_reinits_total",
                "Module re-initialisations (C_Finalize + C_Initialize) caused by the partition.",
                part, D(p.reinits));
      w.Counter("qseal_hsm_session_reopens_total", "Sessions closed and reopened after errors.",
                part, D(p.session_reopens));
      w.Counter("qseal_hsm_verify_failures_total",
                "Signatures that failed verify-after-sign (the partition is quarantined).", part,
                D(p.verify_failures));
      w.Counter("qseal_hsm_sign_timeouts_total", "Sign calls past sign_timeout.", part,
                D(p.timeouts));
      const char* keepalive_help = "Keepalive calls on idle sessions (keepalive_interval).";
      w.Counter("qseal_hsm_session_keepalives_total", keepalive_help,
                {{"partition", p.name}, {"outcome", "ok"}}, D(p.keepalives - p.keepalive_failures));
      w.Counter("qseal_hsm_session_keepalives_total", keepalive_help,
                {{"partition", p.name}, {"outcome", "failed"}}, D(p.keepalive_failures));
      const char* recovered_help =
          "Sign attempts that failed and were recovered on the same partition without spending "
          "an attempt.";
      w.Counter("qseal_hsm_recovered_in_place_total", recovered_help,
                {{"partition", p.name}, {"reason", "stale_session"}}, D(p.stale_session_retries));
      w.Counter("qseal_hsm_recovered_in_place_total", recovered_help,
                {{"partition", p.name}, {"reason", "device_error"}}, D(p.device_error_retries));
    }
  }

  static void FillAudit(SnapshotWriter& w, const audit::AuditLog& log) {
    const audit::AuditStats s = log.Stats();
    w.Gauge("qseal_audit_healthy",
            "0 while audit records cannot be written (sealing pauses until they can).", {},
            log.Health().ok() ? 1 : 0);
    w.Counter("qseal_audit_records_total", "Audit records written and synced.", {}, D(s.records));
    w.Counter("qseal_audit_syncs_total", "Group commits (fdatasync) of the audit log.", {},
              D(s.syncs));
    w.Counter("qseal_audit_checkpoints_total", "Signed checkpoints written.", {}, D(s.checkpoints));
    w.Counter("qseal_audit_checkpoints_skipped_total",
              "Checkpoints left out because the HSM checkpoint key could not sign (tried again).",
              {}, D(s.checkpoints_skipped));
    w.Counter("qseal_audit_failures_total", "Audit appends refused or failed.", {}, D(s.failures));
    w.Gauge("qseal_audit_last_sequence", "Sequence number of the last durable audit record.", {},
            D(s.last_seq));
  }

  static void FillTimestamps(SnapshotWriter& w, const MetricsBridgeSources::Timestamps& t) {
    if (t.client == nullptr) return;
    w.Gauge("qseal_tsa_pending_requests",
            "Time-stamp requests accepted and not yet answered (queued, in flight, backing off).",
            {{"profile", t.profile}}, D(t.client->pending()));
    for (const tsa::TsaHealth& h : t.client->Health()) {
      const metrics::Labels l = {{"profile", t.profile}, {"tsa", h.name}};
      w.Counter("qseal_tsa_requests_total", "Time-stamp requests sent to the TSA (attempts).", l,
                D(h.requests));
      w.Counter("qseal_tsa_tokens_total", "Attempts that returned a verified token.", l,
                D(h.tokens));
      w.Counter("qseal_tsa_failures_total",
                "Attempts that failed: transport, HTTP or a refused or invalid response.", l,
                D(h.failures));
      w.Counter("qseal_tsa_request_seconds_total",
                "Seconds from sending an attempt to its verified token or failure, summed.", l,
                h.request_seconds_sum);
      const double open = h.state == tsa::BreakerState::kOpen       ? 1
                          : h.state == tsa::BreakerState::kHalfOpen ? 0.5
                                                                    : 0;
      w.Gauge("qseal_tsa_breaker_open",
              "The TSA's circuit breaker: 0 closed, 0.5 half-open (one probe), 1 open.", l, open);
      w.Gauge("qseal_tsa_connections", "Keep-alive connections open to the TSA.", l,
              D(h.open_connections));
      w.Gauge("qseal_tsa_queued", "Requests waiting for a connection or a rate token.", l,
              D(h.queued));
    }
  }

  static void FillRevocation(SnapshotWriter& w, const MetricsBridgeSources::Revocation& r) {
    if (r.cache == nullptr) return;
    const revocation::RevocationStats s = r.cache->Stats();
    const Labels l = {{"key", r.key}};
    w.Gauge("qseal_revocation_current",
            "1 while the key's chain has current revocation data (B-LT seals are made).", l,
            s.current ? 1 : 0);
    w.Gauge("qseal_revocation_revoked",
            "1 once a certificate of the key's chain was reported revoked.", l, s.revoked ? 1 : 0);
    w.Gauge("qseal_revocation_seconds_to_expiry",
            "Seconds until the first revocation status of the key's chain expires.", l,
            s.seconds_to_expiry);
    w.Counter("qseal_revocation_fetches_total", "OCSP or CRL requests answered and accepted.", l,
              D(s.fetches));
    w.Counter("qseal_revocation_fetch_errors_total",
              "OCSP or CRL requests that failed or whose answer was refused.", l,
              D(s.fetch_errors));
  }

  static void FillJetStream(SnapshotWriter& w, const MetricsBridgeSources::JetStream& js) {
    const ingest::JetStreamSourceStats s = js.source->Stats();
    const Labels l = {{"jetstream", js.source->name()}};
    w.Counter("qseal_jetstream_messages_fetched_total", "Messages fetched from the stream.", l,
              D(s.fetched));
    w.Counter("qseal_jetstream_documents_enqueued_total",
              "Messages durably enqueued as new documents (then acked).", l, D(s.enqueued));
    w.Counter("qseal_jetstream_duplicates_total",
              "Messages whose document was already queued (acked, not sealed again).", l,
              D(s.duplicates));
    w.Counter("qseal_jetstream_redeliveries_total", "Messages delivered more than once.", l,
              D(s.redelivered));
    w.Counter("qseal_jetstream_refused_total",
              "Messages refused for good (failure result published, acked).", l, D(s.rejected));
    w.Counter("qseal_jetstream_naks_total", "Messages handed back for a later redelivery.", l,
              D(s.naks));
    w.Counter("qseal_jetstream_errors_total", "Broker or queue errors of the source (retried).", l,
              D(s.errors));
    w.Gauge("qseal_jetstream_lag_messages",
            "Messages the consumer has not delivered yet (as of the last fetch).", l, D(s.lag));
    w.Gauge("qseal_jetstream_in_flight_messages", "Messages fetched and not yet acked.", l,
            D(s.in_flight));
    w.Gauge("qseal_jetstream_paused",
            "1 while fetching is stopped by the local queue's watermarks.", l, s.paused ? 1 : 0);
    w.Gauge("qseal_jetstream_connected", "1 while connected to a NATS server.", l,
            s.connected ? 1 : 0);
    if (js.results == nullptr) return;
    const publish::JetStreamPublisherStats r = js.results->Stats();
    w.Counter("qseal_jetstream_results_published_total", "Result messages acked by the broker.", l,
              D(r.published));
    w.Counter("qseal_jetstream_result_duplicates_total",
              "Results refused or dropped as repeats (the first result stands).", l,
              D(r.duplicates));
    w.Counter("qseal_jetstream_result_publish_errors_total",
              "Result publishes that failed (retried by the engine).", l, D(r.errors));
  }

  static void FillKafka(SnapshotWriter& w, const MetricsBridgeSources::Kafka& k) {
    const ingest::KafkaSourceStats s = k.source->Stats();
    const Labels l = {{"kafka", k.source->name()}};
    w.Counter("qseal_kafka_records_consumed_total", "Records consumed from the topics.", l,
              D(s.consumed));
    w.Counter("qseal_kafka_documents_enqueued_total",
              "Records durably enqueued as new documents (offsets committed after).", l,
              D(s.enqueued));
    w.Counter("qseal_kafka_duplicates_total",
              "Records consumed again whose document was already queued (not sealed again).", l,
              D(s.duplicates));
    w.Counter("qseal_kafka_refused_total", "Records refused for good (failure result published).",
              l, D(s.rejected));
    w.Counter("qseal_kafka_retried_total",
              "Records left in the topic for a later round (sought back).", l, D(s.retried));
    w.Counter("qseal_kafka_errors_total", "Consumer, commit or queue errors of the source.", l,
              D(s.errors));
    w.Gauge("qseal_kafka_lag_messages", "Records behind the ends of the assigned partitions.", l,
            D(s.lag));
    w.Gauge("qseal_kafka_in_flight_messages", "Records consumed and not yet committed.", l,
            D(s.in_flight));
    w.Gauge("qseal_kafka_assigned_partitions", "Partitions the group assigned to this node.", l,
            D(s.partitions));
    w.Gauge("qseal_kafka_paused", "1 while the partitions are paused by the local queue.", l,
            s.paused ? 1 : 0);
    if (k.results == nullptr) return;
    const publish::KafkaPublisherStats r = k.results->Stats();
    w.Counter("qseal_kafka_results_published_total", "Result records acked by the brokers.", l,
              D(r.published));
    w.Counter("qseal_kafka_result_publish_errors_total",
              "Result records not acked (retried by the engine).", l, D(r.errors));
  }

  static void FillWatch(SnapshotWriter& w, const Labels& labels, const ingest::WatcherStats& s) {
    w.Counter("qseal_watch_files_claimed_total", "Files claimed from inbox/ and enqueued.", labels,
              D(s.claimed));
    w.Counter("qseal_watch_files_failed_total", "Files moved to failed/.", labels, D(s.failed));
    w.Counter("qseal_watch_files_published_total", "Seals written to out/.", labels,
              D(s.published));
    w.Counter("qseal_watch_files_reconciled_total",
              "Files found in processing/ at start and enqueued again.", labels, D(s.reconciled));
    w.Gauge("qseal_watch_inbox_pending_files", "Files seen in inbox/ and not yet claimed.", labels,
            D(s.pending_in_inbox));
    w.Gauge("qseal_watch_paused", "1 while claiming is stopped by backpressure.", labels,
            s.paused ? 1 : 0);
  }
};

MetricsBridge::MetricsBridge(metrics::Metrics* metrics, MetricsBridgeSources sources)
    : state_(std::make_shared<State>()) {
  state_->sources = std::move(sources);
  if (state_->sources.signer != nullptr) {
    for (const std::string& key : state_->sources.keys) {
      Result<hsm::KeyInfo> info = state_->sources.signer->GetKey(key);
      if (!info.ok()) continue;
      const double seconds =
          std::chrono::duration<double>(info->not_after.time_since_epoch()).count();
      state_->not_after.emplace_back(key, seconds);
      double n = 0;
      for (const hsm::PartitionReport& r : state_->sources.signer->StartupReport()) {
        for (const hsm::KeyProtection& kp : r.keys) n += kp.key == key ? 1 : 0;
      }
      state_->copies.emplace_back(key, n);
    }
  }
  for (const std::string& profile : state_->sources.profiles) metrics->DeclareProfile(profile);
  metrics->AddSnapshotSource([state = state_](SnapshotWriter& w) { state->Fill(w); });
  if (state_->sources.process_metrics) metrics->AddSnapshotSource(metrics::ProcessMetricsSource());
  state_->sampler = std::thread([state = state_.get()] { state->RunSampler(); });
}

MetricsBridge::~MetricsBridge() { Stop(); }

void MetricsBridge::Stop() {
  {
    MutexLock lock(state_->mu);
    if (state_->stopped) return;
    state_->stopped = true;
    state_->wake.SignalAll();
  }
  if (state_->sampler.joinable()) state_->sampler.join();
}

}  // namespace qseal::daemon
