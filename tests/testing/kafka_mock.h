// librdkafka's mock cluster for the Kafka tests (no Kafka broker is packaged for Debian): a
// cluster of mock brokers hosted in the test process, listening on loopback ports, that speaks the
// Kafka protocol to any client, qseald processes included (consumer groups, offset commits, the
// idempotent producer). Plus the few client calls the tests need: produce a record, read a whole
// topic, read a group's committed offsets.
//
// Test-only; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "publish/kafka_client.h"

struct rd_kafka_mock_cluster_s;

namespace qseal::testing {

struct KafkaRecord {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

class KafkaMock {
 public:
  // A cluster of `brokers` mock brokers. The topics a test uses are created with CreateTopic.
  static Result<std::unique_ptr<KafkaMock>> Start(int brokers = 3);
  ~KafkaMock();
  KafkaMock(const KafkaMock&) = delete;
  KafkaMock& operator=(const KafkaMock&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  std::string bootstraps() const;
  Status CreateTopic(const std::string& topic, int partitions);
  // Takes every broker down or brings them back (connections refused meanwhile).
  void SetBrokersUp(bool up);

  // Produces one record and waits for its ack; returns its offset. `partition` -1: the
  // partitioner's choice (by key when given, else spread).
  Result<std::int64_t> Produce(const std::string& topic, const std::string& value,
                               const std::map<std::string, std::string>& headers = {},
                               std::int32_t partition = -1);
  // Every record of `topic`, read from the beginning of each partition to its end now.
  Result<std::vector<KafkaRecord>> ReadTopic(const std::string& topic);
  // Records in `topic` now (the sum of its partitions' high watermarks; cheap).
  Result<std::int64_t> Records(const std::string& topic);
  // The sum over `topic`'s partitions of `group`'s committed offsets (0 for none committed).
  Result<std::int64_t> CommittedTotal(const std::string& group, const std::string& topic);

 private:
  KafkaMock() = default;
  Result<int> Partitions(const std::string& topic);

  int brokers_ = 0;
  publish::KafkaHandlePtr host_;  // hosts the cluster
  rd_kafka_mock_cluster_s* cluster_ = nullptr;
  std::string bootstraps_;
  publish::KafkaHandlePtr producer_;
};

}  // namespace qseal::testing
