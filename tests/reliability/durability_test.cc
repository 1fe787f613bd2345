// Scenario 2, durability: an fsync that fails (EIO injected into fdatasync and fsync by strace
// attached to the running qseald) ends acknowledgements at once; qseald goes not-ready and exits
// non-zero instead of retrying the sync; after a restart nothing accepted before is lost.
// The disk-full half lives in disk_full_test.cc.
//
// Seeded: QSEAL_SEED=<n> replays a run.
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "common/exit_codes.h"
#include "tests/reliability/scenario.h"

namespace qseal::reliability {
namespace {

using testing::ChildProcess;
using testing::Qseald;
using testing::TempDir;

TEST(ReliabilityDurabilityTest, FailedFsyncStopsAcknowledgingAndExitsNonZeroLosingNothing) {
  const std::uint64_t seed = SeedFromEnv();
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TempDir tmp;
  Qseald qseald(tmp.Sub("d"), ScenarioOptions());
  Ledger ledger(tmp.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  ASSERT_TRUE(Started(qseald));

  LoadOptions lo = LoadFor(qseald, seed);
  lo.max_api_documents = 400;
  lo.max_watch_documents = 80;
  lo.watch_per_second = 40;
  LoadGenerator load(ledger, lo);
  load.Start();
  std::size_t at = 40 + rng() % 120;
  while (load.submitted() < at) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  // From here on every fsync and fdatasync of qseald fails with EIO.
  ChildProcess strace;
  ASSERT_TRUE(strace
                  .Start({"/usr/bin/strace", "-f", "-p", std::to_string(qseald.process().pid()),
                          "-e", "trace=fdatasync,fsync", "-e", "inject=fdatasync:error=EIO", "-e",
                          "inject=fsync:error=EIO", "-o", "/dev/null"},
                         tmp.Sub("strace.log"))
                  .ok());
  ASSERT_NE(strace.WaitForLine("attached", std::chrono::seconds(30)), "") << strace.Stderr();
  auto injected = std::chrono::steady_clock::now();

  int code = qseald.process().Wait(std::chrono::seconds(60));
  EXPECT_EQ(code, kExitIoErr) << qseald.Stderr().substr(0, 4000);
  EXPECT_NE(qseald.Stderr().find("the queue refused a write"), std::string::npos);
  strace.Wait(std::chrono::seconds(30));
  load.SetApi("");

  // No acknowledgement for anything submitted once syncs fail.
  for (const auto& s : ledger.accepted()) {
    if (s.via == Via::kApi) {
      EXPECT_LT(s.sent, injected) << s.id << " acknowledged after the failed fsync";
    }
  }

  qseald.options().wrapper.clear();
  ASSERT_TRUE(Started(qseald));
  load.SetApi(qseald.api());
  ASSERT_TRUE(load.WaitUntilDone(std::chrono::minutes(3)));
  load.Stop();
  ExpectRunKeptPromises(qseald, ledger, window);
}

}  // namespace
}  // namespace qseal::reliability
