#include "metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <openssl/crypto.h>
#include <prometheus/text_serializer.h>

#include "common/log.h"
#include "metrics/detail/metrics_impl.h"

#ifndef QSEAL_VERSION
#define QSEAL_VERSION "unknown"
#endif

namespace qseal::metrics {
namespace {

using prometheus::MetricType;

std::uint64_t Nanos(std::chrono::nanoseconds d) {
  return d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
}

std::string_view StatusClass(int status) {
  switch (status / 100) {
    case 1:
      return "1xx";
    case 2:
      return "2xx";
    case 3:
      return "3xx";
    case 4:
      return "4xx";
    case 5:
      return "5xx";
    default:
      return "other";
  }
}

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view name) {
  if (name.size() >= 2 && name.substr(0, 2) == "__") return false;
  return ValidMetricName(name) && name.find(':') == std::string_view::npos;
}

// Groups the samples of the snapshot sources into families, in first-seen order.
class FamilyWriter final : public SnapshotWriter {
 public:
  FamilyWriter(const std::vector<Metrics::Impl::Declared>& declared,
               std::set<std::string>& reported)
      : declared_(declared), reported_(reported) {}

  void Gauge(std::string_view name, std::string_view help, const Labels& labels,
             double value) override {
    Add(name, help, labels, value, MetricType::Gauge);
  }
  void Counter(std::string_view name, std::string_view help, const Labels& labels,
               double value) override {
    Add(name, help, labels, value, MetricType::Counter);
  }

  void DeclareGauge(std::string_view name, std::string_view help) override {
    Family(name, help, MetricType::Gauge);
  }
  void DeclareCounter(std::string_view name, std::string_view help) override {
    Family(name, help, MetricType::Counter);
  }

  std::vector<prometheus::MetricFamily> Take() { return std::move(families_); }

 private:
  void Reject(std::string_view name, std::string_view why) {
    std::string key(name);
    if (reported_.insert(key).second) {
      LogWarn("metrics: snapshot sample dropped", {{"metric", key}, {"reason", why}});
    }
  }

  // The family of `name`, created on first use; nullptr when the name or type is refused.
  prometheus::MetricFamily* Family(std::string_view name, std::string_view help, MetricType type) {
    auto it = index_.find(name);
    if (it != index_.end()) {
      prometheus::MetricFamily& f = families_[it->second];
      if (f.type != type) {
        Reject(name, "gauge and counter under one name");
        return nullptr;
      }
      if (f.help.empty()) f.help = std::string(help);
      return &f;
    }
    if (!ValidMetricName(name) || name.substr(0, 6) != "qseal_") {
      Reject(name, "name must match [a-zA-Z_:][a-zA-Z0-9_:]* and start with qseal_");
      return nullptr;
    }
    if (type == MetricType::Counter &&
        (name.size() < 6 || name.substr(name.size() - 6) != "_total")) {
      Reject(name, "counter name must end in _total");
      return nullptr;
    }
    for (const auto& d : declared_) {
      if (d.name == name) {
        Reject(name, "name belongs to an event metric");
        return nullptr;
      }
    }
    prometheus::MetricFamily f;
    f.name = std::string(name);
    f.help = std::string(help);
    f.type = type;
    families_.push_back(std::move(f));
    index_.emplace(std::string(name), families_.size() - 1);
    return &families_.back();
  }

  void Add(std::string_view name, std::string_view help, const Labels& labels, double value,
           MetricType type) {
    prometheus::ClientMetric m;
    for (const auto& [label_name, label_value] : labels) {
      if (!ValidLabelName(label_name)) return Reject(name, "bad label name");
      m.label.push_back({label_name, label_value});
    }
    prometheus::MetricFamily* f = Family(name, help, type);
    if (f == nullptr) return;
    std::sort(m.label.begin(), m.label.end());
    for (const auto& existing : f->metric) {
      if (existing.label == m.label) return Reject(name, "duplicate label set");
    }
    if (type == MetricType::Counter) {
      m.counter.value = value;
    } else {
      m.gauge.value = value;
    }
    f->metric.push_back(std::move(m));
  }

  const std::vector<Metrics::Impl::Declared>& declared_;
  std::set<std::string>& reported_;
  std::vector<prometheus::MetricFamily> families_;
  std::map<std::string, std::size_t, std::less<>> index_;
};

}  // namespace

namespace detail {

prometheus::ClientMetric CollectHistogram(const AtomicHistogram& h) {
  AtomicHistogram::Snapshot s = h.Read();
  prometheus::ClientMetric m;
  for (const auto& [bound, count] : s.cumulative) m.histogram.bucket.push_back({count, bound});
  m.histogram.bucket.push_back({s.count, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = s.count;
  m.histogram.sample_sum = s.sum;
  return m;
}

}  // namespace detail

namespace {

// Name and help of every event family, in one place.
struct FamilyText {
  const char* name;
  const char* help;
};
constexpr FamilyText kAccepted{"qseal_documents_accepted_total",
                               "Documents accepted (durably queued) by a door."};
constexpr FamilyText kAcceptedBytes{"qseal_documents_accepted_bytes_total",
                                    "Bytes of the documents accepted by a door."};
constexpr FamilyText kRejected{
    "qseal_documents_rejected_total",
    "Documents refused at a door before queueing (code: HTTP status or reason)."};
constexpr FamilyText kSealed{"qseal_documents_sealed_total", "Documents sealed and committed."};
constexpr FamilyText kFailed{"qseal_documents_failed_total",
                             "Documents that failed for good (code: status code name)."};
constexpr FamilyText kRequeued{"qseal_documents_requeued_total",
                               "Transient failures sent back to the queue with back-off."};
constexpr FamilyText kHttpRequests{"qseal_http_requests_total",
                                   "HTTP API requests by route template, method and status class."};
constexpr FamilyText kAcceptToSealed{"qseal_document_accept_to_sealed_seconds",
                                     "Time from acceptance to committed seal, per document."};
constexpr FamilyText kHttpDuration{"qseal_http_request_duration_seconds",
                                   "HTTP API request latency, per request."};
constexpr FamilyText kTsaDuration{
    "qseal_tsa_request_duration_seconds",
    "Time-stamp request latency per attempt: sent to answer (or transport failure)."};
constexpr FamilyText kQueueWait{"qseal_queue_wait_seconds",
                                "Time from record creation to lease, per document."};
constexpr FamilyText kHash{"qseal_engine_hash_seconds", "Time to read and hash one document."};
constexpr FamilyText kSign{
    "qseal_hsm_sign_seconds",
    "Time from sign request submitted to signature back, including HSM queueing."};
constexpr FamilyText kBatch{"qseal_engine_batch_size_documents", "Documents per engine batch."};
constexpr FamilyText kBuildInfo{"qseal_build_info",
                                "Build information: version and OpenSSL version (value 1)."};

}  // namespace

Metrics::Impl::Impl()
    : accepted(*registry, kAccepted.name, kAccepted.help, {"source", "profile"}),
      accepted_bytes(*registry, kAcceptedBytes.name, kAcceptedBytes.help, {"source"}),
      rejected(*registry, kRejected.name, kRejected.help, {"source", "code"}),
      sealed(*registry, kSealed.name, kSealed.help, {"source", "profile"}),
      failed(*registry, kFailed.name, kFailed.help, {"source", "profile", "code"}),
      requeued(*registry, kRequeued.name, kRequeued.help, {"source", "profile", "code"}),
      http_requests(*registry, kHttpRequests.name, kHttpRequests.help,
                    {"route", "method", "status_class"}),
      accept_to_sealed(kAcceptToSealed.name, kAcceptToSealed.help, {"profile"},
                       detail::kSecondsShape),
      http_duration(kHttpDuration.name, kHttpDuration.help, {"route", "method"},
                    detail::kSecondsShape),
      tsa_duration(kTsaDuration.name, kTsaDuration.help, {"profile", "tsa"},
                   detail::kSecondsShape) {
  for (const FamilyText& t :
       {kAccepted, kAcceptedBytes, kRejected, kSealed, kFailed, kRequeued, kHttpRequests}) {
    declared.push_back({t.name, t.help, MetricType::Counter});
  }
  for (const FamilyText& t :
       {kAcceptToSealed, kHttpDuration, kTsaDuration, kQueueWait, kHash, kSign, kBatch}) {
    declared.push_back({t.name, t.help, MetricType::Histogram});
  }
  declared.push_back({kBuildInfo.name, kBuildInfo.help, MetricType::Gauge});
  prometheus::BuildGauge()
      .Name(kBuildInfo.name)
      .Help(kBuildInfo.help)
      .Register(*registry)
      .Add({{"version", QSEAL_VERSION}, {"openssl_version", OpenSSL_version(OPENSSL_VERSION)}})
      .Set(1);
}

std::vector<prometheus::MetricFamily> Metrics::Impl::Collect() const {
  std::vector<prometheus::MetricFamily> out = registry->Collect();
  out.push_back(accept_to_sealed.Collect());
  out.push_back(http_duration.Collect());
  out.push_back(tsa_duration.Collect());
  auto single = [](const FamilyText& t, const detail::AtomicHistogram& h) {
    prometheus::MetricFamily f;
    f.name = t.name;
    f.help = t.help;
    f.type = MetricType::Histogram;
    f.metric.push_back(detail::CollectHistogram(h));
    return f;
  };
  out.push_back(single(kQueueWait, queue_wait));
  out.push_back(single(kHash, hash));
  out.push_back(single(kSign, sign));
  out.push_back(single(kBatch, batch_size));
  // prometheus-cpp leaves out families without series; list them anyway (HELP and TYPE only).
  for (const Declared& d : declared) {
    const bool present =
        std::any_of(out.begin(), out.end(),
                    [&](const prometheus::MetricFamily& f) { return f.name == d.name; });
    if (present) continue;
    prometheus::MetricFamily f;
    f.name = d.name;
    f.help = d.help;
    f.type = d.type;
    out.push_back(std::move(f));
  }
  // Sources run one scrape at a time; they only read their components' counters.
  MutexLock lock(sources_mu);
  FamilyWriter writer(declared, reported);
  for (const auto& fill : sources) fill(writer);
  for (auto& f : writer.Take()) out.push_back(std::move(f));
  return out;
}

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::DocumentAccepted(std::string_view source, std::string_view profile,
                               std::uint64_t bytes) {
  impl_->accepted.Get({source, profile})->Increment();
  impl_->accepted_bytes.Get({source})->Increment(static_cast<double>(bytes));
}

void Metrics::DocumentRejected(std::string_view source, std::string_view code) {
  impl_->rejected.Get({source, code})->Increment();
}

void Metrics::DocumentSealed(std::string_view source, std::string_view profile,
                             std::chrono::nanoseconds accept_to_sealed) {
  impl_->sealed.Get({source, profile})->Increment();
  impl_->accept_to_sealed.Get({profile})->Observe(Nanos(accept_to_sealed));
}

void Metrics::DocumentFailed(std::string_view source, std::string_view profile,
                             std::string_view code) {
  impl_->failed.Get({source, profile, code})->Increment();
}

void Metrics::DocumentRequeued(std::string_view source, std::string_view profile,
                               std::string_view code) {
  impl_->requeued.Get({source, profile, code})->Increment();
}

void Metrics::ObserveQueueWait(std::chrono::nanoseconds wait) {
  impl_->queue_wait.Observe(Nanos(wait));
}
void Metrics::ObserveHash(std::chrono::nanoseconds duration) {
  impl_->hash.Observe(Nanos(duration));
}
void Metrics::ObserveSign(std::chrono::nanoseconds duration) {
  impl_->sign.Observe(Nanos(duration));
}
void Metrics::ObserveBatchSize(std::size_t documents) { impl_->batch_size.Observe(documents); }

void Metrics::HttpRequest(std::string_view route, std::string_view method, int status,
                          std::chrono::nanoseconds duration) {
  impl_->http_requests.Get({route, method, StatusClass(status)})->Increment();
  impl_->http_duration.Get({route, method})->Observe(Nanos(duration));
}

void Metrics::ObserveTsaRequest(std::string_view profile, std::string_view tsa,
                                std::chrono::nanoseconds duration) {
  impl_->tsa_duration.Get({profile, tsa})->Observe(Nanos(duration));
}

void Metrics::DeclareProfile(std::string_view profile) {
  for (std::string_view source : {std::string_view("api"), std::string_view("watch")}) {
    impl_->accepted.Get({source, profile});
    impl_->sealed.Get({source, profile});
    impl_->accepted_bytes.Get({source});
  }
}

void Metrics::AddSnapshotSource(SnapshotSource fill) {
  MutexLock lock(impl_->sources_mu);
  impl_->sources.push_back(std::move(fill));
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(impl_->Collect());
}

}  // namespace qseal::metrics
