#include "daemon/daemon.h"

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "audit/audit_log.h"
#include "common/exit_codes.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/sha256.h"
#include "daemon/brokers.h"
#include "daemon/checkpoint_signer.h"
#include "daemon/hsm_probe.h"
#include "daemon/metrics_bridge.h"
#include "daemon/refusal_audit.h"
#include "engine/engine.h"
#include "formats/format.h"
#include "hsm/signer.h"
#include "ingest/api_server.h"
#include "ingest/watcher.h"
#include "metrics/metrics.h"
#include "publish/folder_outbox.h"
#include "queue/queue.h"
#include "revocation/revocation_cache.h"
#include "tsa/tsa_client.h"

namespace qseal::daemon {
namespace {

Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `name` as one path component: '/' and a leading '.' replaced.
std::string SafeFileName(std::string name) {
  for (char& c : name) c = c == '/' ? '_' : c;
  if (name.empty() || name[0] == '.') name.insert(name.begin(), '_');
  return name;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.erase(s.begin());
  return s;
}

}  // namespace

class Daemon::Impl {
 public:
  explicit Impl(Config config) : config_(std::move(config)) {}

  ~Impl() { Stop().IgnoreError(); }

  Status Start() {
    metrics_ = std::make_unique<metrics::Metrics>();
    // The signer first: the audit trail's checkpoint key may be one of its keys.
    QSEAL_RETURN_IF_ERROR(CreateSigner());
    QSEAL_RETURN_IF_ERROR(OpenAudit());
    QSEAL_RETURN_IF_ERROR(OpenQueue());
    StartPartitionWatch();
    // Brokers before the engine: the engine's publisher lookup reaches them for broker records.
    Result<std::unique_ptr<Brokers>> brokers = Brokers::Create(
        config_.jetstreams, config_.kafkas, config_.queue.high_watermark_documents, queue_.get());
    if (!brokers.ok()) return brokers.status();
    brokers_ = std::move(*brokers);
    // The engine next: its profiles' formats name the seals the outboxes publish.
    QSEAL_RETURN_IF_ERROR(CreateEngine());
    QSEAL_RETURN_IF_ERROR(CreateWatchers());
    QSEAL_RETURN_IF_ERROR(CreateApi());
    engine_->SetFinishedListener(
        [api = api_.get()](const queue::DocumentId& id) { api->Notify(id); });
    QSEAL_RETURN_IF_ERROR(engine_->Start());
    for (auto& w : watchers_) QSEAL_RETURN_IF_ERROR(w->Start().WithContext("watch " + w->root()));
    QSEAL_RETURN_IF_ERROR(brokers_->Start());
    QSEAL_RETURN_IF_ERROR(StartMetrics());
    QSEAL_RETURN_IF_ERROR(api_->Start());
    const std::string api_addr = api_host_ + ":" + std::to_string(api_->port());
    const bool tls = !config_.server.tls_certificate.empty();
    LogInfo("qseald started",
            {{"api", api_addr},
             {"api_url", (tls ? "https://" : "http://") + api_addr},
             {"metrics", metrics_host_ + ":" + std::to_string(metrics_server_->port())},
             {"config", config_.source_path},
             {"partitions", static_cast<std::int64_t>(config_.partitions.size())},
             {"profiles", static_cast<std::int64_t>(config_.profiles.size())},
             {"watches", static_cast<std::int64_t>(watchers_.size())},
             {"jetstreams", static_cast<std::int64_t>(config_.jetstreams.size())},
             {"kafkas", static_cast<std::int64_t>(config_.kafkas.size())}});
    return Status::Ok();
  }

  // The API's certificate, then the metrics listener's (each when it has TLS); one failing
  // leaves that listener on its old certificate and does not stop the other's reload.
  Status ReloadTls() {
    if (!api_) return FailedPreconditionError("not started");
    const bool metrics_tls = metrics_server_ && !config_.metrics.tls_certificate.empty();
    Status s = Status::Ok();
    if (!config_.server.tls_certificate.empty() || !metrics_tls) {
      s = api_->ReloadTls();
      if (s.ok()) RecordTlsReload("TLS certificate reloaded: ", config_.server.tls_certificate);
    }
    if (metrics_tls) {
      Result<std::shared_ptr<boost::asio::ssl::context>> tls = ingest::MakeServerTlsContext(
          config_.metrics.tls_certificate, config_.metrics.tls_key, config_.metrics.client_ca,
          config_.metrics.require_client_certificate);
      Status m = tls.ok() ? metrics_server_->ReloadTls(std::move(*tls)) : tls.status();
      if (m.ok()) {
        RecordTlsReload("metrics TLS certificate reloaded: ", config_.metrics.tls_certificate);
      } else if (s.ok()) {
        s = m.WithContext("metrics TLS");
      }
    }
    return s;
  }

  void RecordTlsReload(const std::string& what, const std::string& file) {
    if (!audit_) return;
    audit_->AppendAsync({audit::EventEntry(audit::Event::kConfigLoaded,
                                           what + file + " sha256=" + FileSha256(file))},
                        nullptr);
  }

  // Order matters: doors first (nothing new comes in), then the pipeline drains, then the HSM
  // and finally the queue, which every other part writes to.
  Status Fatal(int* exit_code) const {
    if (queue_) {
      Status q = queue_->Health();
      if (!q.ok()) {
        if (exit_code != nullptr) *exit_code = kExitIoErr;
        return q;
      }
    }
    if (signer_) {
      Status h = signer_->Health();
      if (!h.ok()) {
        if (exit_code != nullptr) *exit_code = kExitUnavailable;
        return h;
      }
    }
    return Status::Ok();
  }

  Status Stop() {
    if (stopped_) return Status::Ok();
    stopped_ = true;
    Status result = Status::Ok();
    if (api_) api_->Stop();
    for (auto& w : watchers_) w->Stop();
    if (brokers_) brokers_->Stop();
    // Scrapes read the components' stats: stop them before the components go away.
    if (metrics_server_) metrics_server_->Stop();
    if (bridge_) bridge_->Stop();
    if (engine_) {
      Status drained = engine_->Stop();
      if (!drained.ok()) {
        LogWarn("drain incomplete", {{"error", drained.ToString()}});
      }
    }
    StopPartitionWatch();
    // The trail closes while the signer still runs: its last checkpoint may be signed in the HSM.
    if (audit_) {
      Status logged = audit_->Append({audit::EventEntry(audit::Event::kShutdown)});
      Status closed = audit_->Close();
      if (!logged.ok() || !closed.ok()) {
        LogError("audit log not closed cleanly",
                 {{"append", logged.ToString()}, {"close", closed.ToString()}});
      }
    }
    if (signer_) signer_->Shutdown();
    // Outstanding time-stamp requests end (kCancelled) before the engine that waits for them.
    for (auto& [name, client] : tsa_clients_) client->Shutdown();
    engine_.reset();
    tsa_clients_.clear();
    revocation_caches_.clear();
    api_.reset();
    watchers_.clear();
    outboxes_.clear();
    brokers_.reset();
    signer_.reset();
    if (queue_) {
      Status closed = queue_->Close();
      if (!closed.ok()) result = closed;
      queue_.reset();
    }
    refusals_.reset();
    audit_.reset();
    return result;
  }

 private:
  Status StartMetrics() {
    MetricsBridgeSources sources;
    sources.queue = queue_.get();
    sources.signer = signer_.get();
    sources.engine = engine_.get();
    sources.audit = audit_.get();
    for (std::size_t i = 0; i < watchers_.size(); ++i) {
      sources.watches.push_back({config_.watches[i].profile, watchers_[i].get()});
    }
    for (const auto& e : brokers_->entries()) {
      sources.jetstreams.push_back({e.source.get(), e.publisher.get()});
    }
    for (const auto& e : brokers_->kafka_entries()) {
      sources.kafkas.push_back({e.source.get(), e.publisher.get()});
    }
    for (const auto& [profile, client] : tsa_clients_) {
      sources.timestamps.push_back({profile, client.get()});
    }
    for (const auto& [key, cache] : revocation_caches_) {
      sources.revocations.push_back({key, cache.get()});
    }
    for (const auto& k : config_.keys) sources.keys.push_back(k.name);
    for (const auto& p : config_.profiles) sources.profiles.push_back(p.name);
    bridge_ = std::make_unique<MetricsBridge>(metrics_.get(), std::move(sources));
    metrics::MetricsServerOptions o;
    QSEAL_RETURN_IF_ERROR(SplitHostPort(config_.metrics.listen, &o.host, &o.port));
    metrics_host_ = o.host;
    if (!config_.metrics.tls_certificate.empty()) {
      Result<std::shared_ptr<boost::asio::ssl::context>> tls = ingest::MakeServerTlsContext(
          config_.metrics.tls_certificate, config_.metrics.tls_key, config_.metrics.client_ca,
          config_.metrics.require_client_certificate);
      if (!tls.ok()) return tls.status().WithContext("metrics TLS");
      o.tls = std::move(*tls);
    }
    metrics_server_ = std::make_unique<metrics::MetricsServer>(o, metrics_.get());
    return metrics_server_->Start().WithContext("metrics listener");
  }

  // ---- Audit trail (docs/audit.md): the log, its daemon-level events, partition changes. ----

  Status OpenAudit() {
    const AuditConfig& a = config_.audit;
    if (!a.enabled) {
      LogWarn("audit trail disabled ([audit] enabled = false): signatures leave no record", {});
      return Status::Ok();
    }
    audit::AuditOptions o;
    o.dir = a.dir;
    o.segment_bytes = a.segment_bytes;
    o.segment_age = a.segment_age;
    o.preallocate_bytes = a.preallocate_bytes;
    o.checkpoint_records = a.checkpoint_records;
    o.checkpoint_interval = a.checkpoint_interval;
    if (a.checkpoint_key.rfind("key:", 0) == 0) {
      // In the HSM: signed through the same partitions as the seals (the name is checked by the
      // config; ECDSA P-256 by the audit log).
      const std::string name = a.checkpoint_key.substr(4);
      Result<hsm::KeyInfo> key = signer_->GetKey(name);
      if (!key.ok()) return key.status().WithContext("audit.checkpoint_key");
      o.checkpoint_public_key_der = key->subject_public_key_info_der;
      o.checkpoint_signer = CheckpointSigner(*signer_, name);
    } else {
      o.checkpoint_key_file = a.checkpoint_key.substr(5);  // "file:" checked by the config
    }
    o.create_key_if_missing = a.create_checkpoint_key;
    o.new_key = a.new_checkpoint_key;
    Result<std::unique_ptr<audit::AuditLog>> log = audit::AuditLog::Open(o);
    if (!log.ok()) return log.status();
    audit_ = std::move(*log);
    refusals_ = std::make_unique<RefusalAudit>(a, audit_.get());
    return audit_
        ->Append(
            {audit::EventEntry(audit::Event::kStartup, "qseald"),
             audit::EventEntry(audit::Event::kConfigLoaded,
                               config_.source_path + " sha256=" + FileSha256(config_.source_path))})
        .WithContext("audit");
  }

  static std::string FileSha256(const std::string& path) {
    Result<std::string> text = ReadSmallFile(path);
    if (!text.ok()) return "unreadable";
    return Sha256Hex(AsBytes(*text));
  }

  // The signer has no state-change callback; its stats are cheap, so a 1 s poll turns partition
  // state changes into partition_up/partition_down records.
  void StartPartitionWatch() {
    if (!audit_) return;
    partition_watch_ = std::thread([this] {
      std::map<std::string, hsm::PartitionState> last;
      MutexLock lock(watch_mu_);
      while (!watch_stop_) {
        std::vector<audit::Entry> entries;
        for (const auto& p : signer_->Stats().partitions) {
          auto it = last.find(p.name);
          bool was_up = it != last.end() && it->second == hsm::PartitionState::kUp;
          bool is_up = p.state == hsm::PartitionState::kUp;
          bool first = it == last.end();
          if (is_up != was_up || (first && p.state != hsm::PartitionState::kStarting)) {
            audit::Entry e =
                audit::EventEntry(is_up ? audit::Event::kPartitionUp : audit::Event::kPartitionDown,
                                  p.name + " " + std::string(hsm::PartitionStateName(p.state)));
            if (!is_up && !p.last_error.empty()) e.detail += ": " + p.last_error;
            entries.push_back(std::move(e));
          }
          last[p.name] = p.state;
        }
        if (refusals_) refusals_->AddSummaries(&entries);
        if (!entries.empty()) audit_->AppendAsync(std::move(entries), nullptr);
        watch_cv_.WaitUntil(watch_mu_, std::chrono::steady_clock::now() + std::chrono::seconds(1));
      }
    });
  }

  void StopPartitionWatch() {
    {
      MutexLock lock(watch_mu_);
      watch_stop_ = true;
      watch_cv_.SignalAll();
    }
    if (partition_watch_.joinable()) partition_watch_.join();
  }

  // ---- End of the audit trail wiring. ----

  Status OpenQueue() {
    queue::QueueOptions q;
    q.path = config_.queue.path;
    q.high_watermark_count = config_.queue.high_watermark_documents;
    q.low_watermark_count = config_.queue.low_watermark_documents;
    q.high_watermark_bytes = config_.queue.high_watermark_bytes;
    q.low_watermark_bytes = config_.queue.low_watermark_bytes;
    q.min_free_bytes = config_.queue.min_free_bytes;
    q.max_attempts = config_.queue.max_attempts;
    q.initial_backoff = config_.queue.retry_backoff;
    q.commit_linger = config_.queue.commit_linger;
    q.retention = std::chrono::duration_cast<std::chrono::seconds>(config_.queue.retention);
    Result<std::unique_ptr<queue::Queue>> opened = queue::Queue::Open(q);
    if (!opened.ok()) return opened.status().WithContext("queue " + q.path);
    queue_ = std::move(*opened);
    return Status::Ok();
  }

  Status CreateSigner() {
    SignerInputs in = SignerInputsFor(config_);
    Result<std::unique_ptr<hsm::Signer>> signer =
        hsm::Signer::Create(in.options, std::move(in.partitions), std::move(in.keys));
    if (!signer.ok()) return signer.status().WithContext("hsm");
    signer_ = std::move(*signer);
    return Status::Ok();
  }

  // One outbox per watched root publishes what the engine seals (the engine finds it by the
  // record's client, the root); the watcher of that root only reads its inbox and hands the outbox
  // what a restart finds already finished.
  Status CreateWatchers() {
    for (const auto& w : config_.watches) {
      outboxes_.push_back(
          std::make_unique<publish::FolderOutbox>(w.root, queue_.get(), engine_.get()));
      ingest::WatchOptions o;
      o.root = w.root;
      o.profile = w.profile;
      o.poll_interval = w.poll_interval;
      o.max_file_bytes = w.max_file_bytes;
      if (w.owner_uid) o.owner_uid = static_cast<uid_t>(*w.owner_uid);
      o.metrics = metrics_.get();
      watchers_.push_back(
          std::make_unique<ingest::FolderWatcher>(o, queue_.get(), outboxes_.back().get()));
    }
    return Status::Ok();
  }

  Status CreateEngine() {
    engine::EngineOptions o;
    o.lease_batch = config_.engine.lease_batch;
    o.max_documents_in_flight = config_.engine.max_documents_in_flight;
    o.max_bytes_in_flight = config_.engine.max_bytes_in_flight;
    o.lease_duration = config_.queue.lease_duration;
    o.drain_timeout = config_.engine.drain_timeout;
    o.max_attempts = config_.queue.max_attempts;
    o.metrics = metrics_.get();
    o.audit = audit_.get();
    std::vector<engine::Profile> profiles;
    for (const auto& p : config_.profiles) {
      engine::Profile ep;
      ep.name = p.name;
      ep.format = p.format;
      ep.digest = p.digest;
      ep.scheme = p.scheme;
      ep.c14n = p.c14n;
      ep.key = p.key;
      if (p.level == "b-t" || p.level == "b-lt") {
        Result<tsa::TsaClient*> client = TsaClientFor(p);
        if (!client.ok()) return client.status().WithContext("profile \"" + p.name + "\"");
        ep.timestamps = *client;
        ep.timestamp_wait = p.timestamp_wait;
      }
      if (p.level == "b-lt") {
        Result<revocation::RevocationCache*> cache = RevocationFor(p.key);
        if (!cache.ok()) return cache.status().WithContext("profile \"" + p.name + "\"");
        ep.revocation = *cache;
      }
      profiles.push_back(std::move(ep));
    }
    for (auto& [pair, ep] : CscHashProfiles()) profiles.push_back(std::move(ep));
    // Called only once the engine runs, when the outboxes exist.
    auto lookup = [this](const queue::Record& r) -> publish::Publisher* {
      if (r.source == queue::Source::kBroker) return brokers_->PublisherFor(r);
      for (auto& outbox : outboxes_) {
        if (outbox->root() == r.client) return outbox.get();
      }
      return nullptr;
    };
    Result<std::unique_ptr<engine::Engine>> e =
        engine::Engine::Create(o, queue_.get(), signer_.get(), std::move(profiles), lookup);
    if (!e.ok()) return e.status().WithContext("engine");
    engine_ = std::move(*e);
    return Status::Ok();
  }

  // The revocation cache of a b-lt profile's key, one per key, started at once so that its first
  // fetches overlap the rest of startup (documents wait until it has current data).
  Result<revocation::RevocationCache*> RevocationFor(const std::string& key) {
    if (auto it = revocation_caches_.find(key); it != revocation_caches_.end()) {
      return it->second.get();
    }
    Result<hsm::KeyInfo> info = signer_->GetKey(key);
    if (!info.ok()) return info.status();
    revocation::RevocationOptions o = config_.revocation;
    o.name = key;
    // One directory per key ("" keeps the statuses in memory only).
    if (!o.store_dir.empty()) o.store_dir += "/" + SafeFileName(key);
    o.chain_der = info->certificate_chain_der;
    Result<std::unique_ptr<revocation::RevocationCache>> cache =
        revocation::RevocationCache::Create(std::move(o));
    if (!cache.ok()) return cache.status();
    (*cache)->Start();
    revocation::RevocationCache* raw = cache->get();
    revocation_caches_[key] = std::move(*cache);
    return raw;
  }

  // The time-stamp client of a b-t profile: its [[tsa]] sections in the profile's order, with the
  // [tsa_client] policy. Connections open with the first request.
  Result<tsa::TsaClient*> TsaClientFor(const ProfileConfig& p) {
    tsa::TsaClientOptions o = config_.tsa_client;
    o.tsas.clear();
    for (const std::string& name : p.tsa) {
      for (const tsa::TsaEndpoint& t : config_.tsas) {
        if (t.name == name) o.tsas.push_back(t);
      }
    }
    o.on_attempt = [m = metrics_.get(), profile = p.name](const std::string& tsa,
                                                          std::chrono::nanoseconds took) {
      m->ObserveTsaRequest(profile, tsa, took);
    };
    Result<std::unique_ptr<tsa::TsaClient>> client = tsa::TsaClient::Create(std::move(o));
    if (!client.ok()) return client.status().WithContext("tsa");
    tsa::TsaClient* raw = client->get();
    tsa_clients_[p.name] = std::move(*client);
    return raw;
  }

  // The CSC API's signHash profiles (docs/csc.md): one raw-signature profile per key, digest and
  // scheme the key can sign with, named "csc:KEY:DIGEST:SCHEME"; keyed by "KEY DIGEST/SCHEME".
  // None when [csc] is off.
  std::map<std::string, engine::Profile> CscHashProfiles() const {
    std::map<std::string, engine::Profile> out;
    if (!config_.csc.enabled) return out;
    for (const auto& k : config_.keys) {
      Result<hsm::KeyInfo> info = signer_->GetKey(k.name);
      if (!info.ok()) continue;  // the engine reports keys it cannot use
      std::vector<SignatureScheme> schemes = {SignatureScheme::kEcdsa};
      if (info->type == hsm::KeyType::kRsa) {
        schemes = {SignatureScheme::kRsaPkcs1v15, SignatureScheme::kRsaPss};
      }
      for (DigestAlgorithm d :
           {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384, DigestAlgorithm::kSha512}) {
        for (SignatureScheme scheme : schemes) {
          const std::string pair =
              std::string(DigestName(d)) + "/" + std::string(SchemeName(scheme));
          engine::Profile p;
          p.name = std::string(ingest::kCscNamePrefix) + k.name + ":" + std::string(DigestName(d)) +
                   ":" + std::string(SchemeName(scheme));
          p.format = std::string(formats::kRawSignatureFormat);
          p.digest = d;
          p.scheme = scheme;
          p.key = k.name;
          out.emplace(k.name + " " + pair, std::move(p));
        }
      }
    }
    return out;
  }

  ingest::CscOptions CscOptionsFor() const {
    ingest::CscOptions o;
    o.enabled = config_.csc.enabled;
    o.max_hashes = config_.csc.max_hashes;
    o.max_request_bytes = config_.server.max_batch_bytes;
    o.name = config_.csc.name;
    o.region = config_.csc.region;
    if (!o.enabled) return o;
    const std::map<std::string, engine::Profile> hash_profiles = CscHashProfiles();
    for (const auto& k : config_.keys) {
      Result<hsm::KeyInfo> info = signer_->GetKey(k.name);
      if (!info.ok()) continue;
      ingest::CscCredential c;
      c.id = k.name;
      c.key_type = info->type == hsm::KeyType::kRsa ? "rsa" : "ec";
      c.key_bits = info->bits;
      c.curve = info->curve;
      c.certificate_chain_der = info->certificate_chain_der;
      for (const auto& p : config_.profiles) {
        if (p.key == k.name) c.profiles.push_back(p.name);
      }
      const std::string prefix = k.name + " ";
      for (const auto& [key, p] : hash_profiles) {
        if (key.rfind(prefix, 0) == 0) c.hash_profiles[key.substr(prefix.size())] = p.name;
      }
      o.credentials.push_back(std::move(c));
    }
    return o;
  }

  Status CreateApi() {
    ingest::ApiServerOptions api;
    QSEAL_RETURN_IF_ERROR(SplitHostPort(config_.server.listen, &api.host, &api.port));
    api_host_ = api.host;
    api.max_header_bytes = config_.server.max_header_bytes;
    api.max_body_bytes = config_.server.max_body_bytes;
    api.header_timeout = config_.server.header_timeout;
    api.body_timeout = config_.server.body_timeout;
    api.max_connections = config_.server.max_connections;
    api.max_connections_per_source = config_.server.max_connections_per_source;
    api.client_requests_per_second = config_.server.client_requests_per_second;
    api.client_burst = config_.server.client_burst;
    api.threads = config_.server.threads;
    api.max_wait = config_.server.max_wait;
    api.max_batch_parts = config_.server.max_batch_parts;
    api.max_batch_bytes = config_.server.max_batch_bytes;
    api.max_batch_part_bytes = config_.server.max_batch_part_bytes;
    api.tls_certificate_file = config_.server.tls_certificate;
    api.tls_key_file = config_.server.tls_key;
    api.client_ca_file = config_.server.client_ca;
    api.require_client_certificate = config_.server.require_client_certificate;
    if (api.tls_certificate_file.empty()) {
      LogWarn("the API serves plaintext HTTP (no [server] tls_certificate)",
              {{"listen", config_.server.listen}});
    }
    api.metrics = metrics_.get();
    api.seal_namer = engine_.get();
    api.csc = CscOptionsFor();
    if (audit_) {
      api.on_refusal = [this](std::string_view kind, std::string_view client,
                              std::string_view profile, std::string_view reason,
                              std::string_view source) {
        refusals_->Record(kind, client, profile, reason, source);
      };
    }
    for (const auto& c : config_.clients) {
      ingest::ApiClient client;
      client.name = c.name;
      client.profiles = c.profiles;
      client.certificate_subject = c.certificate_subject;
      std::string hex = c.token_sha256;
      if (!c.token_sha256_file.empty()) {
        QSEAL_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(c.token_sha256_file));
        hex = Trim(text);
      }
      if (!hex.empty()) {
        Result<Bytes> hash = HexDecode(hex);
        if (!hash.ok() || hash->size() != 32) {
          return InvalidArgumentError("client \"" + c.name + "\": token hash is not 64 hex digits");
        }
        client.token_sha256 = std::move(*hash);
      }
      if (!c.certificate_spki_sha256.empty()) {
        Result<Bytes> pin = HexDecode(c.certificate_spki_sha256);
        if (!pin.ok() || pin->size() != 32) {
          return InvalidArgumentError("client \"" + c.name +
                                      "\": certificate_spki_sha256 is not 64 hex digits");
        }
        client.certificate_spki_sha256 = std::move(*pin);
      }
      api.clients.push_back(std::move(client));
    }
    for (const auto& p : config_.profiles) {
      ingest::ApiProfile ap;
      ap.name = p.name;
      ap.format = p.format;
      ap.digest = std::string(DigestName(p.digest));
      ap.scheme = std::string(SchemeName(p.scheme));
      ap.level = p.level;
      for (const auto& k : config_.keys) {
        if (k.name == p.key) {
          Result<std::string> pem = ReadSmallFile(k.certificate_chain);
          if (pem.ok()) ap.certificate_chain_pem = *pem;
        }
      }
      api.profiles.push_back(std::move(ap));
    }
    api_ = std::make_unique<ingest::ApiServer>(api, queue_.get(), [this]() -> Status {
      QSEAL_RETURN_IF_ERROR(signer_->Health());
      if (!signer_->Ready()) return UnavailableError("no HSM partition has passed its self-test");
      if (audit_) QSEAL_RETURN_IF_ERROR(audit_->Health());
      return Status::Ok();
    });
    return Status::Ok();
  }

  Config config_;
  std::string api_host_;
  bool stopped_ = false;
  // Declared before everything that counts into it, so it is destroyed after them.
  std::unique_ptr<metrics::Metrics> metrics_;
  // Outlives the engine and the API server, which write to it.
  std::unique_ptr<audit::AuditLog> audit_;
  std::unique_ptr<RefusalAudit> refusals_;  // with the audit trail
  std::thread partition_watch_;
  Mutex watch_mu_;
  CondVar watch_cv_;
  bool watch_stop_ QSEAL_GUARDED_BY(watch_mu_) = false;
  std::unique_ptr<queue::Queue> queue_;
  std::unique_ptr<hsm::Signer> signer_;
  // Outlive the watchers and the engine, which publish through them.
  std::vector<std::unique_ptr<publish::FolderOutbox>> outboxes_;
  std::vector<std::unique_ptr<ingest::FolderWatcher>> watchers_;
  // Broker sources and their result publishers; outlive the engine, which publishes through them.
  std::unique_ptr<Brokers> brokers_;
  // One RFC 3161 client per b-t profile (its own TSA order), by profile name; before engine_,
  // so the engine goes first.
  std::map<std::string, std::unique_ptr<tsa::TsaClient>> tsa_clients_;
  // b-lt profiles' revocation data, by key name; outlives the engine.
  std::map<std::string, std::unique_ptr<revocation::RevocationCache>> revocation_caches_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<ingest::ApiServer> api_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::unique_ptr<MetricsBridge> bridge_;
  std::string metrics_host_;
};

Daemon::Daemon(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Daemon::~Daemon() = default;
Status Daemon::Start() { return impl_->Start(); }
Status Daemon::Stop() { return impl_->Stop(); }
Status Daemon::ReloadTls() { return impl_->ReloadTls(); }
Status Daemon::Fatal(int* exit_code) const { return impl_->Fatal(exit_code); }

}  // namespace qseal::daemon
