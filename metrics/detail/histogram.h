// AtomicHistogram: a Prometheus histogram whose Observe is a few relaxed atomic adds.
//
// prometheus-cpp 1.0's Histogram locks a mutex on every observation; the pipeline observes several
// histograms per document from many threads, so ours keeps one atomic counter per bucket and an
// integer sum instead. Values are integers in a base unit (nanoseconds, documents); bucket i
// holds values <= base << i, the last one (+Inf) everything above. Collect reads the buckets and
// derives the count from them, so count and buckets always agree; the sum may lag by the
// observations in progress.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace qseal::metrics::detail {

struct HistogramShape {
  std::uint64_t base = 1;   // upper bound of the first bucket, in units
  std::size_t buckets = 1;  // finite buckets: base, 2 base, 4 base, ...
  double unit = 1.0;        // one unit in the exposed base unit (1e-9 for nanoseconds -> seconds)
};

// 100 µs, 200 µs, ... 26.2 s (+Inf).
inline constexpr HistogramShape kSecondsShape{100'000, 19, 1e-9};
// 1, 2, 4, ... 4096 documents (+Inf).
inline constexpr HistogramShape kBatchShape{1, 13, 1.0};

class AtomicHistogram {
 public:
  explicit AtomicHistogram(HistogramShape shape)
      : shape_(shape), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(shape.buckets + 1)) {
    for (std::size_t i = 0; i <= shape_.buckets; ++i)
      counts_[i].store(0, std::memory_order_relaxed);
  }

  void Observe(std::uint64_t value) {
    std::size_t index = 0;
    if (value > shape_.base) {
      index = static_cast<std::size_t>(std::bit_width((value - 1) / shape_.base));
      if (index > shape_.buckets) index = shape_.buckets;
    }
    counts_[index].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  struct Snapshot {
    std::vector<std::pair<double, std::uint64_t>> cumulative;  // (upper bound, count <= bound)
    std::uint64_t count = 0;                                   // includes +Inf
    double sum = 0;
  };

  Snapshot Read() const {
    Snapshot s;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < shape_.buckets; ++i) {
      running += counts_[i].load(std::memory_order_relaxed);
      const double bound = static_cast<double>(shape_.base << i) * shape_.unit;
      s.cumulative.emplace_back(bound, running);
    }
    running += counts_[shape_.buckets].load(std::memory_order_relaxed);
    s.count = running;
    s.sum = static_cast<double>(sum_.load(std::memory_order_relaxed)) * shape_.unit;
    return s;
  }

 private:
  const HistogramShape shape_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> sum_{0};
};

}  // namespace qseal::metrics::detail
