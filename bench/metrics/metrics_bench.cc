// Cost of metrics per sealed document, against the document's own cost measured in the same run.
//
// BM_MetricsPerDocument makes exactly the calls one document costs on its way through qseald
// (API: DocumentAccepted + HttpRequest for the POST and for the seal GET; engine: ObserveQueueWait,
// ObserveHash, ObserveSign, DocumentSealed). The baseline is the least work a document costs
// without any HSM, queue or network: SHA-256 of 4 KiB and one ECDSA P-256 signature in software
// (OpenSSL). The real per-document cost (SoftHSM2 or a network HSM, a synced queue commit, HTTP)
// is higher, so the reported share is an upper bound.
//
// Counters: metrics_ns_per_doc, baseline_ns_per_doc and metrics_share_percent (their ratio).
// With threads, every thread counts into the same Metrics object (no lock per document).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <prometheus/histogram.h>

#include "metrics/detail/histogram.h"
#include "metrics/metrics.h"

namespace qseal::metrics {
namespace {

using Clock = std::chrono::steady_clock;

// One document's metric calls, as the API server and the engine make them.
inline void CountOneDocument(Metrics& m, std::uint64_t i) {
  const auto d = std::chrono::microseconds(100 + (i & 1023));
  m.DocumentAccepted("api", "default", 4096);
  m.HttpRequest("/v1/documents", "POST", 202, d);
  m.ObserveQueueWait(d);
  m.ObserveHash(d);
  m.ObserveSign(d * 3);
  m.DocumentSealed("api", "default", d * 10);
  m.HttpRequest("/v1/documents/{id}/seal", "GET", 200, d);
}

// Software baseline: hash 4 KiB and sign the digest with ECDSA P-256.
class Baseline {
 public:
  Baseline() : doc_(4096, 'd') {
    EVP_PKEY_CTX* kctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
    EVP_PKEY_keygen_init(kctx);
    EVP_PKEY_CTX_set_group_name(kctx, "P-256");
    EVP_PKEY_generate(kctx, &key_);
    EVP_PKEY_CTX_free(kctx);
  }
  ~Baseline() { EVP_PKEY_free(key_); }

  std::size_t SignOne() {
    unsigned char digest[32];
    unsigned int digest_len = 0;
    EVP_Digest(doc_.data(), doc_.size(), digest, &digest_len, EVP_sha256(), nullptr);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key_, nullptr);
    EVP_PKEY_sign_init(ctx);
    unsigned char sig[80];
    std::size_t sig_len = sizeof sig;
    EVP_PKEY_sign(ctx, sig, &sig_len, digest, digest_len);
    EVP_PKEY_CTX_free(ctx);
    return sig_len;
  }

 private:
  std::string doc_;
  EVP_PKEY* key_ = nullptr;
};

// The fastest of a few rounds: the machine is shared, and a slow round would flatter the ratio.
double BaselineNsPerDoc() {
  static const double ns = [] {
    Baseline b;
    constexpr int kDocs = 1000;
    std::size_t sink = 0;
    double best = 0;
    for (int i = 0; i < 100; ++i) sink += b.SignOne();  // warm up
    for (int round = 0; round < 5; ++round) {
      const auto start = Clock::now();
      for (int i = 0; i < kDocs; ++i) sink += b.SignOne();
      const double t =
          std::chrono::duration<double, std::nano>(Clock::now() - start).count() / kDocs;
      if (round == 0 || t < best) best = t;
    }
    benchmark::DoNotOptimize(sink);
    return best;
  }();
  return ns;
}

Metrics& Shared() {
  static Metrics m;
  return m;
}

void BM_MetricsPerDocument(benchmark::State& state) {
  const double baseline = BaselineNsPerDoc();
  Metrics& m = Shared();
  std::uint64_t i = 0;
  const auto start = Clock::now();
  for (auto _ : state) CountOneDocument(m, i++);
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
                    static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations());
  // Per-thread figures, averaged over the threads (each thread's ns per document).
  state.counters["metrics_ns_per_doc"] = benchmark::Counter(ns, benchmark::Counter::kAvgThreads);
  state.counters["baseline_ns_per_doc"] =
      benchmark::Counter(baseline, benchmark::Counter::kAvgThreads);
  state.counters["metrics_share_percent"] =
      benchmark::Counter(100.0 * ns / baseline, benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_MetricsPerDocument)->Threads(1)->Threads(2)->UseRealTime();

// The software baseline itself, for reference in the same output.
void BM_BaselineDocument(benchmark::State& state) {
  Baseline b;
  std::size_t sink = 0;
  for (auto _ : state) sink += b.SignOne();
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BaselineDocument)->Threads(1)->UseRealTime();

// Why the histograms are ours: prometheus-cpp 1.0's Histogram locks a mutex per observation.
void BM_AtomicHistogramObserve(benchmark::State& state) {
  static detail::AtomicHistogram h(detail::kSecondsShape);
  std::uint64_t v = 0;
  for (auto _ : state) h.Observe(100'000 + (v++ & 0xfffff));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AtomicHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

void BM_PrometheusCppHistogramObserve(benchmark::State& state) {
  static prometheus::Histogram h([] {
    std::vector<double> b;
    for (int i = 0; i < 19; ++i) b.push_back(1e-4 * static_cast<double>(1 << i));
    return b;
  }());
  std::uint64_t v = 0;
  for (auto _ : state) h.Observe(1e-4 + static_cast<double>(v++ & 0xfffff) * 1e-9);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PrometheusCppHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

// A scrape with the event families populated (the cost the listener pays, not the pipeline).
void BM_Serialize(benchmark::State& state) {
  Metrics m;
  for (std::uint64_t i = 0; i < 1000; ++i) CountOneDocument(m, i);
  m.AddSnapshotSource(ProcessMetricsSource());
  std::size_t bytes = 0;
  for (auto _ : state) bytes += m.Serialize().size();
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_Serialize);

}  // namespace
}  // namespace qseal::metrics

BENCHMARK_MAIN();
