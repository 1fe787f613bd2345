// Metrics::Impl: what metrics.cc and metrics_server.cc share. Implementation only.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "common/mutex.h"
#include "metrics/detail/histogram.h"
#include "metrics/detail/series_index.h"
#include "metrics/metrics.h"

namespace qseal::metrics {

namespace detail {

// A labelled counter family: prometheus-cpp owns the series, the index finds them lock-free.
template <std::size_t N>
class CounterFamily {
 public:
  CounterFamily(prometheus::Registry& registry, const std::string& name, const std::string& help,
                std::array<std::string, N> label_names)
      : family_(&prometheus::BuildCounter().Name(name).Help(help).Register(registry)),
        names_(std::move(label_names)),
        index_([this](const std::array<std::string, N>& values) {
          prometheus::Labels labels;
          for (std::size_t i = 0; i < N; ++i) labels[names_[i]] = values[i];
          return &family_->Add(labels);
        }) {}

  prometheus::Counter* Get(const std::array<std::string_view, N>& values) {
    return index_.Get(values);
  }

 private:
  prometheus::Family<prometheus::Counter>* family_;
  std::array<std::string, N> names_;
  SeriesIndex<prometheus::Counter, N> index_;
};

// A labelled histogram family of AtomicHistograms, collected by hand.
template <std::size_t N>
class HistogramFamily {
 public:
  HistogramFamily(std::string name, std::string help, std::array<std::string, N> label_names,
                  HistogramShape shape)
      : name_(std::move(name)),
        help_(std::move(help)),
        names_(std::move(label_names)),
        shape_(shape),
        index_([this](const std::array<std::string, N>& values) {
          auto series = std::make_unique<Series>(values, shape_);
          AtomicHistogram* h = &series->histogram;
          MutexLock lock(mu_);
          series_.push_back(std::move(series));
          return h;
        }) {}

  AtomicHistogram* Get(const std::array<std::string_view, N>& values) { return index_.Get(values); }

  const std::string& name() const { return name_; }

  prometheus::MetricFamily Collect() const;

 private:
  struct Series {
    Series(const std::array<std::string, N>& v, HistogramShape s) : values(v), histogram(s) {}
    std::array<std::string, N> values;
    AtomicHistogram histogram;
  };

  const std::string name_;
  const std::string help_;
  const std::array<std::string, N> names_;
  const HistogramShape shape_;
  mutable Mutex mu_;
  std::deque<std::unique_ptr<Series>> series_ QSEAL_GUARDED_BY(mu_);
  SeriesIndex<AtomicHistogram, N> index_;
};

prometheus::ClientMetric CollectHistogram(const AtomicHistogram& h);

template <std::size_t N>
prometheus::MetricFamily HistogramFamily<N>::Collect() const {
  prometheus::MetricFamily f;
  f.name = name_;
  f.help = help_;
  f.type = prometheus::MetricType::Histogram;
  MutexLock lock(mu_);
  for (const auto& s : series_) {
    prometheus::ClientMetric m = CollectHistogram(s->histogram);
    for (std::size_t i = 0; i < N; ++i) m.label.push_back({names_[i], s->values[i]});
    std::sort(m.label.begin(), m.label.end());
    f.metric.push_back(std::move(m));
  }
  return f;
}

}  // namespace detail

class Metrics::Impl {
 public:
  Impl();

  // Everything, in exposition order: registry families, histograms, snapshot families. Families
  // that have no series yet are still listed (HELP and TYPE only) so dashboards and tests see the
  // full set of names from the first scrape.
  std::vector<prometheus::MetricFamily> Collect() const;

  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  detail::CounterFamily<2> accepted;        // source, profile
  detail::CounterFamily<1> accepted_bytes;  // source
  detail::CounterFamily<2> rejected;        // source, code
  detail::CounterFamily<2> sealed;          // source, profile
  detail::CounterFamily<3> failed;          // source, profile, code
  detail::CounterFamily<3> requeued;        // source, profile, code
  detail::CounterFamily<3> http_requests;   // route, method, status_class

  detail::HistogramFamily<1> accept_to_sealed;  // profile
  detail::HistogramFamily<2> http_duration;     // route, method
  detail::HistogramFamily<2> tsa_duration;      // profile, tsa
  detail::AtomicHistogram queue_wait{detail::kSecondsShape};
  detail::AtomicHistogram hash{detail::kSecondsShape};
  detail::AtomicHistogram sign{detail::kSecondsShape};
  detail::AtomicHistogram batch_size{detail::kBatchShape};

  // Name, help and type of every event family, for the empty-family listing and to keep snapshot
  // sources from shadowing them.
  struct Declared {
    std::string name;
    std::string help;
    prometheus::MetricType type;
  };
  std::vector<Declared> declared;

  mutable Mutex sources_mu;
  std::vector<SnapshotSource> sources QSEAL_GUARDED_BY(sources_mu);
  // Snapshot names already reported as bad, so each is logged once.
  mutable std::set<std::string> reported QSEAL_GUARDED_BY(sources_mu);
};

}  // namespace qseal::metrics
