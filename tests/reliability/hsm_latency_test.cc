// A network HSM (i4p Trident, docs/hsm-vendors.md "Network latency"): every C_Sign costs a round
// trip of milliseconds, so sealed documents per second follow sessions / latency until the host
// runs out of CPU. Measured through a real qseald with the p11shim adding 2, 5 and 10 ms to every
// C_Sign on both partitions, at 1, 4 and 16 sessions per partition; every run ends with the
// checker (every seal verified with `openssl cms -verify`). Label `slow` (about 40 s; -V shows the
// table):
//   cd build && ctest -R ReliabilityHsmLatencyTest -V
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "tests/p11shim/p11shim.h"
#include "tests/reliability/scenario.h"

namespace qseal::reliability {
namespace {

namespace fs = std::filesystem;
using testing::Qseald;
using testing::TempDir;

// Sealed documents per second for `documents` API documents at `latency_ms` per C_Sign and
// `sessions` per partition (two partitions).
double SealedPerSecond(double latency_ms, int sessions, std::size_t documents, std::uint64_t seed) {
  TempDir tmp;
  std::vector<std::string> shims = {tmp.Sub("hsm-a.so"), tmp.Sub("hsm-b.so")};
  for (const std::string& shim : shims) {
    fs::copy_file(QSEAL_P11SHIM_PATH, shim);
    p11shim::WriteConfig(shim + ".conf", "sign_latency_ms=" + std::to_string(latency_ms) + "\n");
  }
  testing::QsealdOptions o = ScenarioOptions();
  auto base = o.edit_config;
  o.edit_config = [&](std::string& conf) {
    base(conf);
    SetModule(conf, 0, shims[0]);
    SetModule(conf, 1, shims[1]);
    SetSessions(conf, sessions);
  };
  Qseald qseald(tmp.Sub("d"), o);
  Ledger ledger(tmp.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  EXPECT_TRUE(Started(qseald));
  LoadOptions lo = LoadFor(qseald, seed);
  lo.watch_root.clear();
  lo.api_threads = 8;
  lo.max_api_documents = documents;
  lo.max_bytes = 2048;
  const auto start = std::chrono::steady_clock::now();
  LoadGenerator load(ledger, lo);
  load.Start();
  // The clock stops when qseald has made every signature (its own counter, scraped every 20 ms:
  // cheap, unlike polling every document's status, which would load the daemon it measures).
  auto signed_now = [&] {
    return MetricSum(ScrapeMetrics(qseald.metrics()), "qseal_hsm_requests_total",
                     {"outcome=\"succeeded\""});
  };
  // The startup self-test signs outside the request counter, so it counts documents only.
  const auto deadline = start + std::chrono::minutes(3);
  while (signed_now() < static_cast<double>(documents) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(load.WaitUntilDone(std::chrono::minutes(1)));
  load.Stop();
  EXPECT_EQ(ledger.accepted_count(), documents);
  ExpectRunKeptPromises(qseald, ledger, window);
  return static_cast<double>(documents) / seconds;
}

TEST(ReliabilityHsmLatencyTest, SessionsHideTheLatencyOfANetworkHsm) {
  const std::uint64_t seed = SeedFromEnv();
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed));
  std::map<std::pair<double, int>, double> rate;
  auto at = [&](double latency, int sessions) { return rate[std::make_pair(latency, sessions)]; };
  std::printf("latency_ms sessions_per_partition sealed_per_s bound_2xS/L_per_s\n");
  for (double latency : {2.0, 5.0, 10.0}) {
    for (int sessions : {1, 4, 16}) {
      const double r = SealedPerSecond(latency, sessions, 400, seed);
      rate[std::make_pair(latency, sessions)] = r;
      std::printf("%10.0f %22d %12.0f %17.0f\n", latency, sessions, r,
                  2 * sessions * 1000 / latency);
      std::fflush(stdout);
    }
  }
  // Where the HSM's latency, not the host, is the limit, sessions buy throughput (the shared
  // 2-core test machine caps the host at a few hundred documents per second, so only the
  // slowest HSM shows the full effect).
  EXPECT_GT(at(10.0, 16), 1.5 * at(10.0, 1));
  // One session per partition is bound by the latency: at most 2 partitions x 1000/L per second.
  EXPECT_LT(at(10.0, 1), 2 * 1000 / 10.0 * 1.1);
  EXPECT_LT(at(5.0, 1), 2 * 1000 / 5.0 * 1.1);
}

}  // namespace
}  // namespace qseal::reliability
