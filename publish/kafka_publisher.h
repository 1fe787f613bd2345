// KafkaPublisher: the result sink of Kafka documents (ingest/kafka_source.h). For each sealed or
// finally failed document it produces one result record to the result topic and returns OK only
// once the brokers acknowledged it (acks=all through the idempotent producer), so the engine marks
// the document final in the queue only after its result is durable at the brokers
// (publish/publisher.h: publisher first, then the queue commit).
//
// A result record: key = the document's idempotency key (the source message's identity, so a
// compacted result topic keeps one result per source message and all results of one source
// message land in one partition, in order); value = the seal bytes (sealed) or empty (failed);
// headers as publish/result_headers.h (the same names as JetStream results).
//
// Duplicates. The idempotent producer (enable.idempotence) makes the brokers drop the producer's
// own retries, so a retried send never yields a second record. What it cannot cover, unlike the
// JetStream sink's expected-last-sequence check: a node killed after the brokers acked a result
// but before the queue recorded it seals that document again after its restart and produces a
// second result (same key, same Qseal-Document-Id, a different but equally valid seal); and a
// consumer-group rebalance that hands a partition over before the source committed an enqueued
// message makes another node seal it too. Consumers of the result topic keep the first result per
// key (docs/scale-out.md, "Kafka").
//
// Thread-safety: thread-safe (the engine publishes from several threads). A poller thread serves
// librdkafka's delivery reports.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "common/mutex.h"
#include "common/status.h"
#include "publish/kafka_client.h"
#include "publish/publisher.h"
#include "queue/queue.h"

namespace qseal::publish {

struct KafkaPublisherOptions {
  KafkaClientOptions client;
  // The result topic. Required. It must exist (or the brokers create it on first use).
  std::string topic;
  // How long one publish (or a batch) waits for the brokers' acks before it fails with
  // kUnavailable (librdkafka's delivery.timeout.ms). Default: 10 s.
  std::chrono::milliseconds publish_timeout{10'000};
};

// A snapshot of the publisher's counters. Thread-compatible value type.
struct KafkaPublisherStats {
  std::uint64_t published = 0;  // result records acked by the brokers
  std::uint64_t errors = 0;     // results not acked (the engine retries them)
};

class KafkaPublisher : public Publisher {
 public:
  // Builds the idempotent producer (no I/O yet: librdkafka connects in the background).
  // kInvalidArgument for bad options or a configuration librdkafka refuses.
  static Result<std::unique_ptr<KafkaPublisher>> Create(KafkaPublisherOptions options);
  ~KafkaPublisher() override;  // Waits up to publish_timeout for records still in flight.
  KafkaPublisher(const KafkaPublisher&) = delete;
  KafkaPublisher& operator=(const KafkaPublisher&) = delete;

  // Publisher. kInvalidArgument for a record without idempotency key or seal media type;
  // kUnavailable when the brokers did not ack in time (the engine retries).
  Status Publish(const queue::Record& record, ByteSpan seal) override;
  Status PublishFailure(const queue::Record& record, const Status& error) override;
  // Every result of the batch is in flight at once; one publish_timeout for all of them.
  std::vector<Status> PublishBatch(std::span<const PublishItem> items) override;

  KafkaPublisherStats Stats() const;

 private:
  struct Batch;
  explicit KafkaPublisher(KafkaPublisherOptions options);
  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  // Produces one result record for item `index` of `batch` (which counts it as pending).
  Status Produce(const queue::Record& record, ByteSpan body, std::string_view content_type,
                 const Status* error, const std::shared_ptr<Batch>& batch, std::size_t index);
  std::vector<Status> Wait(const std::shared_ptr<Batch>& batch);
  // Replaces a producer that hit a fatal error (the idempotent producer's sequence broke).
  Status EnsureProducer();

  const KafkaPublisherOptions options_;
  Mutex mu_;
  std::shared_ptr<rd_kafka_t> producer_ QSEAL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::thread poller_;
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> errors_{0};
};

}  // namespace qseal::publish
