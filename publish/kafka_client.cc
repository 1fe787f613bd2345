#include "publish/kafka_client.h"

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/secret.h"

namespace qseal::publish {
namespace {

Status Set(rd_kafka_conf_t* conf, const std::string& name, const char* value) {
  char err[512] = {};
  if (rd_kafka_conf_set(conf, name.c_str(), value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    return InvalidArgumentError("kafka property " + name + ": " + err);
  }
  return Status::Ok();
}

Result<Secret> ReadPassword(const std::string& ref) {
  if (ref.rfind("file:", 0) == 0) return ReadSecretFile(ref.substr(5));
  if (ref.rfind("env:", 0) == 0) return ReadSecretEnv(ref.substr(4));
  return InvalidArgumentError("sasl_password_source must be \"file:/path\" or \"env:NAME\"");
}

// librdkafka's own log lines (connection trouble, authentication failures), at our levels.
void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  const LogLevel ours = level <= 3   ? LogLevel::kError
                        : level <= 5 ? LogLevel::kWarn
                                     : LogLevel::kDebug;
  Log(ours, "kafka", {{"client", rd_kafka_name(rk)}, {"facility", facility}, {"message", message}});
}

}  // namespace

Result<KafkaConfPtr> MakeKafkaConf(
    const KafkaClientOptions& options,
    const std::vector<std::pair<std::string, std::string>>& properties) {
  if (options.brokers.empty()) return InvalidArgumentError("kafka: no brokers");
  KafkaConfPtr conf(rd_kafka_conf_new());
  std::string brokers;
  for (const std::string& b : options.brokers) brokers += (brokers.empty() ? "" : ",") + b;
  QSEAL_RETURN_IF_ERROR(Set(conf.get(), "bootstrap.servers", brokers.c_str()));
  QSEAL_RETURN_IF_ERROR(Set(conf.get(), "client.id", options.client_id.c_str()));
  QSEAL_RETURN_IF_ERROR(Set(conf.get(), "security.protocol", options.security_protocol.c_str()));
  if (!options.ssl_ca_location.empty()) {
    QSEAL_RETURN_IF_ERROR(Set(conf.get(), "ssl.ca.location", options.ssl_ca_location.c_str()));
  }
  if (!options.sasl_mechanism.empty()) {
    QSEAL_RETURN_IF_ERROR(Set(conf.get(), "sasl.mechanism", options.sasl_mechanism.c_str()));
    QSEAL_RETURN_IF_ERROR(Set(conf.get(), "sasl.username", options.sasl_username.c_str()));
    QSEAL_ASSIGN_OR_RETURN(Secret password, ReadPassword(options.sasl_password_source));
    // rd_kafka_conf_set wants a NUL-terminated value: a locked copy with the terminator.
    std::string_view pw(password.data(), password.size());
    if (pw.find('\0') != std::string_view::npos) {
      return InvalidArgumentError("sasl password contains a NUL byte");
    }
    char buffer[Secret::kMaxBytes + 1] = {};
    pw.copy(buffer, pw.size());
    Status set = Set(conf.get(), "sasl.password", buffer);
    OPENSSL_cleanse(buffer, sizeof(buffer));
    QSEAL_RETURN_IF_ERROR(set);
  }
  for (const auto& [name, value] : properties) {
    QSEAL_RETURN_IF_ERROR(Set(conf.get(), name, value.c_str()));
  }
  rd_kafka_conf_set_log_cb(conf.get(), &OnLog);
  return conf;
}

Status KafkaError(std::string_view what, rd_kafka_resp_err_t err) {
  std::string msg =
      std::string(what) + ": " + rd_kafka_err2str(err) + " (" + rd_kafka_err2name(err) + ")";
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
      return InvalidArgumentError(msg);
    default:
      return UnavailableError(msg);
  }
}

}  // namespace qseal::publish
