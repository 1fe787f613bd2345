// MetricsBridge: the snapshot metrics of a running qseald, read from the components' Stats() at
// scrape time. The only place that knows both metrics/ and the components' types (metrics/ sits
// below them, DESIGN.md §4).
//
// Exports (all gauges unless named _total):
//   queue:    qseal_queue_documents{state=queued|leased|sealed|failed}, qseal_queue_pending_bytes,
//             qseal_queue_oldest_queued_age_seconds, qseal_queue_saturated (watermark state 0/1),
//             qseal_queue_healthy, qseal_queue_commit_batches_total,
//             qseal_queue_committed_operations_total
//   engine:   qseal_engine_documents_in_flight, qseal_engine_bytes_in_flight,
//             qseal_engine_leased_total, qseal_engine_commit_batches_total
//   hsm:      qseal_hsm_requests_queued, qseal_hsm_requests_in_flight,
//             qseal_hsm_requests_total{outcome=succeeded|failed|rejected|rerouted},
//             qseal_hsm_sign_batches_total, and per partition: qseal_hsm_partition_up,
//             qseal_hsm_partition_state{state} (1 for the current state),
//             qseal_hsm_sessions{state=busy|idle|dead}, qseal_hsm_partition_in_flight_requests
//             (sessions holding a batch), qseal_hsm_signatures_total,
//             qseal_hsm_sign_errors_total{code=CKR_*}, qseal_hsm_module_reinits_total,
//             qseal_hsm_session_reopens_total, qseal_hsm_verify_failures_total,
//             qseal_hsm_sign_timeouts_total, qseal_hsm_session_keepalives_total{outcome},
//             qseal_hsm_recovered_in_place_total{reason}; per key
//             qseal_hsm_certificate_not_after_seconds{key}, qseal_hsm_key_copies{key}
//   watch:    per watched folder (label watch = its index, and its profile; never the path):
//             qseal_watch_files_claimed_total, qseal_watch_files_failed_total,
//             qseal_watch_files_published_total, qseal_watch_files_reconciled_total,
//             qseal_watch_inbox_pending_files, qseal_watch_paused
//   jetstream: per [[jetstream]] section (label jetstream = its name):
//             qseal_jetstream_messages_fetched_total, qseal_jetstream_documents_enqueued_total,
//             qseal_jetstream_duplicates_total, qseal_jetstream_redeliveries_total,
//             qseal_jetstream_refused_total, qseal_jetstream_naks_total,
//             qseal_jetstream_errors_total, qseal_jetstream_lag_messages (not yet delivered by
//             the consumer, as of the last fetch), qseal_jetstream_in_flight_messages (fetched,
//             not yet acked), qseal_jetstream_paused, qseal_jetstream_connected,
//             qseal_jetstream_results_published_total, qseal_jetstream_result_duplicates_total,
//             qseal_jetstream_result_publish_errors_total
//   kafka:    per [[kafka]] section (label kafka = its name): qseal_kafka_records_consumed_total,
//             qseal_kafka_documents_enqueued_total, qseal_kafka_duplicates_total (consumed
//             again, already queued), qseal_kafka_refused_total, qseal_kafka_retried_total
//             (left in the topic for a later round), qseal_kafka_errors_total,
//             qseal_kafka_lag_messages (behind the assigned partitions' ends),
//             qseal_kafka_in_flight_messages, qseal_kafka_assigned_partitions, qseal_kafka_paused,
//             qseal_kafka_results_published_total, qseal_kafka_result_publish_errors_total
//   tsa:      per b-t profile's time-stamp client and TSA (labels profile, tsa = the [[tsa]]
//             name): qseal_tsa_requests_total (attempts sent), qseal_tsa_tokens_total (verified
//             tokens), qseal_tsa_failures_total, qseal_tsa_request_seconds_total (over attempts),
//             qseal_tsa_breaker_open (0 closed, 0.5 half-open, 1 open), qseal_tsa_connections,
//             qseal_tsa_queued; per profile qseal_tsa_pending_requests
//   revocation: per key of a b-lt profile (label key): qseal_revocation_current (1 while its
//             chain's revocation data is current: B-LT documents are sealed),
//             qseal_revocation_revoked (1 once a certificate of the chain was reported revoked),
//             qseal_revocation_seconds_to_expiry, qseal_revocation_fetches_total,
//             qseal_revocation_fetch_errors_total
//   backpressure: qseal_backpressure_throttled{stage=engine|queue|watch} (0/1) and
//             qseal_backpressure_throttled_seconds_total{stage}, accumulated by a sampler thread
//             (default every 100 ms, so the time is exact to about one interval).
//   audit:    qseal_audit_healthy (0 while records cannot be written: sealing is paused),
//             qseal_audit_records_total, qseal_audit_syncs_total, qseal_audit_checkpoints_total,
//             qseal_audit_failures_total, qseal_audit_last_sequence
//   process:  metrics::ProcessMetricsSource().
//
// Lifetime: the components must outlive the bridge or Stop(); after Stop() the snapshot sources
// write nothing, so a late scrape never touches a destroyed component.
// Thread-safe: scrapes may run on any thread while the sampler runs.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace qseal::queue {
class Queue;
}
namespace qseal::hsm {
class Signer;
}
namespace qseal::engine {
class Engine;
}
namespace qseal::ingest {
class FolderWatcher;
class JetStreamSource;
class KafkaSource;
}  // namespace qseal::ingest
namespace qseal::publish {
class JetStreamPublisher;
class KafkaPublisher;
}  // namespace qseal::publish
namespace qseal::audit {
class AuditLog;
}
namespace qseal::tsa {
class TsaClient;
}
namespace qseal::revocation {
class RevocationCache;
}

namespace qseal::daemon {

struct MetricsBridgeSources {
  const queue::Queue* queue = nullptr;     // optional
  const hsm::Signer* signer = nullptr;     // optional
  const engine::Engine* engine = nullptr;  // optional
  const audit::AuditLog* audit = nullptr;  // optional (the audit trail may be disabled)
  struct Watch {
    std::string profile;
    const ingest::FolderWatcher* watcher = nullptr;
  };
  std::vector<Watch> watches;
  struct JetStream {
    const ingest::JetStreamSource* source = nullptr;
    const publish::JetStreamPublisher* results = nullptr;
  };
  std::vector<JetStream> jetstreams;
  struct Kafka {
    const ingest::KafkaSource* source = nullptr;
    const publish::KafkaPublisher* results = nullptr;
  };
  std::vector<Kafka> kafkas;
  struct Timestamps {
    std::string profile;
    const tsa::TsaClient* client = nullptr;
  };
  std::vector<Timestamps> timestamps;
  struct Revocation {
    std::string key;
    const revocation::RevocationCache* cache = nullptr;
  };
  std::vector<Revocation> revocations;
  // Key names whose certificate not-after is exported (read once, at construction).
  std::vector<std::string> keys;
  // Profiles whose accepted/sealed series start at 0 (Metrics::DeclareProfile).
  std::vector<std::string> profiles;
  // Also export the /proc process metrics. Default: true.
  bool process_metrics = true;
  // Sampling period of the backpressure time. Default: 100 ms.
  std::chrono::milliseconds sample_interval{100};
};

class MetricsBridge {
 public:
  // Registers the snapshot sources on `metrics` (which must outlive the bridge) and starts the
  // sampler thread.
  MetricsBridge(metrics::Metrics* metrics, MetricsBridgeSources sources);
  ~MetricsBridge();  // Stop()s.
  MetricsBridge(const MetricsBridge&) = delete;
  MetricsBridge& operator=(const MetricsBridge&) = delete;

  // Joins the sampler; from now on the registered sources write nothing. Idempotent.
  void Stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace qseal::daemon
