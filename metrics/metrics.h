// Metrics: every qseal_* Prometheus metric of one process, and the /metrics listener.
//
// Two kinds of metrics live here:
//  - event metrics, counted where the event happens (a document accepted, sealed, failed; an HTTP
//    request; the time a document spent hashing). The components call the typed methods of
//    Metrics below; each call is a handful of relaxed atomic operations once the label set has been
//    seen, so counting never serialises the pipeline (no lock per document);
//  - snapshot metrics, read at scrape time from whatever holds the state (queue depth, partition
//    health, sessions busy, watcher inbox, certificate not-after, /proc). A snapshot source is a
//    callback that writes gauges and counters into a SnapshotWriter; daemon/metrics_bridge.h
//    registers the ones that read the components' Stats().
//
// Names follow qseal_<component>_<what>_<unit>: base units (seconds, bytes), counters end in
// _total, and every label has a bounded set of values (source, profile, code, route, method,
// status_class, partition, key, state, stage). Callers must never pass document names, file paths,
// client tokens or PINs as label values.
//
// This component sits below queue/, hsm/, formats/ and engine/ (DESIGN.md §4): it knows none of
// their types.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace boost::asio::ssl {
class context;
}

namespace qseal::metrics {

// One label of a snapshot sample: {"partition", "p1"}.
using Label = std::pair<std::string, std::string>;
using Labels = std::vector<Label>;

// Collects the samples that snapshot sources write at scrape time. Samples with the same name form
// one family (the first call's help text and type win); a name registered as an event metric or
// with the other type is dropped and logged once, so a bad source cannot break the exposition.
// Not thread-safe; owned by one scrape.
class SnapshotWriter {
 public:
  virtual ~SnapshotWriter() = default;
  // A value that goes up and down (queue depth, sessions busy, not-after seconds).
  virtual void Gauge(std::string_view name, std::string_view help, const Labels& labels,
                     double value) = 0;
  // A monotonic total kept by someone else (sign errors counted by the signer). `name` must end in
  // _total.
  virtual void Counter(std::string_view name, std::string_view help, const Labels& labels,
                       double value) = 0;
  // Lists a family even when it has no samples in this scrape (HELP and TYPE lines only), so
  // dashboards and alerts can rely on the name from the first scrape (e.g. errors by CKR_* name
  // before the first error). Samples added under the name later fill it.
  virtual void DeclareGauge(std::string_view name, std::string_view help) = 0;
  virtual void DeclareCounter(std::string_view name, std::string_view help) = 0;
};

using SnapshotSource = std::function<void(SnapshotWriter&)>;

// All qseal_* metrics of one process.
//
// Event methods: the first call with a new label combination takes a mutex to create the series;
// later calls find it in an immutable, atomically published index and touch only atomics.
// Histograms (seconds: exponential buckets 100 µs × 2^k up to ~52 s; batch size: 1, 2, 4 … 4096)
// are lock-free too (prometheus-cpp 1.0's Histogram locks a mutex per observation, so ours are
// atomic bucket arrays collected into the same exposition).
//
// Thread-safe: every method may be called from any thread.
class Metrics {
 public:
  // Builds the registry and families, and the build info gauge
  // qseal_build_info{version, openssl_version} 1.
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Doors (source = "api" | "watch" | "broker").
  // qseal_documents_accepted_total{source,profile}, qseal_documents_accepted_bytes_total{source}.
  void DocumentAccepted(std::string_view source, std::string_view profile, std::uint64_t bytes);
  // qseal_documents_rejected_total{source,code}; code is bounded: "401", "403", "413", "422",
  // "503", "too_large", ...
  void DocumentRejected(std::string_view source, std::string_view code);

  // Engine.
  // qseal_documents_sealed_total{source,profile} and
  // qseal_document_accept_to_sealed_seconds{profile} (histogram).
  void DocumentSealed(std::string_view source, std::string_view profile,
                      std::chrono::nanoseconds accept_to_sealed);
  // qseal_documents_failed_total{source,profile,code}; code = StatusCodeName (final failures).
  void DocumentFailed(std::string_view source, std::string_view profile, std::string_view code);
  // qseal_documents_requeued_total{source,profile,code}: transient failures sent back with
  // back-off.
  void DocumentRequeued(std::string_view source, std::string_view profile, std::string_view code);
  // qseal_queue_wait_seconds: record created -> leased.
  void ObserveQueueWait(std::chrono::nanoseconds wait);
  // qseal_engine_hash_seconds: reading and hashing one document.
  void ObserveHash(std::chrono::nanoseconds duration);
  // qseal_hsm_sign_seconds: submit -> signature back (includes HSM queueing).
  void ObserveSign(std::chrono::nanoseconds duration);
  // qseal_engine_batch_size_documents: documents per lease / commit batch.
  void ObserveBatchSize(std::size_t documents);

  // qseal_tsa_request_duration_seconds{profile,tsa}: one time-stamp attempt, sent -> answer
  // (or transport failure), before the token is verified.
  void ObserveTsaRequest(std::string_view profile, std::string_view tsa,
                         std::chrono::nanoseconds duration);

  // HTTP. `route` is the route template ("/v1/documents/{id}"), never the raw target.
  // qseal_http_requests_total{route,method,status_class} and
  // qseal_http_request_duration_seconds{route,method} (histogram).
  void HttpRequest(std::string_view route, std::string_view method, int status,
                   std::chrono::nanoseconds duration);

  // Creates the accepted and sealed series of `profile` for both sources at 0, so they exist (and
  // rate() has a starting point) before the first document. Optional.
  void DeclareProfile(std::string_view profile);

  // Adds a callback run at every scrape (from the scraping thread). It must be cheap, must not
  // block on the pipeline, and must stay valid until the Metrics object is destroyed (or until the
  // MetricsServer is stopped, whichever is first).
  void AddSnapshotSource(SnapshotSource fill);

  // Everything in the Prometheus text exposition format (version 0.0.4).
  std::string Serialize() const;

  class Impl;  // metrics/detail/metrics_impl.h

 private:
  std::unique_ptr<Impl> impl_;
};

struct MetricsServerOptions {
  // Listen address; port 0 picks a free port (tests). Default: 127.0.0.1.
  std::string host = "127.0.0.1";
  // Default: 9464.
  std::uint16_t port = 9464;
  // Threads serving scrapes. Default: 1.
  int threads = 1;
  // HTTPS: the server TLS context (certificate, key, policy, optional client CA) every scrape
  // connection handshakes with; null: plaintext HTTP. Default: null.
  std::shared_ptr<boost::asio::ssl::context> tls;
};

// GET /metrics on its own address, separate from the API; nothing secret is ever exported. With
// options.tls, HTTPS only (and with a client CA in that context, only scrapers with a certificate
// it verifies). Other paths answer 404.
// Thread-safe: Start/Stop/port may be called from any thread; `metrics` must outlive the server.
class MetricsServer {
 public:
  MetricsServer(MetricsServerOptions options, Metrics* metrics);
  ~MetricsServer();  // Stop()s.
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds and starts serving. kUnavailable when the address cannot be bound (in use, bad host).
  Status Start();
  // The bound port (after Start), e.g. the one picked for port 0.
  std::uint16_t port() const;
  // Stops serving and joins the threads. Idempotent.
  void Stop();
  // A renewed certificate (SIGHUP): connections accepted from now on handshake with `tls`; open
  // ones keep the context they started with. kFailedPrecondition when the server has no TLS or
  // `tls` is null.
  Status ReloadTls(std::shared_ptr<boost::asio::ssl::context> tls);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// A snapshot source of process metrics read from /proc/self: qseal_process_cpu_seconds_total,
// qseal_process_resident_memory_bytes, qseal_process_virtual_memory_bytes, qseal_process_open_fds,
// qseal_process_max_fds, qseal_process_start_time_seconds (since the epoch), qseal_process_threads.
// A file that cannot be read leaves its metric out of that scrape.
SnapshotSource ProcessMetricsSource();

}  // namespace qseal::metrics
