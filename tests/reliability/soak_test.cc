// Scenario 8, soak: qseald at half its measured maximum rate, through the API and the watched
// folder, with 1 % of C_Sign calls invalidating their session (p11shim), for QSEAL_SOAK_SECONDS
// (default 60; the on-demand tier runs an hour: see docs/reliability.md). Once a second it
// samples the resident memory and open file descriptors (/proc) and the PKCS#11 sessions (the
// metrics endpoint). Flat means: the mean of the last quarter of the samples is within 10 % (plus
// a small absolute slack: 8 fds, 1 session, 8 MiB; 64 MiB of memory in runs under 10 minutes,
// while RocksDB's memtables fill) of the mean of the second quarter. Then the checker runs over the
// whole ledger (openssl on a sample of the seals when the run is long).
//
// Seeded: QSEAL_SEED=<n> replays a run.
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/p11shim/p11shim.h"
#include "tests/reliability/scenario.h"

namespace qseal::reliability {
namespace {

namespace fs = std::filesystem;
using testing::Qseald;
using testing::TempDir;

struct Sample {
  double rss_bytes = 0;
  double fds = 0;
  double sessions = 0;
};

double RssBytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) * 1024;
  }
  return 0;
}

double OpenFds(int pid) {
  std::error_code ec;
  double n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// Sum of qseal_hsm_sessions over partitions and states (busy + idle + dead).
double Sessions(const std::string& metrics_addr) {
  cli::HttpClient client(metrics_addr, "", std::chrono::seconds(10));
  auto r = client.Request("GET", "/metrics");
  if (!r.ok() || r->status != 200) return -1;
  double total = 0;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("qseal_hsm_sessions{", 0) == 0) {
      total += std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    }
  }
  return total;
}

double Mean(const std::vector<Sample>& s, std::size_t from, std::size_t to, double Sample::*field) {
  double sum = 0;
  for (std::size_t i = from; i < to; ++i) sum += s[i].*field;
  return to > from ? sum / static_cast<double>(to - from) : 0;
}

TEST(ReliabilitySoakTest, HalfRateWithFaultsKeepsMemoryFdsAndSessionsFlat) {
  const std::uint64_t seed = SeedFromEnv();
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed));
  const char* env = std::getenv("QSEAL_SOAK_SECONDS");
  const int seconds = env != nullptr && *env != '\0' ? std::max(20, std::atoi(env)) : 60;
  TempDir tmp;
  const std::string shim = tmp.Sub("hsm.so");
  fs::copy_file(QSEAL_P11SHIM_PATH, shim);
  p11shim::WriteConfig(shim + ".conf",
                       "seed=" + std::to_string(seed % 100000) + "\nsession_invalid_rate=0.01\n");
  testing::QsealdOptions o = ScenarioOptions();
  o.module = shim;
  Qseald qseald(tmp.Sub("d"), o);
  Ledger ledger(tmp.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  ASSERT_TRUE(Started(qseald));
  std::string started = qseald.process().WaitForLine("\"qseald started\"", std::chrono::seconds(1));
  const std::string metrics = nlohmann::json::parse(started)["metrics"];

  LoadOptions lo;
  lo.api = qseald.api();
  lo.token = qseald.token();
  lo.ca_file = qseald.ca_pem();
  lo.seed = seed;
  lo.max_bytes = 4096;
  lo.max_api_documents = 0;
  lo.max_watch_documents = 0;
  // The maximum rate, measured for a few seconds.
  double max_rate = 0;
  {
    LoadGenerator probe(ledger, lo);
    std::size_t before = ledger.accepted_count();
    auto t0 = std::chrono::steady_clock::now();
    probe.Start();
    std::this_thread::sleep_for(std::chrono::seconds(5));
    probe.Stop();
    max_rate = static_cast<double>(ledger.accepted_count() - before) /
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  ASSERT_GT(max_rate, 1.0);
  lo.seed = seed + 1;
  lo.watch_root = qseald.watch_root();
  lo.api_per_second = max_rate / 2 * 0.9;
  lo.watch_per_second = max_rate / 2 * 0.1;
  LoadGenerator load(ledger, lo);
  load.Start();
  std::vector<Sample> samples;
  const int pid = qseald.process().pid();
  for (int s = 0; s < seconds; ++s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    samples.push_back({RssBytes(pid), OpenFds(pid), Sessions(metrics)});
  }
  load.Stop();
  std::cerr << "soak: max rate " << max_rate << "/s, ran " << seconds << " s at half; "
            << ledger.Summary() << "\n";

  const std::size_t q = samples.size() / 4;
  struct Bound {
    const char* what;
    double Sample::*field;
    double slack;
  };
  // RocksDB fills its memtables (64 MiB each) for the first minutes of a run: a short run only
  // catches gross memory growth; the hour-long tier holds it to 10 % + 8 MiB.
  const double rss_slack = (seconds < 600 ? 64.0 : 8.0) * (1 << 20);
  for (Bound b : {Bound{"resident memory (bytes)", &Sample::rss_bytes, rss_slack},
                  Bound{"open fds", &Sample::fds, 8}, Bound{"sessions", &Sample::sessions, 1}}) {
    double second = Mean(samples, q, 2 * q, b.field);
    double last = Mean(samples, 3 * q, samples.size(), b.field);
    std::cerr << "soak: " << b.what << ": second quarter mean " << second << ", last quarter mean "
              << last << "\n";
    EXPECT_LE(last, second * 1.10 + b.slack)
        << b.what << " grew: second quarter mean " << second << ", last quarter mean " << last;
    EXPECT_GE(last, second * 0.90 - b.slack)
        << b.what << " fell: second quarter mean " << second << ", last quarter mean " << last;
  }
  CheckOptions co;
  co.openssl_every = std::max<std::size_t>(1, ledger.accepted_count() / 300);
  ExpectRunKeptPromises(qseald, ledger, window, co, std::chrono::seconds(600));
}

}  // namespace
}  // namespace qseal::reliability
