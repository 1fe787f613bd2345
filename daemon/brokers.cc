#include "daemon/brokers.h"

namespace qseal::daemon {

Result<std::unique_ptr<Brokers>> Brokers::Create(const std::vector<JetStreamConfig>& jetstreams,
                                                 const std::vector<KafkaConfig>& kafkas,
                                                 std::uint64_t high_watermark,
                                                 queue::Queue* queue) {
  auto brokers = std::make_unique<Brokers>();
  for (const KafkaConfig& c : kafkas) {
    QSEAL_RETURN_IF_ERROR(
        brokers->AddKafka(c, high_watermark, queue).WithContext("kafka " + c.name));
  }
  for (const JetStreamConfig& c : jetstreams) {
    Entry e;
    publish::NatsConnectOptions co;
    co.servers = c.servers;
    co.token_source = c.token_source;
    co.credentials_file = c.credentials_file;
    co.name = "qseald " + c.name;
    Result<std::unique_ptr<publish::NatsConnection>> conn = publish::NatsConnection::Connect(co);
    if (!conn.ok()) return conn.status().WithContext("jetstream " + c.name);
    e.connection = std::move(*conn);
    publish::JetStreamPublisherOptions po;
    po.subject_prefix = c.result_subject;
    po.stream = c.result_stream;
    po.create_stream = c.create;
    po.duplicate_window =
        std::chrono::duration_cast<std::chrono::seconds>(c.result_duplicate_window);
    po.publish_timeout = c.publish_timeout;
    e.publisher = std::make_unique<publish::JetStreamPublisher>(po, e.connection.get());
    ingest::JetStreamSourceOptions so;
    so.name = c.name;
    so.stream = c.stream;
    so.subjects = c.subjects;
    so.consumer = c.consumer;
    so.create = c.create;
    so.default_profile = c.profile;
    so.profiles = c.profiles;
    so.fetch_batch = static_cast<int>(c.fetch_batch);
    so.local_high_watermark = high_watermark;
    so.fetch_wait = c.fetch_wait;
    so.max_ack_pending = c.max_ack_pending;
    so.ack_wait = c.ack_wait;
    e.source =
        std::make_unique<ingest::JetStreamSource>(so, queue, e.connection.get(), e.publisher.get());
    brokers->entries_.push_back(std::move(e));
  }
  return brokers;
}

Status Brokers::AddKafka(const KafkaConfig& c, std::uint64_t high_watermark, queue::Queue* queue) {
  publish::KafkaClientOptions client;
  client.brokers = c.brokers;
  client.security_protocol = c.security_protocol;
  client.ssl_ca_location = c.ssl_ca;
  client.sasl_mechanism = c.sasl_mechanism;
  client.sasl_username = c.sasl_username;
  client.sasl_password_source = c.sasl_password_source;
  client.client_id = "qseald " + c.name;
  publish::KafkaPublisherOptions po;
  po.client = client;
  po.topic = c.result_topic;
  po.publish_timeout = c.publish_timeout;
  KafkaEntry e;
  QSEAL_ASSIGN_OR_RETURN(e.publisher, publish::KafkaPublisher::Create(po));
  ingest::KafkaSourceOptions so;
  so.client = client;
  so.name = c.name;
  so.topics = c.topics;
  so.group = c.group;
  so.default_profile = c.profile;
  so.profiles = c.profiles;
  so.fetch_batch = static_cast<int>(c.fetch_batch);
  so.local_high_watermark = high_watermark;
  so.fetch_wait = c.fetch_wait;
  so.session_timeout = c.session_timeout;
  e.source = std::make_unique<ingest::KafkaSource>(so, queue, e.publisher.get());
  kafka_entries_.push_back(std::move(e));
  return Status::Ok();
}

Status Brokers::Start() {
  for (Entry& e : entries_) {
    QSEAL_RETURN_IF_ERROR(e.source->Start().WithContext("jetstream " + e.source->name()));
  }
  for (KafkaEntry& e : kafka_entries_) {
    QSEAL_RETURN_IF_ERROR(e.source->Start().WithContext("kafka " + e.source->name()));
  }
  return Status::Ok();
}

void Brokers::Stop() {
  for (Entry& e : entries_) e.source->Stop();
  for (KafkaEntry& e : kafka_entries_) e.source->Stop();
}

publish::Publisher* Brokers::PublisherFor(const queue::Record& record) const {
  for (const Entry& e : entries_) {
    if (e.source->client() == record.client) return e.publisher.get();
  }
  for (const KafkaEntry& e : kafka_entries_) {
    if (e.source->client() == record.client) return e.publisher.get();
  }
  return nullptr;
}

}  // namespace qseal::daemon
