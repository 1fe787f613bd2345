// Brokers: the daemon's broker doors and sinks: per [[jetstream]] section a NATS connection, the
// JetStream result publisher (publish/jetstream_publisher.h) and the source
// (ingest/jetstream_source.h); per [[kafka]] section the Kafka result publisher
// (publish/kafka_publisher.h) and the source (ingest/kafka_source.h). The embedded default has
// none: nothing is created and nothing connects.
//
// Order (daemon/daemon.cc): Create before the engine (which publishes through PublisherFor),
// Start after the engine, Stop with the other doors, destroy after the engine.
//
// Thread-safety: Create/Start/Stop from the daemon's thread; PublisherFor and Stats from any.
#pragma once

#include <memory>
#include <vector>

#include "common/status.h"
#include "daemon/config.h"
#include "ingest/jetstream_source.h"
#include "ingest/kafka_source.h"
#include "publish/jetstream_publisher.h"
#include "publish/kafka_publisher.h"
#include "publish/nats_connection.h"
#include "queue/queue.h"

namespace qseal::daemon {

class Brokers {
 public:
  // Connects (in the background when no server answers yet) and builds every source and
  // publisher. kInvalidArgument when a credential reference cannot be read. `queue` must outlive.
  // `high_watermark` is the queue's, in documents (a fetch never brings the queue above it).
  static Result<std::unique_ptr<Brokers>> Create(const std::vector<JetStreamConfig>& jetstreams,
                                                 const std::vector<KafkaConfig>& kafkas,
                                                 std::uint64_t high_watermark, queue::Queue* queue);
  Status Start();
  void Stop();  // Stops the sources (idempotent); the publishers stay usable for the engine.

  // The publisher for a broker record (by its client, "jetstream:<name>" or "kafka:<name>");
  // nullptr if none.
  publish::Publisher* PublisherFor(const queue::Record& record) const;

  struct Entry {
    std::unique_ptr<publish::NatsConnection> connection;
    std::unique_ptr<publish::JetStreamPublisher> publisher;
    std::unique_ptr<ingest::JetStreamSource> source;
  };
  struct KafkaEntry {
    std::unique_ptr<publish::KafkaPublisher> publisher;
    std::unique_ptr<ingest::KafkaSource> source;
  };
  const std::vector<Entry>& entries() const { return entries_; }
  const std::vector<KafkaEntry>& kafka_entries() const { return kafka_entries_; }

 private:
  Status AddKafka(const KafkaConfig& c, std::uint64_t high_watermark, queue::Queue* queue);

  std::vector<Entry> entries_;
  std::vector<KafkaEntry> kafka_entries_;
};

}  // namespace qseal::daemon
