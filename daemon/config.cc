#include "daemon/config.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <boost/asio/ip/address.hpp>
#include <pwd.h>
#include <toml++/toml.h>

#include "common/secret.h"
#include "daemon/config_validate.h"
#include "formats/format.h"
#include "ingest/api_server.h"

namespace qseal::daemon {
namespace {

// "a", "a or b", "a, b or c": the known names in an error message.
std::string OneOf(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

// Expands ${NAME} and ${NAME:-default} from the environment.
std::string ExpandEnv(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '{') {
      std::size_t end = in.find('}', i + 2);
      if (end != std::string::npos) {
        std::string inner = in.substr(i + 2, end - i - 2);
        std::string fallback;
        std::size_t sep = inner.find(":-");
        if (sep != std::string::npos) {
          fallback = inner.substr(sep + 2);
          inner = inner.substr(0, sep);
        }
        const char* v = std::getenv(inner.c_str());
        out += (v != nullptr && *v != '\0') ? std::string(v) : fallback;
        i = end;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

// Parses a non-empty run of decimal digits; false when empty or out of range (never throws: the
// config fuzzer found std::stoull's out_of_range escaping on a 30-digit size).
template <typename T>
bool ParseDigits(const std::string& digits, T* value) {
  if (digits.empty()) return false;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), *value);
  return ec == std::errc() && end == digits.data() + digits.size();
}

// Parses "250ms", "30s", "5m", "2h", "7d" (or a bare integer: milliseconds).
bool ParseDurationMs(const std::string& s, std::int64_t* ms) {
  if (s.empty()) return false;
  std::size_t pos = 0;
  while (pos < s.size() && (std::isdigit(static_cast<unsigned char>(s[pos])) != 0)) ++pos;
  std::int64_t n = 0;
  if (!ParseDigits(s.substr(0, pos), &n)) return false;
  std::string unit = s.substr(pos);
  static const std::map<std::string, std::int64_t> kUnits = {
      {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return false;
  if (n > std::numeric_limits<std::int64_t>::max() / it->second) return false;
  *ms = n * it->second;
  return true;
}

// Parses "512", "64KiB", "256MiB", "8GiB".
bool ParseBytes(const std::string& s, std::uint64_t* bytes) {
  std::size_t pos = 0;
  while (pos < s.size() && (std::isdigit(static_cast<unsigned char>(s[pos])) != 0)) ++pos;
  std::uint64_t n = 0;
  if (!ParseDigits(s.substr(0, pos), &n)) return false;
  std::string unit = s.substr(pos);
  static const std::map<std::string, std::uint64_t> kUnits = {{"", 1},
                                                              {"B", 1},
                                                              {"KiB", 1ull << 10},
                                                              {"MiB", 1ull << 20},
                                                              {"GiB", 1ull << 30},
                                                              {"TiB", 1ull << 40}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return false;
  if (n > std::numeric_limits<std::uint64_t>::max() / it->second) return false;
  *bytes = n * it->second;
  return true;
}

// Reads one table: typed getters record errors with the key path; Finish() reports the keys that
// no getter asked for (unknown keys, usually typos).
class TableReader {
 public:
  TableReader(const toml::table* table, std::string path, std::string origin,
              std::vector<std::string>* errors)
      : table_(table), path_(std::move(path)), origin_(std::move(origin)), errors_(errors) {}

  void Str(const char* key, std::string* out, bool required = false) {
    const toml::node* n = Get(key, required);
    if (n == nullptr) return;
    if (!n->is_string()) return TypeError(key, *n, "a string");
    *out = ExpandEnv(n->value<std::string>().value_or(""));
  }

  template <typename Int>
  void Integer(const char* key, Int* out, std::int64_t min, std::int64_t max) {
    const toml::node* n = Get(key, false);
    if (n == nullptr) return;
    if (!n->is_integer()) return TypeError(key, *n, "an integer");
    std::int64_t v = n->value<std::int64_t>().value_or(0);
    if (v < min || v > max) {
      return Error(*n, key,
                   "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                       ", got " + std::to_string(v));
    }
    *out = static_cast<Int>(v);
  }

  void Bool(const char* key, bool* out) {
    const toml::node* n = Get(key, false);
    if (n == nullptr) return;
    if (!n->is_boolean()) return TypeError(key, *n, "a boolean");
    *out = n->value<bool>().value_or(false);
  }

  template <typename Duration>
  void Dur(const char* key, Duration* out) {
    const toml::node* n = Get(key, false);
    if (n == nullptr) return;
    std::int64_t ms = 0;
    if (n->is_integer()) {
      ms = n->value<std::int64_t>().value_or(0);
    } else if (!n->is_string() || !ParseDurationMs(ExpandEnv(*n->value<std::string>()), &ms)) {
      return Error(*n, key,
                   std::string("expected a duration such as \"500ms\", \"30s\", \"5m\", got ") +
                       (n->is_string() ? "\"" + *n->value<std::string>() + "\"" : TypeName(*n)));
    }
    if (ms < 0) return Error(*n, key, "must not be negative");
    *out = std::chrono::duration_cast<Duration>(std::chrono::milliseconds(ms));
  }

  void Size(const char* key, std::uint64_t* out) {
    const toml::node* n = Get(key, false);
    if (n == nullptr) return;
    if (n->is_integer()) {
      std::int64_t v = n->value<std::int64_t>().value_or(0);
      if (v < 0) return Error(*n, key, "must not be negative");
      *out = static_cast<std::uint64_t>(v);
      return;
    }
    if (!n->is_string() || !ParseBytes(ExpandEnv(*n->value<std::string>()), out)) {
      return Error(*n, key,
                   std::string("expected a size such as 65536 or \"64MiB\", got ") + TypeName(*n));
    }
  }

  // A uid: a TOML integer, or a string holding a user name (resolved now) or a decimal uid.
  void Uid(const char* key, std::optional<std::uint32_t>* out) {
    const toml::node* n = Get(key, false);
    if (n == nullptr) return;
    std::int64_t v = -1;
    if (n->is_integer()) v = n->value<std::int64_t>().value_or(-1);
    std::string name = n->is_string() ? ExpandEnv(*n->value<std::string>()) : "";
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
      std::from_chars(name.data(), name.data() + name.size(), v);
    } else if (!name.empty()) {
      char buf[4096];
      struct passwd pw {};
      struct passwd* found = nullptr;
      if (::getpwnam_r(name.c_str(), &pw, buf, sizeof(buf), &found) != 0 || found == nullptr)
        return Error(*n, key, "no such user \"" + name + "\"");
      v = pw.pw_uid;
    }
    if (v < 0 || v > 0xfffffffe) return Error(*n, key, "expected a user name or a uid");
    *out = static_cast<std::uint32_t>(v);
  }

  void StrList(const char* key, std::vector<std::string>* out, bool required = false) {
    const toml::node* n = Get(key, required);
    if (n == nullptr) return;
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return TypeError(key, *n, "an array of strings");
    out->clear();
    for (const toml::node& e : *arr) {
      if (!e.is_string()) return TypeError(key, e, "an array of strings");
      out->push_back(ExpandEnv(*e.value<std::string>()));
    }
  }

  // Reports keys present in the table that no getter read.
  void Finish() {
    if (table_ == nullptr) return;
    for (auto&& [k, v] : *table_) {
      std::string key(k.str());
      if (seen_.count(key) == 0) Error(v, key.c_str(), "unknown key");
    }
  }

  void Error(const toml::node& n, const std::string& key, const std::string& what) {
    std::ostringstream line;
    line << origin_ << ":" << n.source().begin.line << ": " << Path(key) << ": " << what;
    errors_->push_back(line.str());
  }

  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  const toml::node* Get(const char* key, bool required) {
    seen_.insert(key);
    const toml::node* n = table_ == nullptr ? nullptr : table_->get(key);
    if (n == nullptr && required) {
      errors_->push_back(origin_ + ": " + Path(key) + ": required key is missing");
    }
    return n;
  }

  void TypeError(const char* key, const toml::node& n, const char* expected) {
    Error(n, key, std::string("expected ") + expected + ", got " + TypeName(n));
  }

  const toml::table* table_;
  std::string path_;
  std::string origin_;
  std::vector<std::string>* errors_;
  std::set<std::string> seen_;
};

template <typename F>
void ForEachTableInArray(const toml::table& root, const char* name, const std::string& origin,
                         std::vector<std::string>* errors, F&& fn) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return;
  const toml::array* arr = n->as_array();
  if (arr == nullptr) {
    errors->push_back(origin + ":" + std::to_string(n->source().begin.line) + ": " + name +
                      ": expected an array of tables ([[" + name + "]])");
    return;
  }
  std::size_t i = 0;
  for (const toml::node& e : *arr) {
    std::string path = std::string(name) + "[" + std::to_string(i++) + "]";
    const toml::table* t = e.as_table();
    if (t == nullptr) {
      errors->push_back(origin + ": " + path + ": expected a table");
      continue;
    }
    fn(TableReader(t, path, origin, errors), path);
  }
}

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  boost::asio::ip::address a = boost::asio::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}

Status SplitHostPort(const std::string& addr, std::string* host, std::uint16_t* port) {
  std::size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == addr.size()) {
    return InvalidArgumentError("expected host:port, got \"" + addr + "\"");
  }
  std::string h = addr.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string p = addr.substr(colon + 1);
  for (char ch : p) {
    if (std::isdigit(static_cast<unsigned char>(ch)) == 0)
      return InvalidArgumentError("bad port in \"" + addr + "\"");
  }
  if (p.size() > 5 || std::stoul(p) > 65535)
    return InvalidArgumentError("bad port in \"" + addr + "\"");
  *host = h;
  *port = static_cast<std::uint16_t>(std::stoul(p));
  return Status::Ok();
}

Result<Config> ParseConfig(const std::string& text, const std::string& origin,
                           std::vector<std::string>* errors_out) {
  std::vector<std::string> local;
  std::vector<std::string>* errors = errors_out != nullptr ? errors_out : &local;
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << origin << ":" << e.source().begin.line << ": " << e.description();
    errors->push_back(m.str());
    return InvalidArgumentError(m.str());
  }

  Config c;
  c.source_path = origin;
  TableReader top(&root, "", origin, errors);
  top.Str("log_level", &c.log_level);
  for (const char* section : {"server", "metrics", "queue", "engine", "hsm", "audit", "csc"}) {
    const toml::node* n = root.get(section);
    if (n != nullptr && !n->is_table())
      top.Error(*n, section, std::string("expected a table ([") + section + "])");
  }
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
      c.log_level != "error") {
    errors->push_back(origin + ": log_level: expected debug, info, warn or error, got \"" +
                      c.log_level + "\"");
  }

  {
    TableReader r(root["server"].as_table(), "server", origin, errors);
    r.Str("listen", &c.server.listen);
    r.Size("max_body_bytes", &c.server.max_body_bytes);
    r.Size("max_header_bytes", &c.server.max_header_bytes);
    r.Dur("header_timeout", &c.server.header_timeout);
    r.Dur("body_timeout", &c.server.body_timeout);
    r.Integer("max_connections", &c.server.max_connections, 1, 1'000'000);
    r.Integer("max_connections_per_source", &c.server.max_connections_per_source, 0, 1'000'000);
    r.Integer("client_requests_per_second", &c.server.client_requests_per_second, 0, 1'000'000);
    r.Integer("client_burst", &c.server.client_burst, 0, 10'000'000);
    r.Dur("max_wait", &c.server.max_wait);
    r.Integer("threads", &c.server.threads, 1, 256);
    r.Integer("max_batch_parts", &c.server.max_batch_parts, 1, 100'000);
    r.Size("max_batch_bytes", &c.server.max_batch_bytes);
    r.Size("max_batch_part_bytes", &c.server.max_batch_part_bytes);
    r.Str("tls_certificate", &c.server.tls_certificate);
    r.Str("tls_key", &c.server.tls_key);
    r.Str("client_ca", &c.server.client_ca);
    r.Bool("require_client_certificate", &c.server.require_client_certificate);
    r.Bool("allow_plaintext", &c.server.allow_plaintext);
    r.Finish();
  }
  {
    TableReader r(root["metrics"].as_table(), "metrics", origin, errors);
    r.Str("listen", &c.metrics.listen);
    r.Str("tls_certificate", &c.metrics.tls_certificate);
    r.Str("tls_key", &c.metrics.tls_key);
    r.Str("client_ca", &c.metrics.client_ca);
    r.Bool("require_client_certificate", &c.metrics.require_client_certificate);
    r.Bool("allow_plaintext", &c.metrics.allow_plaintext);
    r.Finish();
  }
  {
    TableReader r(root["queue"].as_table(), "queue", origin, errors);
    r.Str("path", &c.queue.path);
    r.Integer("high_watermark_documents", &c.queue.high_watermark_documents, 1, INT64_MAX);
    r.Integer("low_watermark_documents", &c.queue.low_watermark_documents, 0, INT64_MAX);
    r.Size("high_watermark_bytes", &c.queue.high_watermark_bytes);
    r.Size("low_watermark_bytes", &c.queue.low_watermark_bytes);
    r.Size("min_free_bytes", &c.queue.min_free_bytes);
    r.Dur("retention", &c.queue.retention);
    r.Dur("lease_duration", &c.queue.lease_duration);
    r.Integer("max_attempts", &c.queue.max_attempts, 1, 1000);
    r.Dur("retry_backoff", &c.queue.retry_backoff);
    r.Dur("commit_linger", &c.queue.commit_linger);
    r.Finish();
  }
  {
    TableReader r(root["engine"].as_table(), "engine", origin, errors);
    r.Integer("lease_batch", &c.engine.lease_batch, 1, 100'000);
    r.Integer("max_documents_in_flight", &c.engine.max_documents_in_flight, 1, 10'000'000);
    r.Size("max_bytes_in_flight", &c.engine.max_bytes_in_flight);
    r.Dur("drain_timeout", &c.engine.drain_timeout);
    r.Finish();
  }
  {
    TableReader r(root["audit"].as_table(), "audit", origin, errors);
    r.Bool("enabled", &c.audit.enabled);
    r.Str("dir", &c.audit.dir);
    r.Size("segment_bytes", &c.audit.segment_bytes);
    r.Dur("segment_age", &c.audit.segment_age);
    r.Size("preallocate_bytes", &c.audit.preallocate_bytes);
    r.Integer("checkpoint_records", &c.audit.checkpoint_records, 1, INT64_MAX);
    r.Dur("checkpoint_interval", &c.audit.checkpoint_interval);
    r.Str("checkpoint_key", &c.audit.checkpoint_key);
    r.Bool("create_checkpoint_key", &c.audit.create_checkpoint_key);
    r.Integer("refusal_records_per_second", &c.audit.refusal_records_per_second, 1, 1'000'000);
    r.Integer("refusal_burst", &c.audit.refusal_burst, 1, 1'000'000);
    r.Finish();
    const std::string& key = c.audit.checkpoint_key;
    if ((key.rfind("file:", 0) != 0 && key.rfind("key:", 0) != 0) ||
        key.size() <= key.find(':') + 1) {
      errors->push_back(origin + ": audit.checkpoint_key: expected \"file:/path\" of a PEM key " +
                        "or \"key:NAME\" of a [[key]] in the HSM, got \"" + key + "\"");
    }
  }
  {
    TableReader r(root["csc"].as_table(), "csc", origin, errors);
    r.Bool("enabled", &c.csc.enabled);
    r.Integer("max_hashes", &c.csc.max_hashes, 1, 100'000);
    r.Str("name", &c.csc.name);
    r.Str("region", &c.csc.region);
    r.Finish();
  }
  {
    TableReader r(root["hsm"].as_table(), "hsm", origin, errors);
    r.Integer("max_batch", &c.hsm.max_batch, 1, 10'000);
    r.Dur("max_linger", &c.hsm.max_linger);
    r.Integer("max_pending", &c.hsm.max_pending, 1, 10'000'000);
    r.Dur("sign_timeout", &c.hsm.sign_timeout);
    r.Dur("reinit_interval", &c.hsm.reinit_interval);
    r.Dur("hung_call_timeout", &c.hsm.hung_call_timeout);
    r.Integer("max_attempts", &c.hsm.max_attempts, 1, 100);
    r.Finish();
    if (c.hsm.hung_call_timeout < c.hsm.sign_timeout) {
      errors->push_back(origin + ": hsm.hung_call_timeout must be at least hsm.sign_timeout");
    }
  }
  ForEachTableInArray(root, "partition", origin, errors, [&](TableReader r, const std::string&) {
    PartitionConfig p;
    r.Str("name", &p.name, true);
    r.Str("module", &p.module, true);
    r.Str("token", &p.token);
    r.Str("serial", &p.serial);
    r.Str("pin_source", &p.pin_source, true);
    r.Integer("sessions", &p.sessions, 1, 1024);
    r.Dur("keepalive_interval", &p.keepalive_interval);
    r.Integer("device_error_retries", &p.device_error_retries, 0, 10);
    r.Finish();
    c.partitions.push_back(std::move(p));
  });
  ForEachTableInArray(root, "key", origin, errors, [&](TableReader r, const std::string&) {
    KeyConfig k;
    r.Str("name", &k.name, true);
    r.Str("uri", &k.uri, true);
    r.Str("certificate_chain", &k.certificate_chain, true);
    r.StrList("partitions", &k.partitions, true);
    r.Bool("allow_rsa_below_3072", &k.allow_rsa_below_3072);
    r.Finish();
    c.keys.push_back(std::move(k));
  });
  ForEachTableInArray(root, "profile", origin, errors, [&](TableReader r, const std::string& path) {
    ProfileConfig p;
    std::string digest = "sha256", scheme = "ecdsa";
    r.Str("name", &p.name, true);
    r.Str("format", &p.format);
    r.Str("digest", &digest);
    r.Str("scheme", &scheme);
    r.Str("key", &p.key, true);
    r.Str("c14n", &p.c14n);
    r.Str("level", &p.level);
    r.StrList("tsa", &p.tsa);
    r.Dur("timestamp_wait", &p.timestamp_wait);
    r.Finish();
    if (p.c14n != "exc-c14n" && p.c14n != "c14n11") {
      errors->push_back(origin + ": " + path + ".c14n: expected exc-c14n or c14n11, got \"" +
                        p.c14n + "\"");
    }
    std::vector<std::string_view> formats = formats::FormatNames();
    if (std::find(formats.begin(), formats.end(), p.format) == formats.end()) {
      errors->push_back(origin + ": " + path + ".format: expected " + OneOf(formats) + ", got \"" +
                        p.format + "\"");
    }
    if (auto d = ParseDigest(digest)) {
      p.digest = *d;
    } else {
      errors->push_back(origin + ": " + path +
                        ".digest: expected sha256, sha384 or sha512, got \"" + digest + "\"");
    }
    if (auto s = ParseScheme(scheme)) {
      p.scheme = *s;
    } else {
      errors->push_back(origin + ": " + path +
                        ".scheme: expected ecdsa, rsa-pss or rsa-pkcs1, got \"" + scheme + "\"");
    }
    c.profiles.push_back(std::move(p));
  });
  ForEachTableInArray(root, "tsa", origin, errors, [&](TableReader r, const std::string&) {
    tsa::TsaEndpoint t;
    std::int64_t rate = 0;
    r.Str("name", &t.name, true);
    r.Str("url", &t.url, true);
    r.Str("ca", &t.ca_file, true);
    r.Str("tls_ca", &t.tls_ca_file);
    r.Str("policy", &t.policy_oid);
    r.Integer("rate", &rate, 0, 1'000'000);
    r.Integer("burst", &t.burst, 1, 1'000'000);
    r.Integer("connections", &t.connections, 1, 1'024);
    r.Dur("timeout", &t.timeout);
    r.Finish();
    t.rate_per_second = static_cast<double>(rate);
    c.tsas.push_back(std::move(t));
  });
  {
    TableReader r(root["tsa_client"].as_table(), "tsa_client", origin, errors);
    tsa::TsaClientOptions& t = c.tsa_client;
    r.Integer("max_attempts", &t.max_attempts, 1, 100);
    r.Dur("backoff_initial", &t.backoff_initial);
    r.Dur("backoff_max", &t.backoff_max);
    r.Integer("breaker_failures", &t.breaker_failures, 1, 1'000);
    r.Dur("breaker_cooldown", &t.breaker_cooldown);
    r.Dur("max_clock_skew", &t.max_clock_skew);
    r.Integer("max_pending", &t.max_pending, 1, 10'000'000);
    r.Finish();
  }
  {
    TableReader r(root["revocation"].as_table(), "revocation", origin, errors);
    revocation::RevocationOptions& v = c.revocation;
    // Beside the other state by default (the shipped config puts it all under QSEAL_VAR).
    v.store_dir = ExpandEnv("${QSEAL_VAR:-var}/revocation");
    r.Str("dir", &v.store_dir);
    r.Dur("fetch_timeout", &v.fetch_timeout);
    r.Dur("retry_interval", &v.retry_interval);
    r.Dur("max_age", &v.max_age);
    r.Size("max_response_bytes", &v.max_response_bytes);
    r.Finish();
  }
  ForEachTableInArray(root, "watch", origin, errors, [&](TableReader r, const std::string&) {
    WatchConfig w;
    r.Str("root", &w.root, true);
    r.Str("profile", &w.profile, true);
    r.Dur("poll_interval", &w.poll_interval);
    r.Size("max_file_bytes", &w.max_file_bytes);
    r.Uid("owner", &w.owner_uid);
    r.Finish();
    c.watches.push_back(std::move(w));
  });
  ForEachTableInArray(root, "jetstream", origin, errors, [&](TableReader r, const std::string&) {
    JetStreamConfig j;
    r.Str("name", &j.name, true);
    r.StrList("servers", &j.servers, true);
    r.Str("token_source", &j.token_source);
    r.Str("credentials_file", &j.credentials_file);
    r.Str("stream", &j.stream, true);
    r.StrList("subjects", &j.subjects);
    r.Str("consumer", &j.consumer);
    r.Bool("create", &j.create);
    r.Str("profile", &j.profile, true);
    r.StrList("profiles", &j.profiles);
    r.Integer("fetch_batch", &j.fetch_batch, 1, 10'000);
    r.Dur("fetch_wait", &j.fetch_wait);
    r.Integer("max_ack_pending", &j.max_ack_pending, 1, 1'000'000);
    r.Dur("ack_wait", &j.ack_wait);
    r.Str("result_subject", &j.result_subject);
    r.Str("result_stream", &j.result_stream);
    r.Dur("result_duplicate_window", &j.result_duplicate_window);
    r.Dur("publish_timeout", &j.publish_timeout);
    r.Finish();
    c.jetstreams.push_back(std::move(j));
  });
  ForEachTableInArray(root, "kafka", origin, errors, [&](TableReader r, const std::string&) {
    KafkaConfig k;
    r.Str("name", &k.name, true);
    r.StrList("brokers", &k.brokers, true);
    r.Str("security_protocol", &k.security_protocol);
    r.Str("ssl_ca", &k.ssl_ca);
    r.Str("sasl_mechanism", &k.sasl_mechanism);
    r.Str("sasl_username", &k.sasl_username);
    r.Str("sasl_password_source", &k.sasl_password_source);
    r.StrList("topics", &k.topics, true);
    r.Str("group", &k.group);
    r.Str("profile", &k.profile, true);
    r.StrList("profiles", &k.profiles);
    r.Integer("fetch_batch", &k.fetch_batch, 1, 10'000);
    r.Dur("fetch_wait", &k.fetch_wait);
    r.Dur("session_timeout", &k.session_timeout);
    r.Str("result_topic", &k.result_topic);
    r.Dur("publish_timeout", &k.publish_timeout);
    r.Finish();
    c.kafkas.push_back(std::move(k));
  });
  ForEachTableInArray(root, "client", origin, errors, [&](TableReader r, const std::string&) {
    ClientConfig cl;
    r.Str("name", &cl.name, true);
    r.Str("token_sha256", &cl.token_sha256);
    r.Str("token_sha256_file", &cl.token_sha256_file);
    r.Str("certificate_subject", &cl.certificate_subject);
    r.Str("certificate_spki_sha256", &cl.certificate_spki_sha256);
    r.StrList("profiles", &cl.profiles, true);
    r.Finish();
    c.clients.push_back(std::move(cl));
  });

  // Top-level unknown keys (sections are known).
  for (auto&& [k, v] : root) {
    static const std::set<std::string> kKnown = {
        "log_level", "server", "metrics", "queue",      "engine", "hsm",
        "partition", "key",    "audit",   "profile",    "watch",  "client",
        "jetstream", "csc",    "tsa",     "tsa_client", "kafka",  "revocation"};
    if (kKnown.count(std::string(k.str())) == 0) {
      errors->push_back(origin + ":" + std::to_string(v.source().begin.line) + ": " +
                        std::string(k.str()) + ": unknown key");
    }
  }

  ValidateConfig(c, origin, errors);
  if (!errors->empty()) {
    return InvalidArgumentError(std::to_string(errors->size()) +
                                " configuration error(s); first: " + errors->front());
  }
  return c;
}

Result<Config> LoadConfig(const std::string& path, std::vector<std::string>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::string m = path + ": cannot read the configuration file";
    if (errors != nullptr) errors->push_back(m);
    return InvalidArgumentError(m);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path, errors);
}

}  // namespace qseal::daemon
