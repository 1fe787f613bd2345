#include "daemon/config.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <stdlib.h>

namespace qseal::daemon {
namespace {

constexpr const char* kMinimal = R"(
[[partition]]
name = "p1"
module = "/usr/lib/softhsm/libsofthsm2.so"
token = "t1"
pin_source = "env:PIN"

[[key]]
name = "seal"
uri = "pkcs11:object=seal;type=private"
certificate_chain = "/tmp/chain.pem"
partitions = ["p1"]

[[profile]]
name = "default"
key = "seal"

[[client]]
name = "c"
token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
profiles = ["default"]
)";

TEST(ConfigTest, DefaultsApplyWhenKeysAreOmitted) {
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(kMinimal, "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(c->server.listen, "127.0.0.1:8440");
  EXPECT_EQ(c->metrics.listen, "127.0.0.1:9464");
  EXPECT_EQ(c->server.max_body_bytes, 256ull << 20);
  EXPECT_EQ(c->partitions.at(0).sessions, 4u);
  EXPECT_EQ(c->profiles.at(0).format, "cades-detached");
  EXPECT_EQ(c->profiles.at(0).digest, DigestAlgorithm::kSha256);
  EXPECT_EQ(c->profiles.at(0).scheme, SignatureScheme::kEcdsa);
}

TEST(ConfigTest, ShippedConfigIsValid) {
  std::vector<std::string> errors;
  Result<Config> c = LoadConfig(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->partitions.size(), 2u);
  ASSERT_EQ(c->profiles.size(), 4u);
  EXPECT_EQ(c->profiles[1].format, "cades-enveloping");
  EXPECT_EQ(c->profiles[2].name, "invoice-xades");
  EXPECT_EQ(c->profiles[2].format, "xades-enveloped");
  EXPECT_EQ(c->profiles[2].c14n, "exc-c14n");
  EXPECT_EQ(c->profiles[3].name, "pdf-pades");
  EXPECT_EQ(c->profiles[3].format, "pades");
  EXPECT_EQ(c->watches.size(), 1u);
  EXPECT_TRUE(c->jetstreams.empty()) << "the embedded default stays broker-free";
  EXPECT_TRUE(c->kafkas.empty()) << "the embedded default stays broker-free";
}

TEST(ConfigTest, XadesProfileTakesC14nAndRefusesAnUnknownOne) {
  std::vector<std::string> errors;
  std::string text = kMinimal;
  text.replace(
      text.find("name = \"default\"\nkey = \"seal\""), 29,
      "name = \"default\"\nkey = \"seal\"\nformat = \"xades-detached\"\nc14n = \"c14n11\"");
  Result<Config> c = ParseConfig(text, "x.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(c->profiles.at(0).format, "xades-detached");
  EXPECT_EQ(c->profiles.at(0).c14n, "c14n11");
  EXPECT_EQ(ParseConfig(kMinimal, "x.toml", &errors)->profiles.at(0).c14n, "exc-c14n");

  text.replace(text.find("c14n = \"c14n11\""), 15, "c14n = \"c14n10\"");
  errors.clear();
  c = ParseConfig(text, "x.toml", &errors);
  ASSERT_FALSE(c.ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(".c14n: expected exc-c14n or c14n11, got \"c14n10\""), std::string::npos)
      << errors[0];
}

TEST(ConfigTest, ReportsWrongTypeAndUnknownKeyWithPathAndLine) {
  std::string text =
      std::string(kMinimal) + "\n[server]\nmax_connections = \"many\"\nlisten_bakclog = 3\n";
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(text, "bad.toml", &errors);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("server.max_connections: expected an integer, got a string"),
            std::string::npos)
      << errors[0];
  std::size_t line = 1;
  for (std::size_t i = 0; i < text.find("max_connections"); ++i) line += text[i] == '\n' ? 1 : 0;
  EXPECT_EQ(errors[0].rfind("bad.toml:" + std::to_string(line) + ": ", 0), 0u) << errors[0];
  EXPECT_NE(errors[1].find("server.listen_bakclog: unknown key"), std::string::npos) << errors[1];
}

TEST(ConfigTest, ReportsBrokenReferencesAndPolicy) {
  std::string text = R"(
[[partition]]
name = "p1"
module = "/m.so"
pin_source = "1234"

[[key]]
name = "seal"
uri = "object=seal"
certificate_chain = "/c.pem"
partitions = ["p9"]

[[profile]]
name = "x"
key = "nokey"
digest = "sha1"

[[watch]]
root = "/w"
profile = "nope"
)";
  std::vector<std::string> errors;
  ASSERT_FALSE(ParseConfig(text, "t.toml", &errors).ok());
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_NE(all.find("profile[0].digest: expected sha256, sha384 or sha512, got \"sha1\""),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("set token (label) or serial"), std::string::npos) << all;
  EXPECT_NE(all.find("never the PIN itself"), std::string::npos) << all;
  EXPECT_NE(all.find("RFC 7512"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown partition \"p9\""), std::string::npos) << all;
  EXPECT_NE(all.find("unknown key \"nokey\""), std::string::npos) << all;
  EXPECT_NE(all.find("unknown profile \"nope\""), std::string::npos) << all;
}

TEST(ConfigTest, ExpandsEnvironmentAndParsesUnits) {
  setenv("QSEAL_TEST_DIR", "/srv/q", 1);
  unsetenv("QSEAL_TEST_UNSET");
  std::string text = std::string(kMinimal) +
                     "\n[queue]\npath = \"${QSEAL_TEST_DIR}/queue\"\nretention = \"2h\"\n"
                     "high_watermark_bytes = \"2GiB\"\nlow_watermark_bytes = \"1GiB\"\n"
                     "min_free_bytes = \"128MiB\"\n"
                     "[metrics]\nlisten = \"${QSEAL_TEST_UNSET:-127.0.0.1:1}\"\n";
  Result<Config> c = ParseConfig(text, "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->queue.path, "/srv/q/queue");
  EXPECT_EQ(c->queue.retention, std::chrono::hours(2));
  EXPECT_EQ(c->queue.high_watermark_bytes, 2ull << 30);
  EXPECT_EQ(c->queue.min_free_bytes, 128ull << 20);
  EXPECT_EQ(c->metrics.listen, "127.0.0.1:1");
}

// Found by config_fuzzer: a size or duration too large for 64 bits threw std::out_of_range out of
// ParseConfig; now it is a config error naming the key, and so is one that overflows its unit.
TEST(ConfigTest, NumbersTooLargeForSixtyFourBitsAreErrorsNotExceptions) {
  for (const char* line : {"max_body_bytes = \"123456789012345678901234567890\"\n",
                           "max_body_bytes = \"18446744073709551615KiB\"\n",
                           "header_timeout = \"99999999999999999999999s\"\n",
                           "header_timeout = \"9223372036854775807d\"\n"}) {
    SCOPED_TRACE(line);
    std::vector<std::string> errors;
    Result<Config> c = ParseConfig(std::string(kMinimal) + "[server]\n" + line, "t.toml", &errors);
    ASSERT_FALSE(c.ok());
    ASSERT_FALSE(errors.empty());
    EXPECT_NE(errors[0].find("server."), std::string::npos) << errors[0];
  }
}

TEST(ConfigTest, SyntaxErrorNamesTheLine) {
  std::vector<std::string> errors;
  ASSERT_FALSE(ParseConfig("a = \n", "s.toml", &errors).ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("s.toml:1:", 0), 0u) << errors[0];
}

TEST(ConfigTest, AuditSectionParsesAndRefusesAnHsmCheckpointKey) {
  Result<Config> defaults = ParseConfig(kMinimal, "t.toml");
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->audit.enabled);
  EXPECT_EQ(defaults->audit.dir, "var/audit");
  EXPECT_EQ(defaults->audit.checkpoint_key, "file:var/pki/audit-checkpoint.pem");
  std::string text = std::string(kMinimal) +
                     "[audit]\nenabled = false\ndir = \"/a\"\nsegment_bytes = \"1MiB\"\n"
                     "segment_age = \"1h\"\ncheckpoint_records = 7\ncheckpoint_interval = \"5s\"\n"
                     "checkpoint_key = \"file:/k.pem\"\ncreate_checkpoint_key = false\n";
  Result<Config> c = ParseConfig(text, "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->audit.enabled);
  EXPECT_EQ(c->audit.dir, "/a");
  EXPECT_EQ(c->audit.segment_bytes, 1u << 20);
  EXPECT_EQ(c->audit.segment_age, std::chrono::hours(1));
  EXPECT_EQ(c->audit.checkpoint_records, 7u);
  EXPECT_EQ(c->audit.checkpoint_interval, std::chrono::seconds(5));
  EXPECT_EQ(c->audit.checkpoint_key, "file:/k.pem");
  EXPECT_FALSE(c->audit.create_checkpoint_key);
  std::vector<std::string> errors;
  EXPECT_FALSE(ParseConfig(std::string(kMinimal) +
                               "[audit]\ncheckpoint_key = \"pkcs11:object=audit\"\nbogus = 1\n",
                           "t.toml", &errors)
                   .ok());
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("audit.bogus"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("audit.checkpoint_key"), std::string::npos) << errors[1];
  // The checkpoint key in the HSM: a [[key]] by name.
  errors.clear();
  c = ParseConfig(std::string(kMinimal) + "[audit]\ncheckpoint_key = \"key:seal\"\n", "t.toml",
                  &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(c->audit.checkpoint_key, "key:seal");
  errors.clear();
  EXPECT_FALSE(ParseConfig(std::string(kMinimal) + "[audit]\ncheckpoint_key = \"key:nope\"\n",
                           "t.toml", &errors)
                   .ok());
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("audit.checkpoint_key: unknown key \"nope\""), std::string::npos)
      << errors[0];
}

TEST(ConfigTest, HungCallTimeoutDefaultsToSixtySecondsAndMustCoverSignTimeout) {
  Result<Config> defaults = ParseConfig(kMinimal, "t.toml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->hsm.hung_call_timeout, std::chrono::seconds(60));
  Result<Config> c =
      ParseConfig(std::string(kMinimal) + "[hsm]\nhung_call_timeout = \"15s\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hsm.hung_call_timeout, std::chrono::seconds(15));
  std::vector<std::string> errors;
  EXPECT_FALSE(ParseConfig(std::string(kMinimal) +
                               "[hsm]\nsign_timeout = \"10s\"\nhung_call_timeout = \"5s\"\n",
                           "t.toml", &errors)
                   .ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("hsm.hung_call_timeout"), std::string::npos) << errors[0];
}

TEST(ConfigTest, JetStreamSectionParsesWithDefaults) {
  std::string text = std::string(kMinimal) + R"(
[[jetstream]]
name = "invoices"
servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
token_source = "file:/run/secrets/nats-token"
stream = "DOCS"
subjects = ["docs.>"]
profile = "default"
ack_wait = "30s"
)";
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(text, "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  ASSERT_EQ(c->jetstreams.size(), 1u);
  const JetStreamConfig& j = c->jetstreams[0];
  EXPECT_EQ(j.servers.size(), 2u);
  EXPECT_EQ(j.consumer, "qseald");
  EXPECT_TRUE(j.create);
  EXPECT_EQ(j.fetch_batch, 64u);
  EXPECT_EQ(j.max_ack_pending, 1024u);
  EXPECT_EQ(j.ack_wait, std::chrono::seconds(30));
  EXPECT_EQ(j.result_subject, "qseal.results");
  EXPECT_EQ(j.result_stream, "QSEAL_RESULTS");
  EXPECT_EQ(j.result_duplicate_window, std::chrono::minutes(2));
}

TEST(ConfigTest, JetStreamSectionRefusesInlineSecretsShortAckWaitAndOverlaps) {
  std::string text = std::string(kMinimal) + R"(
[[jetstream]]
name = "a"
servers = []
token_source = "s3cret"
stream = "DOCS"
subjects = ["qseal.results.x"]
profile = "nope"
profiles = ["gone"]
fetch_batch = 100
max_ack_pending = 10
ack_wait = "1s"
colour = "blue"

[[jetstream]]
name = "a"
servers = ["nats://127.0.0.1:4222"]
stream = "D2"
profile = "default"
)";
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(text, "t.toml", &errors);
  ASSERT_FALSE(c.ok());
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  for (const char* want :
       {"jetstream[0].colour: unknown key", "\"a\".servers: at least one server",
        "\"a\".token_source: must be", "\"a\".profile: unknown profile \"nope\"",
        "\"a\".profiles: unknown profile \"gone\"", "\"a\".ack_wait: must be at least 5s",
        "\"a\".max_ack_pending: must be >= fetch_batch",
        "\"qseal.results.x\" overlaps result_subject", "\"a\".subjects: required when create",
        "jetstream \"a\" is defined twice"}) {
    EXPECT_NE(all.find(want), std::string::npos) << want << "\nin:\n" << all;
  }
}

TEST(ConfigTest, KafkaSectionParsesWithDefaults) {
  std::string text = std::string(kMinimal) + R"(
[[kafka]]
name = "invoices"
brokers = ["10.0.0.1:9093", "10.0.0.2:9093"]
security_protocol = "sasl_ssl"
ssl_ca = "/etc/qseal/kafka-ca.pem"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "qseal"
sasl_password_source = "file:/run/secrets/kafka-password"
topics = ["invoices.in"]
profile = "default"
)";
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(text, "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  ASSERT_EQ(c->kafkas.size(), 1u);
  const KafkaConfig& k = c->kafkas[0];
  EXPECT_EQ(k.brokers.size(), 2u);
  EXPECT_EQ(k.group, "qseald");
  EXPECT_EQ(k.fetch_batch, 64u);
  EXPECT_EQ(k.result_topic, "qseal.results");
  EXPECT_EQ(k.session_timeout, std::chrono::seconds(45));
  EXPECT_EQ(k.publish_timeout, std::chrono::seconds(10));
  EXPECT_EQ(k.sasl_password_source, "file:/run/secrets/kafka-password");
}

TEST(ConfigTest, KafkaSectionRefusesInlinePasswordsHalfSaslAndTheResultTopicAsInput) {
  std::string text = std::string(kMinimal) + R"(
[[kafka]]
name = "a"
brokers = []
security_protocol = "sasl_plaintext"
sasl_mechanism = "GSSAPI"
sasl_password_source = "hunter2"
topics = ["qseal.results"]
profile = "nope"
profiles = ["gone"]
session_timeout = "100ms"
colour = "blue"

[[kafka]]
name = "a"
brokers = ["127.0.0.1:9092"]
security_protocol = "tls"
sasl_mechanism = "PLAIN"
topics = []
profile = "default"
)";
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(text, "t.toml", &errors);
  ASSERT_FALSE(c.ok());
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  for (const char* want :
       {"kafka[0].colour: unknown key", "\"a\".brokers: at least one broker",
        "\"a\".sasl_password_source: must be", "\"a\".profile: unknown profile \"nope\"",
        "\"a\".profiles: unknown profile \"gone\"", "\"a\".sasl_mechanism: expected PLAIN",
        "sasl_plaintext needs sasl_mechanism, sasl_username and sasl_password_source",
        "\"qseal.results\" is the result_topic", "\"a\".session_timeout: at least 1s",
        "\"a\".security_protocol: expected plaintext", "\"a\".topics: at least one topic",
        "\"a\".sasl_mechanism: only with security_protocol", "kafka \"a\" is defined twice"}) {
    EXPECT_NE(all.find(want), std::string::npos) << want << "\nin:\n" << all;
  }
}

TEST(ConfigTest, CscSectionIsOffByDefaultAndBoundsMaxHashes) {
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(kMinimal, "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->csc.enabled);
  EXPECT_EQ(c->csc.max_hashes, 1000u);
  EXPECT_EQ(c->csc.name, "qseal");

  c = ParseConfig(std::string(kMinimal) +
                      "[csc]\nenabled = true\nmax_hashes = 5000\nname = \"Bank\"\nregion = "
                      "\"DE\"\n",
                  "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  EXPECT_TRUE(c->csc.enabled);
  EXPECT_EQ(c->csc.max_hashes, 5000u);
  EXPECT_EQ(c->csc.region, "DE");

  for (const char* bad : {"max_hashes = 0", "max_hashes = 100001", "signatureQualifier = \"x\""}) {
    errors.clear();
    c = ParseConfig(std::string(kMinimal) + "[csc]\n" + bad + "\n", "t.toml", &errors);
    EXPECT_FALSE(c.ok()) << bad;
    ASSERT_FALSE(errors.empty()) << bad;
    EXPECT_NE(errors[0].find("csc"), std::string::npos) << errors[0];
  }
}

// signHash grants name keys ("csc:KEY", "csc:*"); "csc:" profile names are the CSC API's own.
TEST(ConfigTest, CscGrantsNameKeysAndCscProfileNamesAreReserved) {
  std::vector<std::string> errors;
  std::string text = kMinimal;
  const std::string grant = "profiles = [\"default\"]";
  text.replace(text.find(grant), grant.size(), "profiles = [\"default\", \"csc:seal\", \"csc:*\"]");
  Result<Config> c = ParseConfig(text, "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);

  text = kMinimal;
  text.replace(text.find(grant), grant.size(), "profiles = [\"csc:nope\"]");
  text += "\n[[profile]]\nname = \"csc:seal:sha256:ecdsa\"\nkey = \"seal\"\n";
  errors.clear();
  c = ParseConfig(text, "t.toml", &errors);
  ASSERT_FALSE(c.ok());
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_NE(all.find("\"csc:nope\" names an unknown key"), std::string::npos) << all;
  EXPECT_NE(all.find("\"csc:seal:sha256:ecdsa\": names starting with \"csc:\" are reserved"),
            std::string::npos)
      << all;
}

// The commented block of conf/qseald.toml that starts with the line `marker`, uncommented ("# "
// dropped; it ends at the first empty line).
std::string ShippedBlock(const std::string& marker) {
  std::ifstream in(std::string(QSEAL_SOURCE_DIR) + "/conf/qseald.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string shipped = ss.str();
  const std::size_t begin = shipped.find("\n" + marker + "\n");
  EXPECT_NE(begin, std::string::npos) << marker;
  if (begin == std::string::npos) return "";
  const std::size_t end = shipped.find("\n\n", begin + 1);
  std::istringstream block(shipped.substr(begin + 1, end - begin - 1));
  std::string section;
  for (std::string line; std::getline(block, line);) {
    EXPECT_EQ(line.rfind("#", 0), 0u) << line;
    section += (line.size() > 1 ? line.substr(2) : "") + "\n";
  }
  return section;
}

// The commented [[kafka]] example of conf/qseald.toml, uncommented, is valid.
TEST(ConfigTest, ShippedKafkaExampleParsesOnceUncommented) {
  const std::string section = ShippedBlock("# [[kafka]]");
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(std::string(kMinimal) + section, "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]) << section;
  ASSERT_EQ(c->kafkas.size(), 1u);
  EXPECT_EQ(c->kafkas[0].topics, std::vector<std::string>{"qseal.docs"});
}

// The commented [[tsa]] example of conf/qseald.toml (with its b-t and b-lt profiles and
// [revocation]), uncommented, is valid.
TEST(ConfigTest, ShippedTsaExampleParsesOnceUncommented) {
  const std::string section = ShippedBlock("# [[tsa]]");
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(std::string(kMinimal) + section, "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]) << section;
  ASSERT_EQ(c->tsas.size(), 1u);
  ASSERT_GE(c->profiles.size(), 2u);
  const ProfileConfig& bt = c->profiles[c->profiles.size() - 2];
  EXPECT_EQ(bt.level, "b-t");
  EXPECT_EQ(bt.tsa, std::vector<std::string>{"tsa-a"});
  EXPECT_EQ(c->profiles.back().level, "b-lt");
  EXPECT_EQ(c->revocation.max_response_bytes, 4u << 20);
}

// The commented [csc] block of conf/qseald.toml, uncommented, is a valid section.
TEST(ConfigTest, ShippedCscExampleParsesOnceUncommented) {
  const std::string section = ShippedBlock("# [csc]");
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(std::string(kMinimal) + section, "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << section;
  EXPECT_FALSE(c->csc.enabled);
  EXPECT_EQ(c->csc.max_hashes, 1000u);
}

TEST(ConfigTest, BtProfilesNameKnownTsasAndAreCadesDetachedOnly) {
  const std::string tsa =
      "[[tsa]]\nname = \"a\"\nurl = \"http://127.0.0.1:3180/tsr\"\nca = \"/tmp/tsa-ca.pem\"\n"
      "rate = 200\ntimeout = \"2s\"\n[tsa_client]\nmax_attempts = 4\nbreaker_cooldown = \"10s\"\n";
  auto profile = [](const std::string& body) {
    return "[[profile]]\nname = \"t\"\nkey = \"seal\"\n" + body;
  };
  std::vector<std::string> errors;
  Result<Config> c =
      ParseConfig(std::string(kMinimal) + tsa +
                      profile("level = \"b-t\"\ntsa = [\"a\"]\ntimestamp_wait = \"10m\"\n"),
                  "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  ASSERT_EQ(c->tsas.size(), 1u);
  EXPECT_EQ(c->tsas[0].url, "http://127.0.0.1:3180/tsr");
  EXPECT_EQ(c->tsas[0].rate_per_second, 200);
  EXPECT_EQ(c->tsas[0].timeout, std::chrono::seconds(2));
  EXPECT_EQ(c->tsa_client.max_attempts, 4);
  EXPECT_EQ(c->tsa_client.breaker_cooldown, std::chrono::seconds(10));
  EXPECT_EQ(c->profiles.back().level, "b-t");
  EXPECT_EQ(c->profiles.back().timestamp_wait, std::chrono::minutes(10));
  EXPECT_EQ(c->profiles.front().level, "b-b");

  for (auto [body, expected] : std::vector<std::pair<std::string, std::string>>{
           {"level = \"b-t\"\n", "a b-t profile names at least one [[tsa]]"},
           {"level = \"b-t\"\ntsa = [\"nope\"]\n", "unknown tsa \"nope\""},
           {"level = \"b-lt\"\n", "a b-lt profile names at least one [[tsa]]"},
           {"level = \"t\"\n", "expected b-b, b-t or b-lt"},
           {"tsa = [\"a\"]\n", "only a b-t or b-lt profile asks a TSA"}}) {
    errors.clear();
    c = ParseConfig(std::string(kMinimal) + tsa + profile(body), "t.toml", &errors);
    EXPECT_FALSE(c.ok()) << body;
    ASSERT_FALSE(errors.empty()) << body;
    EXPECT_NE(errors[0].find(expected), std::string::npos) << errors[0];
  }
  // b-lt: a CAdES profile with a TSA; [revocation] tunes its cache and is bounded.
  errors.clear();
  c = ParseConfig(std::string(kMinimal) + tsa +
                      "[revocation]\nfetch_timeout = \"3s\"\nretry_interval = \"5s\"\n"
                      "max_age = \"30m\"\n" +
                      profile("level = \"b-lt\"\ntsa = [\"a\"]\nformat = \"cades-enveloping\"\n"),
                  "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(c->profiles.back().level, "b-lt");
  EXPECT_EQ(c->revocation.fetch_timeout, std::chrono::seconds(3));
  EXPECT_EQ(c->revocation.retry_interval, std::chrono::seconds(5));
  EXPECT_EQ(c->revocation.max_age, std::chrono::minutes(30));
  for (const std::string format : {"xades-detached", "pades"}) {
    errors.clear();
    c = ParseConfig(std::string(kMinimal) + tsa +
                        profile("level = \"b-lt\"\ntsa = [\"a\"]\nformat = \"" + format + "\"\n"),
                    "t.toml", &errors);
    ASSERT_TRUE(c.ok()) << format << ": " << c.status() << (errors.empty() ? "" : errors[0]);
    EXPECT_EQ(c->profiles.back().level, "b-lt");
  }
  errors.clear();
  c = ParseConfig(std::string(kMinimal) + "[revocation]\nfetch_timeout = \"10ms\"\n", "t.toml",
                  &errors);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("revocation.fetch_timeout: between 100ms and 5m"), std::string::npos)
      << errors[0];
  errors.clear();
  c = ParseConfig(std::string(kMinimal) +
                      "[[tsa]]\nname = \"s\"\nurl = \"https://tsa.example/\"\nca = \"/x.pem\"\n",
                  "t.toml", &errors);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("tls_ca: required"), std::string::npos) << errors[0];
}

TEST(ConfigTest, MetricsTlsKeysParseAndPlaintextBeyondLoopbackIsRefused) {
  std::vector<std::string> errors;
  Result<Config> c = ParseConfig(std::string(kMinimal) +
                                     "[metrics]\nlisten = \"0.0.0.0:9464\"\n"
                                     "tls_certificate = \"/c.pem\"\ntls_key = \"/k.pem\"\n"
                                     "client_ca = \"/ca.pem\"\nrequire_client_certificate = true\n",
                                 "t.toml", &errors);
  ASSERT_TRUE(c.ok()) << c.status() << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(c->metrics.tls_certificate, "/c.pem");
  EXPECT_TRUE(c->metrics.require_client_certificate);
  for (auto [body, expected] : std::vector<std::pair<std::string, std::string>>{
           {"listen = \"0.0.0.0:9464\"\n", "not loopback and no TLS"},
           {"tls_certificate = \"/c.pem\"\n", "both tls_certificate and tls_key"},
           {"client_ca = \"/ca.pem\"\n", "client certificates need TLS"},
           {"require_client_certificate = true\n", "needs client_ca"}}) {
    errors.clear();
    c = ParseConfig(std::string(kMinimal) + "[metrics]\n" + body, "t.toml", &errors);
    EXPECT_FALSE(c.ok()) << body;
    ASSERT_FALSE(errors.empty()) << body;
    EXPECT_NE(errors[0].find(expected), std::string::npos) << errors[0];
  }
  errors.clear();
  c = ParseConfig(
      std::string(kMinimal) + "[metrics]\nlisten = \"0.0.0.0:9464\"\nallow_plaintext = true\n",
      "t.toml", &errors);
  EXPECT_TRUE(c.ok()) << (errors.empty() ? "" : errors[0]);
}

TEST(ConfigTest, PartitionKeepaliveAndDeviceErrorRetries) {
  Result<Config> defaults = ParseConfig(kMinimal, "t.toml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->partitions.at(0).keepalive_interval, std::chrono::milliseconds(0));
  EXPECT_EQ(defaults->partitions.at(0).device_error_retries, 0u);
  std::string text = kMinimal;
  text.insert(text.find("pin_source"), "keepalive_interval = \"5m\"\ndevice_error_retries = 3\n");
  Result<Config> c = ParseConfig(text, "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->partitions.at(0).keepalive_interval, std::chrono::minutes(5));
  EXPECT_EQ(c->partitions.at(0).device_error_retries, 3u);
  std::string bad = kMinimal;
  bad.insert(bad.find("pin_source"), "device_error_retries = 11\n");
  std::vector<std::string> errors;
  EXPECT_FALSE(ParseConfig(bad, "t.toml", &errors).ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("device_error_retries"), std::string::npos) << errors[0];
}

TEST(ConfigTest, CommitLingerIsOffByDefaultAndBounded) {
  Result<Config> defaults = ParseConfig(kMinimal, "t.toml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->queue.commit_linger, std::chrono::milliseconds(0));
  Result<Config> c =
      ParseConfig(std::string(kMinimal) + "[queue]\ncommit_linger = \"2ms\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->queue.commit_linger, std::chrono::milliseconds(2));
  std::vector<std::string> errors;
  EXPECT_FALSE(
      ParseConfig(std::string(kMinimal) + "[queue]\ncommit_linger = \"1s\"\n", "t.toml", &errors)
          .ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("queue.commit_linger: at most 50ms"), std::string::npos) << errors[0];
}

bool HasError(const std::vector<std::string>& errors, const std::string& part) {
  for (const auto& e : errors) {
    if (e.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(ConfigTest, TlsKeysParseAndPlaintextBeyondLoopbackIsRefused) {
  std::vector<std::string> errors;
  Result<Config> tls =
      ParseConfig(std::string(kMinimal) +
                      "\n[server]\nlisten = \"0.0.0.0:8440\"\n"
                      "tls_certificate = \"/c.pem\"\ntls_key = \"/k.pem\"\n"
                      "client_ca = \"/ca.pem\"\nrequire_client_certificate = true\n"
                      "\n[[client]]\nname = \"m\"\nprofiles = [\"default\"]\n"
                      "certificate_subject = \"CN=m\"\n"
                      "certificate_spki_sha256 = \"" +
                      std::string(64, 'a') + "\"\n",
                  "tls.toml", &errors);
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->server.tls_certificate, "/c.pem");
  EXPECT_EQ(tls->server.tls_key, "/k.pem");
  EXPECT_EQ(tls->server.client_ca, "/ca.pem");
  EXPECT_TRUE(tls->server.require_client_certificate);
  EXPECT_EQ(tls->clients.at(1).certificate_subject, "CN=m");

  for (const char* host : {"0.0.0.0", "10.1.2.3", "[::]"}) {
    errors.clear();
    std::string text = std::string(kMinimal) + "\n[server]\nlisten = \"" + host + ":8440\"\n";
    EXPECT_FALSE(ParseConfig(text, "plain.toml", &errors).ok()) << host;
    EXPECT_TRUE(HasError(errors, "is not loopback and no TLS")) << host;
    errors.clear();
    EXPECT_TRUE(ParseConfig(text + "allow_plaintext = true\n", "plain.toml", &errors).ok()) << host;
  }
  for (const char* host : {"127.0.0.1", "127.8.9.1", "[::1]", "localhost"}) {
    errors.clear();
    std::string text = std::string(kMinimal) + "\n[server]\nlisten = \"" + host + ":8440\"\n";
    EXPECT_TRUE(ParseConfig(text, "loop.toml", &errors).ok()) << host;
  }

  errors.clear();
  EXPECT_FALSE(ParseConfig(std::string(kMinimal) +
                               "\n[server]\ntls_certificate = \"/c.pem\"\n"
                               "require_client_certificate = true\n"
                               "\n[[client]]\nname = \"m\"\nprofiles = [\"default\"]\n"
                               "certificate_subject = \"CN=m\"\n\n[[client]]\nname = \"n\"\n"
                               "profiles = [\"default\"]\ncertificate_spki_sha256 = \"xyz\"\n",
                           "bad.toml", &errors)
                   .ok());
  EXPECT_TRUE(HasError(errors, "set both tls_certificate and tls_key"));
  EXPECT_TRUE(HasError(errors, "require_client_certificate: needs client_ca"));
  EXPECT_TRUE(HasError(errors, "a certificate identity needs server.client_ca"));
  EXPECT_TRUE(HasError(errors, "certificate_spki_sha256: expected 64 hex digits"));
  errors.clear();
  EXPECT_FALSE(ParseConfig(std::string(kMinimal) +
                               "\n[[client]]\nname = \"none\"\nprofiles = [\"default\"]\n",
                           "none.toml", &errors)
                   .ok());
  EXPECT_TRUE(HasError(errors, "\"none\": set token_sha256 or token_sha256_file"));
}

TEST(ConfigTest, WatchOwnerIsAUserNameOrAUid) {
  auto parse = [](const std::string& owner, std::vector<std::string>* errors) {
    return ParseConfig(
        std::string(kMinimal) + "[[watch]]\nroot = \"/tmp/w\"\nprofile = \"default\"\n" + owner,
        "t.toml", errors);
  };
  std::vector<std::string> errors;
  Result<Config> none = parse("", &errors);
  ASSERT_TRUE(none.ok()) << (errors.empty() ? "" : errors[0]);
  EXPECT_FALSE(none->watches.at(0).owner_uid.has_value());
  for (const char* owner : {"owner = \"root\"\n", "owner = 0\n", "owner = \"0\"\n"}) {
    errors.clear();
    Result<Config> c = parse(owner, &errors);
    ASSERT_TRUE(c.ok()) << owner << (errors.empty() ? "" : errors[0]);
    EXPECT_EQ(c->watches.at(0).owner_uid, std::optional<std::uint32_t>(0)) << owner;
  }
  errors.clear();
  Result<Config> numeric = parse("owner = 4242\n", &errors);
  ASSERT_TRUE(numeric.ok());
  EXPECT_EQ(numeric->watches.at(0).owner_uid, std::optional<std::uint32_t>(4242));
  errors.clear();
  EXPECT_FALSE(parse("owner = \"no-such-user-qseal\"\n", &errors).ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("watch[0].owner: no such user \"no-such-user-qseal\""),
            std::string::npos)
      << errors[0];
  errors.clear();
  EXPECT_FALSE(parse("owner = -1\n", &errors).ok());
  EXPECT_FALSE(parse("owner = true\n", &errors).ok());
}

TEST(ConfigTest, SplitHostPort) {
  std::string host;
  std::uint16_t port = 0;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:8440", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8440);
  ASSERT_TRUE(SplitHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_FALSE(SplitHostPort("localhost", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort("h:99999", &host, &port).ok());
}

}  // namespace
}  // namespace qseal::daemon
