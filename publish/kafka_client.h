// Kafka client plumbing shared by the Kafka source (ingest/kafka_source.h) and the Kafka result
// sink (publish/kafka_publisher.h): the connection settings of one [[kafka]] section turned into
// a librdkafka configuration, and the one place where librdkafka errors become a Status.
//
// The librdkafka C types appear here on purpose, as the NATS ones do in nats_connection.h: the
// source and the sink are thin layers over the client. Nothing outside ingest/kafka_source.* and
// publish/kafka_* includes it.
//
// Credentials come by reference only: the SASL password is read from a file that only its owner
// may read ("file:/path") or from the environment ("env:NAME", then removed from it), into a
// locked Secret (common/secret.h). librdkafka keeps its own copy of the password in its
// configuration for re-authentication; that copy is the client's, not ours to wipe.
//
// Thread-safety: the functions are thread-safe; the handles they return are librdkafka's
// (thread-safe, as librdkafka documents).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "common/status.h"

namespace qseal::publish {

struct KafkaClientOptions {
  // Bootstrap servers ("host:port"). Required.
  std::vector<std::string> brokers;
  // librdkafka's security.protocol: plaintext, ssl, sasl_plaintext or sasl_ssl. Default: plaintext.
  std::string security_protocol = "plaintext";
  // The CA bundle that checks the brokers' certificates (ssl, sasl_ssl). Empty: the system's.
  std::string ssl_ca_location;
  // SASL (sasl_plaintext, sasl_ssl): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, the user and the
  // password by reference ("file:/path" or "env:NAME").
  std::string sasl_mechanism;
  std::string sasl_username;
  std::string sasl_password_source;
  // client.id, shown in the brokers' logs and quotas. Default: "qseald".
  std::string client_id = "qseald";
};

struct KafkaConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaConfPtr = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;
using KafkaHandlePtr = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;

// A configuration with the connection settings of `options` and then `properties` (librdkafka
// names, e.g. {"group.id", "qseald"}); librdkafka's log lines go to our log. kInvalidArgument
// naming the property librdkafka refused, or when the password reference cannot be read.
Result<KafkaConfPtr> MakeKafkaConf(
    const KafkaClientOptions& options,
    const std::vector<std::pair<std::string, std::string>>& properties);

// A Status for librdkafka error `err` while doing `what`: kInvalidArgument for errors of the
// request itself (message too large, invalid argument), kUnavailable for the rest (broker down,
// timeouts, leadership changes: worth another try).
Status KafkaError(std::string_view what, rd_kafka_resp_err_t err);

}  // namespace qseal::publish
