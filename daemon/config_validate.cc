#include "daemon/config_validate.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "common/secret.h"
#include "formats/format.h"
#include "ingest/api_server.h"

namespace qseal::daemon {
namespace {

bool HexOk(const std::string& s) {
  for (char ch : s) {
    if (std::isxdigit(static_cast<unsigned char>(ch)) == 0) return false;
  }
  return true;
}

void CheckUnique(const std::vector<std::string>& names, const char* what, const std::string& origin,
                 std::vector<std::string>* errors) {
  std::set<std::string> seen;
  for (const auto& n : names) {
    if (n.empty()) continue;
    if (!seen.insert(n).second)
      errors->push_back(origin + ": " + what + " \"" + n + "\" is defined twice");
  }
}

}  // namespace

void ValidateConfig(const Config& c, const std::string& origin, std::vector<std::string>* errors) {
  auto err = [&](const std::string& m) { errors->push_back(origin + ": " + m); };
  std::string host;
  std::uint16_t port = 0;
  if (!SplitHostPort(c.server.listen, &host, &port).ok()) {
    err("server.listen: expected host:port, got \"" + c.server.listen + "\"");
  } else if (c.server.tls_certificate.empty() && !IsLoopbackHost(host) &&
             !c.server.allow_plaintext) {
    err("server.listen: \"" + c.server.listen +
        "\" is not loopback and no TLS is configured: set tls_certificate and tls_key, or "
        "allow_plaintext = true to accept plaintext HTTP beyond this machine");
  }
  if (c.server.tls_certificate.empty() != c.server.tls_key.empty())
    err("server: set both tls_certificate and tls_key, or neither");
  if (!c.server.client_ca.empty() && c.server.tls_certificate.empty())
    err("server.client_ca: client certificates need TLS (tls_certificate, tls_key)");
  if (c.server.require_client_certificate && c.server.client_ca.empty())
    err("server.require_client_certificate: needs client_ca");
  if (!SplitHostPort(c.metrics.listen, &host, &port).ok()) {
    err("metrics.listen: expected host:port, got \"" + c.metrics.listen + "\"");
  } else if (c.metrics.tls_certificate.empty() && !IsLoopbackHost(host) &&
             !c.metrics.allow_plaintext) {
    err("metrics.listen: \"" + c.metrics.listen +
        "\" is not loopback and no TLS is configured: set tls_certificate and tls_key, or "
        "allow_plaintext = true to serve the metrics in plaintext beyond this machine");
  }
  if (c.metrics.tls_certificate.empty() != c.metrics.tls_key.empty())
    err("metrics: set both tls_certificate and tls_key, or neither");
  if (!c.metrics.client_ca.empty() && c.metrics.tls_certificate.empty())
    err("metrics.client_ca: client certificates need TLS (tls_certificate, tls_key)");
  if (c.metrics.require_client_certificate && c.metrics.client_ca.empty())
    err("metrics.require_client_certificate: needs client_ca");
  if (c.queue.low_watermark_documents > c.queue.high_watermark_documents)
    err("queue.low_watermark_documents: must not exceed high_watermark_documents");
  if (c.queue.low_watermark_bytes > c.queue.high_watermark_bytes)
    err("queue.low_watermark_bytes: must not exceed high_watermark_bytes");
  if (c.queue.commit_linger > std::chrono::milliseconds(50))
    err("queue.commit_linger: at most 50ms (it delays every acceptance on a quiet queue)");

  std::set<std::string> partitions, keys, profiles;
  std::vector<std::string> names;
  for (const auto& p : c.partitions) {
    partitions.insert(p.name);
    names.push_back(p.name);
    if (p.token.empty() && p.serial.empty())
      err("partition \"" + p.name + "\": set token (label) or serial");
    if (p.pin_source.rfind("file:", 0) != 0 && p.pin_source.rfind("env:", 0) != 0) {
      err("partition \"" + p.name +
          "\".pin_source: must be \"file:/path\" or \"env:NAME\" (never the PIN itself)");
    }
    // A PIN file others can read is refused now; a missing one is reported when qseald starts.
    if (p.pin_source.rfind("file:", 0) == 0 && ::access(p.pin_source.c_str() + 5, F_OK) == 0) {
      Status mode = CheckSecretFileMode(p.pin_source.substr(5), "file");
      if (!mode.ok()) err("partition \"" + p.name + "\".pin_source: " + mode.message());
    }
  }
  CheckUnique(names, "partition", origin, errors);
  names.clear();
  for (const auto& k : c.keys) {
    keys.insert(k.name);
    names.push_back(k.name);
    if (k.uri.rfind("pkcs11:", 0) != 0)
      err("key \"" + k.name + "\".uri: must be an RFC 7512 pkcs11: URI");
    if (k.partitions.empty())
      err("key \"" + k.name + "\".partitions: at least one partition is required");
    for (const auto& p : k.partitions) {
      if (partitions.count(p) == 0)
        err("key \"" + k.name + "\".partitions: unknown partition \"" + p + "\"");
    }
  }
  CheckUnique(names, "key", origin, errors);
  names.clear();
  if (c.audit.enabled && c.audit.checkpoint_key.rfind("key:", 0) == 0 &&
      keys.count(c.audit.checkpoint_key.substr(4)) == 0) {
    err("audit.checkpoint_key: unknown key \"" + c.audit.checkpoint_key.substr(4) + "\"");
  }
  std::set<std::string> tsas;
  for (const auto& t : c.tsas) {
    tsas.insert(t.name);
    names.push_back(t.name);
    if (t.url.rfind("http://", 0) != 0 && t.url.rfind("https://", 0) != 0)
      err("tsa \"" + t.name + "\".url: expected an http:// or https:// URL, got \"" + t.url + "\"");
    if (t.url.rfind("https://", 0) == 0 && t.tls_ca_file.empty())
      err("tsa \"" + t.name + "\".tls_ca: required for an https:// URL");
  }
  CheckUnique(names, "tsa", origin, errors);
  names.clear();
  for (const auto& p : c.profiles) {
    profiles.insert(p.name);
    names.push_back(p.name);
    // "csc:" names the CSC API's internal profiles and a client's signHash grants.
    if (p.name.rfind(ingest::kCscNamePrefix, 0) == 0)
      err("profile \"" + p.name + "\": names starting with \"csc:\" are reserved");
    if (keys.count(p.key) == 0)
      err("profile \"" + p.name + "\".key: unknown key \"" + p.key + "\"");
    const std::string at = "profile \"" + p.name + "\"";
    if (p.level == "b-t") {
      // Every sealing format has B-T (docs/timestamps.md); raw-signature profiles are internal.
      if (p.format != "cades-detached" && p.format != "cades-enveloping" &&
          p.format != "xades-enveloped" && p.format != "xades-detached" && p.format != "pades")
        err(at + ".level: b-t is made for CAdES, XAdES and PAdES profiles, not " + p.format);
      if (p.tsa.empty()) err(at + ".tsa: a b-t profile names at least one [[tsa]]");
    } else if (p.level == "b-lt") {
      // B-LT is B-T plus the revocation data (PAdES: in a DSS).
      if (p.format != "cades-detached" && p.format != "cades-enveloping" &&
          p.format != "xades-enveloped" && p.format != "xades-detached" && p.format != "pades")
        err(at + ".level: b-lt is made for CAdES, XAdES and PAdES profiles, not " + p.format);
      if (p.tsa.empty()) err(at + ".tsa: a b-lt profile names at least one [[tsa]]");
    } else if (p.level != "b-b") {
      err(at + ".level: expected b-b, b-t or b-lt, got \"" + p.level + "\"");
    } else if (!p.tsa.empty()) {
      err(at + ".tsa: only a b-t or b-lt profile asks a TSA");
    }
    for (const auto& t : p.tsa) {
      if (tsas.count(t) == 0) err(at + ".tsa: unknown tsa \"" + t + "\"");
    }
  }
  {
    const revocation::RevocationOptions& v = c.revocation;
    using std::chrono::milliseconds;
    if (v.fetch_timeout < milliseconds(100) || v.fetch_timeout > milliseconds(300'000))
      err("revocation.fetch_timeout: between 100ms and 5m");
    if (v.retry_interval < milliseconds(100)) err("revocation.retry_interval: at least 100ms");
    if (v.max_age < milliseconds(1'000)) err("revocation.max_age: at least 1s");
    if (v.max_response_bytes < 1024) err("revocation.max_response_bytes: at least 1 KiB");
  }
  CheckUnique(names, "profile", origin, errors);
  for (const auto& w : c.watches) {
    if (profiles.count(w.profile) == 0)
      err("watch \"" + w.root + "\".profile: unknown profile \"" + w.profile + "\"");
  }
  names.clear();
  for (const auto& j : c.jetstreams) {
    names.push_back(j.name);
    const std::string at = "jetstream \"" + j.name + "\"";
    if (j.servers.empty()) err(at + ".servers: at least one server is required");
    if (!j.token_source.empty() && j.token_source.rfind("file:", 0) != 0 &&
        j.token_source.rfind("env:", 0) != 0) {
      err(at + ".token_source: must be \"file:/path\" or \"env:NAME\" (never the token itself)");
    }
    if (j.create && j.subjects.empty()) err(at + ".subjects: required when create = true");
    if (profiles.count(j.profile) == 0) err(at + ".profile: unknown profile \"" + j.profile + "\"");
    for (const auto& p : j.profiles) {
      if (profiles.count(p) == 0) err(at + ".profiles: unknown profile \"" + p + "\"");
    }
    if (j.ack_wait < std::chrono::seconds(5)) err(at + ".ack_wait: must be at least 5s");
    if (j.max_ack_pending < j.fetch_batch) err(at + ".max_ack_pending: must be >= fetch_batch");
    for (const auto& s : j.subjects) {
      if (s == j.result_subject || s.rfind(j.result_subject + ".", 0) == 0 || s == ">") {
        err(at + ".subjects: \"" + s + "\" overlaps result_subject");
      }
    }
  }
  CheckUnique(names, "jetstream", origin, errors);
  names.clear();
  for (const auto& k : c.kafkas) {
    names.push_back(k.name);
    const std::string at = "kafka \"" + k.name + "\"";
    if (k.brokers.empty()) err(at + ".brokers: at least one broker is required");
    if (k.topics.empty()) err(at + ".topics: at least one topic is required");
    static const std::set<std::string> kProtocols = {"plaintext", "ssl", "sasl_plaintext",
                                                     "sasl_ssl"};
    if (kProtocols.count(k.security_protocol) == 0) {
      err(at + ".security_protocol: expected plaintext, ssl, sasl_plaintext or sasl_ssl");
    }
    const bool sasl = k.security_protocol.rfind("sasl_", 0) == 0;
    if (sasl &&
        (k.sasl_mechanism.empty() || k.sasl_username.empty() || k.sasl_password_source.empty())) {
      err(at + ": " + k.security_protocol +
          " needs sasl_mechanism, sasl_username and sasl_password_source");
    }
    if (!sasl && !k.sasl_mechanism.empty()) {
      err(at + ".sasl_mechanism: only with security_protocol sasl_plaintext or sasl_ssl");
    }
    if (!k.sasl_mechanism.empty() && k.sasl_mechanism != "PLAIN" &&
        k.sasl_mechanism != "SCRAM-SHA-256" && k.sasl_mechanism != "SCRAM-SHA-512") {
      err(at + ".sasl_mechanism: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
    }
    if (!k.sasl_password_source.empty() && k.sasl_password_source.rfind("file:", 0) != 0 &&
        k.sasl_password_source.rfind("env:", 0) != 0) {
      err(at +
          ".sasl_password_source: must be \"file:/path\" or \"env:NAME\" (never the "
          "password itself)");
    }
    if (profiles.count(k.profile) == 0) err(at + ".profile: unknown profile \"" + k.profile + "\"");
    for (const auto& p : k.profiles) {
      if (profiles.count(p) == 0) err(at + ".profiles: unknown profile \"" + p + "\"");
    }
    for (const auto& t : k.topics) {
      if (t == k.result_topic) err(at + ".topics: \"" + t + "\" is the result_topic");
    }
    if (k.result_topic.empty()) err(at + ".result_topic: must not be empty");
    if (k.session_timeout < std::chrono::seconds(1)) err(at + ".session_timeout: at least 1s");
  }
  CheckUnique(names, "kafka", origin, errors);
  names.clear();
  for (const auto& cl : c.clients) {
    names.push_back(cl.name);
    const bool by_token = !cl.token_sha256.empty() || !cl.token_sha256_file.empty();
    const bool by_cert = !cl.certificate_subject.empty() || !cl.certificate_spki_sha256.empty();
    if (!cl.token_sha256.empty() && !cl.token_sha256_file.empty()) {
      err("client \"" + cl.name + "\": set only one of token_sha256 and token_sha256_file");
    }
    if (!by_token && !by_cert) {
      err("client \"" + cl.name +
          "\": set token_sha256 or token_sha256_file, certificate_subject or "
          "certificate_spki_sha256, or both");
    }
    if (by_cert && c.server.client_ca.empty()) {
      err("client \"" + cl.name + "\": a certificate identity needs server.client_ca");
    }
    if (!cl.certificate_spki_sha256.empty() &&
        (cl.certificate_spki_sha256.size() != 64 || !HexOk(cl.certificate_spki_sha256))) {
      err("client \"" + cl.name + "\".certificate_spki_sha256: expected 64 hex digits");
    }
    if (!cl.token_sha256.empty() && (cl.token_sha256.size() != 64 || !HexOk(cl.token_sha256))) {
      err("client \"" + cl.name + "\".token_sha256: expected 64 hex digits");
    }
    for (const auto& p : cl.profiles) {
      if (p.rfind(ingest::kCscNamePrefix, 0) == 0) {
        // A signHash grant (docs/csc.md): "csc:KEY" or "csc:*".
        const std::string key = p.substr(4);
        if (key != "*" && keys.count(key) == 0)
          err("client \"" + cl.name + "\".profiles: \"" + p + "\" names an unknown key");
      } else if (p != "*" && profiles.count(p) == 0) {
        err("client \"" + cl.name + "\".profiles: unknown profile \"" + p + "\"");
      }
    }
  }
  CheckUnique(names, "client", origin, errors);
}

}  // namespace qseal::daemon
