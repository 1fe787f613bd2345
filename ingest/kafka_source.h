// KafkaSource: a door in from Kafka (docs/scale-out.md, "Kafka"). Several qseald nodes share the
// document topics through one consumer group: the group hands each partition to one node at a
// time, and each node keeps its own RocksDB queue as its durable buffer.
//
// One record is one document: the value is the document's bytes; headers (all optional)
//   Qseal-Profile          the sealing profile (else the source's default_profile)
//   Qseal-Filename         the original file name (else "<topic>-<partition>-<offset>")
//   Qseal-Media-Type       e.g. application/pdf
//   Qseal-Idempotency-Key  the document's identity; else "<topic>/<partition>/<offset>"
// The record key is not used (producers key by customer or region to spread partitions).
// The local idempotency key is that identity, scoped by the source's client name
// ("kafka:<name>"), so a record consumed again (after a crash before the offset commit, or a
// rebalance) maps to the document already queued and is not sealed twice by this node.
//
// Offsets. Auto-commit is off: after each poll round the source enqueues the round's records in
// one synced group commit and only then commits, per partition, the offset after the last record
// that is durably enqueued (or refused for good, with its failure result published). A record
// that could not be enqueued for now (queue saturated, I/O error) stops its partition there: the
// offset is committed up to it and the consumer seeks back to it, so it is consumed again later.
//
// Flow control. While the local queue does not admit (Queue::Admit) the source pauses its
// partitions and keeps polling (so the group does not think it dead); the backlog stays in the
// topic, where the other nodes of the group can take it. A round takes at most fetch_batch records
// and no more than the headroom below local_high_watermark.
//
// Broker outages are librdkafka's to retry (it reconnects in the background); nothing is lost
// meanwhile: uncommitted records stay in the topic, enqueued documents in the queue.
//
// Thread-safety: thread-safe; Start/Stop/Stats from any thread; one consuming thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "publish/kafka_client.h"
#include "publish/kafka_publisher.h"
#include "queue/queue.h"

namespace qseal::ingest {

struct KafkaSourceOptions {
  publish::KafkaClientOptions client;
  // Names this source in logs and metrics; the records' client is "kafka:<name>". Required.
  std::string name;
  // The topics of documents. Required.
  std::vector<std::string> topics;
  // The consumer group every node shares. Default: "qseald".
  std::string group = "qseald";
  // The profile of records without Qseal-Profile. Required.
  std::string default_profile;
  // The profiles a record may ask for (Qseal-Profile); empty: only default_profile.
  std::vector<std::string> profiles;
  // Records per round (one group commit, one offset commit). Default: 64.
  int fetch_batch = 64;
  // The local queue's high watermark in documents (see JetStreamSourceOptions). 0: Admit alone.
  std::uint64_t local_high_watermark = 0;
  // How long the group waits for a silent node before it hands its partitions to the others
  // (session.timeout.ms). Default: 45 s.
  std::chrono::milliseconds session_timeout{45'000};
  // How long a round waits for its first record. Default: 1 s.
  std::chrono::milliseconds fetch_wait{1000};
  // Pause between admission checks while the queue is saturated, and after a record could not
  // be enqueued. Default: 250 ms.
  std::chrono::milliseconds retry_interval{250};
};

// A snapshot of the source's counters. Thread-compatible value type.
struct KafkaSourceStats {
  std::uint64_t consumed = 0;    // records received
  std::uint64_t enqueued = 0;    // new documents durably enqueued (offsets committed after)
  std::uint64_t duplicates = 0;  // records whose document was already queued (consumed again)
  std::uint64_t rejected = 0;    // refused for good (failure result published)
  std::uint64_t retried = 0;     // records left in the topic for a later round (seek back)
  std::uint64_t errors = 0;      // consumer, commit or queue errors
  std::uint64_t lag = 0;         // records behind the partitions' ends (last rounds' view)
  std::uint64_t in_flight = 0;   // consumed, not yet enqueued and committed
  std::uint64_t partitions = 0;  // partitions assigned to this node
  bool paused = false;           // partitions paused: the local queue is above its watermarks
};

class KafkaSource {
 public:
  // `queue` and `results` (for refusals) must outlive the source. Does no I/O.
  KafkaSource(KafkaSourceOptions options, queue::Queue* queue, publish::KafkaPublisher* results);
  ~KafkaSource();  // Stop()s.
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // Creates the consumer, subscribes and starts the consuming thread. kInvalidArgument for bad
  // options or a configuration librdkafka refuses. Non-blocking.
  Status Start();
  // Stops consuming, leaves the group (its partitions go to the other nodes at once) and joins
  // the thread. Records consumed but not yet committed are consumed again. Idempotent.
  void Stop();

  const std::string& name() const { return options_.name; }
  std::string client() const { return "kafka:" + options_.name; }
  KafkaSourceStats Stats() const;

 private:
  class Impl;
  KafkaSourceOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qseal::ingest
