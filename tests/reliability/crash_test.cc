// Scenario 1, crashes: kill -9 at random moments of a mixed API + watched-folder run, restart,
// repeat; and qseald aborting at each named crash point (common/crash_point.h), restarted
// without it. Every run ends with the checker: every accepted document sealed exactly once, every
// seal verified by openssl, nothing sealed that nobody submitted.
//
// Seeded: QSEAL_SEED=<n> replays a run (the seed is printed on failure). Rounds of the kill -9
// test: QSEAL_RELIABILITY_ROUNDS (default 3).
#include <signal.h>

#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "tests/reliability/scenario.h"

namespace qseal::reliability {
namespace {

using testing::Qseald;
using testing::TempDir;

TEST(ReliabilityCrashTest, KillDashNineAtRandomMomentsLosesNothing) {
  const std::uint64_t seed = SeedFromEnv();
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int rounds = Rounds(3);
  TempDir tmp;
  Qseald qseald(tmp.Sub("d"), ScenarioOptions());
  Ledger ledger(tmp.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  ASSERT_TRUE(Started(qseald));

  LoadOptions lo = LoadFor(qseald, seed);
  lo.max_api_documents = 150 * static_cast<std::size_t>(rounds + 1);
  lo.max_watch_documents = 40 * static_cast<std::size_t>(rounds + 1);
  lo.watch_per_second = 40;
  LoadGenerator load(ledger, lo);
  load.Start();
  for (int round = 0; round < rounds; ++round) {
    // Kill somewhere in the next stretch of submissions, at a random moment.
    std::size_t at = load.submitted() + 20 + rng() % 120;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (load.submitted() < at && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 50));
    load.SetApi("");
    qseald.Kill();
    ASSERT_TRUE(qseald.Start().ok()) << "round " << round << ": " << qseald.Stderr();
    load.SetApi(qseald.api());
  }
  ASSERT_TRUE(load.WaitUntilDone(std::chrono::minutes(3)));
  load.Stop();
  ExpectRunKeptPromises(qseald, ledger, window);
}

struct CrashPoint {
  const char* name;
  int max_nth;  // the point fires at a seeded n in [1, max_nth]
};

void PrintTo(const CrashPoint& p, std::ostream* os) { *os << p.name; }

class ReliabilityCrashPointTest : public ::testing::TestWithParam<CrashPoint> {};

TEST_P(ReliabilityCrashPointTest, AbortAtPointThenRestartLosesNothing) {
  const CrashPoint point = GetParam();
  const std::uint64_t seed = SeedFromEnv();
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  // The partitions' self-tests sign at startup: skip past them for the HSM points.
  int nth = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(point.max_nth));
  if (std::string(point.name).rfind("hsm.", 0) == 0) nth += 8;
  std::string spec = std::string(point.name) + ":" + std::to_string(nth);
  SCOPED_TRACE("QSEAL_CRASH_AT=" + spec);

  TempDir tmp;
  testing::QsealdOptions options = ScenarioOptions();
  options.extra_env = {"QSEAL_CRASH_AT=" + spec};
  Qseald qseald(tmp.Sub("d"), options);
  Ledger ledger(tmp.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  ASSERT_TRUE(Started(qseald));

  LoadOptions lo = LoadFor(qseald, seed);
  lo.max_api_documents = 200;
  lo.max_watch_documents = 60;
  // watch.renamed_before_commit fires once per publish batch: dropped all at once, 60 files can
  // go out in fewer than 10 batches (seen on a loaded machine), so the drops are spread out.
  if (std::string(point.name).rfind("watch.", 0) == 0) lo.watch_per_second = 20;
  LoadGenerator load(ledger, lo);
  load.Start();
  int code = qseald.process().Wait(std::chrono::seconds(120));
  EXPECT_EQ(code, 128 + SIGABRT) << "qseald did not reach " << spec;
  // Still running (the point was never reached): it would hold the queue's lock against the
  // restart, so the rest of the run checks promises after a kill -9 instead.
  if (qseald.process().running()) qseald.Kill();
  EXPECT_NE(qseald.Stderr().find(std::string("qseal crash point ") + point.name + " reached"),
            std::string::npos);
  load.SetApi("");
  qseald.options().extra_env.clear();
  ASSERT_TRUE(Started(qseald));
  load.SetApi(qseald.api());
  ASSERT_TRUE(load.WaitUntilDone(std::chrono::minutes(3)));
  load.Stop();
  ExpectRunKeptPromises(qseald, ledger, window);
}

INSTANTIATE_TEST_SUITE_P(Points, ReliabilityCrashPointTest,
                         ::testing::Values(CrashPoint{"queue.synced_before_ack", 20},
                                           CrashPoint{"api.acked", 20},
                                           CrashPoint{"hsm.before_sign", 20},
                                           CrashPoint{"hsm.signed_before_verify", 20},
                                           CrashPoint{"watch.written_before_rename", 10},
                                           CrashPoint{"watch.renamed_before_commit", 10}),
                         [](const ::testing::TestParamInfo<CrashPoint>& param_info) {
                           std::string n = param_info.param.name;
                           for (char& c : n) c = c == '.' ? '_' : c;
                           return n;
                         });

}  // namespace
}  // namespace qseal::reliability
