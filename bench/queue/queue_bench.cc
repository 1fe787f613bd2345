// Queue benchmarks, each against a baseline measured in the same run:
//   BM_RawFdatasync            2 KiB append + fdatasync on the disk the queue uses (the baseline)
//   BM_EnqueueSynced/threads:1    synced enqueues of 2 KiB documents, one submitter
//   BM_EnqueueSynced/threads:64   the same with 64 concurrent submitters (group commit)
//   BM_LeaseComplete/threads:N Lease(64) + Complete(64) cycles from N engine threads
// A summary with the ratios is printed at the end. The queue lives under $QSEAL_BENCH_DIR, else
// $TMPDIR, else /tmp.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "queue/queue.h"

namespace qseal::queue {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kDocBytes = 2048;

std::string BenchRoot() {
  for (const char* var : {"QSEAL_BENCH_DIR", "TMPDIR"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && *v != '\0') return v;
  }
  return "/tmp";
}

std::string MakeTempDir() {
  std::string templ = BenchRoot() + "/qseal-queue-bench-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  return templ;
}

QueueOptions BenchOptions(const std::string& dir) {
  QueueOptions o;
  o.path = dir + "/q";
  o.high_watermark_count = ~0ull;
  o.low_watermark_count = ~0ull;
  o.high_watermark_bytes = ~0ull;
  o.low_watermark_bytes = ~0ull;
  o.retention_sweep_interval = 0ms;
  return o;
}

NewDocument BenchDoc() {
  NewDocument d;
  d.profile = "bench";
  d.client = "bench";
  d.name = "invoice.pdf";
  d.media_type = "application/pdf";
  return d;
}

void BM_RawFdatasync(benchmark::State& state) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/fdatasync.bin";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    state.SkipWithError("cannot create file");
    return;
  }
  std::vector<char> block(kDocBytes, 'x');
  for (auto _ : state) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write/fdatasync failed");
      break;
    }
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_RawFdatasync)->UseRealTime()->MinTime(2.0);

// Shared by the threads of one BM_EnqueueSynced run; thread 0 sets it up before the loop (the
// benchmark loop starts with a barrier) and tears it down after (it ends with one).
std::unique_ptr<Queue> g_queue;
std::string g_dir;

void BM_EnqueueSynced(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_dir = MakeTempDir();
    auto q = Queue::Open(BenchOptions(g_dir));
    if (!q.ok()) {
      std::fprintf(stderr, "open: %s\n", q.status().ToString().c_str());
      std::abort();
    }
    g_queue = std::move(q).value();
  }
  std::string body(kDocBytes, static_cast<char>('a' + state.thread_index() % 26));
  NewDocument doc = BenchDoc();
  std::uint64_t n = 0;
  for (auto _ : state) {
    std::memcpy(body.data(), &n, sizeof n);  // distinct content per document
    ++n;
    auto r = g_queue->Enqueue(doc, AsBytes(body));
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kDocBytes));
  if (state.thread_index() == 0) {
    QueueStats s = g_queue->Stats();
    state.counters["docs_per_sync"] = s.batches_committed == 0
                                          ? 0.0
                                          : static_cast<double>(s.operations_committed) /
                                                static_cast<double>(s.batches_committed);
    (void)g_queue->Close();
    g_queue.reset();
    std::filesystem::remove_all(g_dir);
  }
}
BENCHMARK(BM_EnqueueSynced)->UseRealTime()->MinTime(2.0)->Threads(1)->Threads(64);

// Enqueues `count` documents from 128 threads (untimed setup for the lease benchmark).
void Fill(Queue& q, std::size_t count) {
  std::vector<std::thread> threads;
  constexpr std::size_t kFillers = 128;
  for (std::size_t t = 0; t < kFillers; ++t) {
    threads.emplace_back([&q, count, t] {
      std::string body(kDocBytes, 'f');
      for (std::size_t i = t; i < count; i += kFillers) {
        std::memcpy(body.data(), &i, sizeof i);
        if (!q.Enqueue(BenchDoc(), AsBytes(body)).ok()) std::abort();
      }
    });
  }
  for (auto& t : threads) t.join();
}

constexpr std::size_t kLeaseBatch = 64;
constexpr std::int64_t kCyclesPerThread = 100;

// Engine threads each Lease(64) then Complete(64) with a 3 KB seal; their completes are
// group-committed together. Fixed iterations so the queue can be filled beforehand (untimed).
void BM_LeaseComplete(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_dir = MakeTempDir();
    auto q = Queue::Open(BenchOptions(g_dir));
    if (!q.ok()) {
      std::fprintf(stderr, "open: %s\n", q.status().ToString().c_str());
      std::abort();
    }
    g_queue = std::move(q).value();
    Fill(*g_queue, kLeaseBatch * static_cast<std::size_t>(kCyclesPerThread * state.threads()));
  }
  Bytes seal(3000, 0x30);  // about a CAdES detached seal with its chain
  std::int64_t documents = 0;
  for (auto _ : state) {
    auto leased = g_queue->Lease(kLeaseBatch, ~0ull, 60s);
    if (!leased.ok()) {
      state.SkipWithError(leased.status().ToString().c_str());
      break;
    }
    std::vector<Queue::Completion> completions;
    completions.reserve(leased->size());
    for (const Record& r : *leased) {
      completions.push_back({r.id, seal, "application/pkcs7-signature"});
    }
    documents += static_cast<std::int64_t>(completions.size());
    Status s = g_queue->Complete(std::move(completions));
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(documents);
  state.counters["cycles_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  if (state.thread_index() == 0) {
    (void)g_queue->Close();
    g_queue.reset();
    std::filesystem::remove_all(g_dir);
  }
}
BENCHMARK(BM_LeaseComplete)->UseRealTime()->Iterations(kCyclesPerThread)->Threads(1)->Threads(4);

// Console output plus a summary of the ratios the issue asks for.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      auto it = run.counters.find("items_per_second");
      if (it != run.counters.end()) rates_[run.benchmark_name()] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  void PrintSummary() const {
    double fsync = Find("BM_RawFdatasync");
    double one = Find("BM_EnqueueSynced/min_time:2.000/real_time/threads:1");
    double many = Find("BM_EnqueueSynced/min_time:2.000/real_time/threads:64");
    double lease1 = Find("BM_LeaseComplete/iterations:100/real_time/threads:1");
    double lease4 = Find("BM_LeaseComplete/iterations:100/real_time/threads:4");
    std::printf("\nqueue summary (same run, same disk)\n");
    std::printf("  raw fdatasync (2 KiB append)     %10.0f /s  (baseline)\n", fsync);
    std::printf("  synced enqueue, 1 thread         %10.0f docs/s  = %.2fx fdatasync\n", one,
                Ratio(one, fsync));
    std::printf("  synced enqueue, 64 threads       %10.0f docs/s  = %.2fx fdatasync\n", many,
                Ratio(many, fsync));
    std::printf("  group commit gain (64 vs 1)      %10.2fx  (target >= 10x)\n", Ratio(many, one));
    std::printf("  lease+complete x64, 1 engine thread  %6.0f docs/s  = %.1f docs per fdatasync\n",
                lease1, Ratio(lease1, fsync));
    std::printf(
        "  lease+complete x64, 4 engine threads %6.0f docs/s  = %.1f docs per fdatasync"
        ", %.2fx a 25k docs/s pipeline\n",
        lease4, Ratio(lease4, fsync), lease4 / 25000.0);
  }

 private:
  double Find(const std::string& prefix) const {
    for (const auto& [name, rate] : rates_) {
      if (name == prefix || name.rfind(prefix + "/", 0) == 0) return rate;
    }
    return 0.0;
  }
  static double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }
  std::map<std::string, double> rates_;
};

}  // namespace
}  // namespace qseal::queue

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  qseal::queue::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
