// The checker itself: a clean run passes, and each broken promise it is meant to catch is caught
// (a tampered original, a missing seal, a seal for nothing submitted, a leftover temp file, a
// seal over other bytes, a run window that excludes the signing time).
#include <filesystem>

#include <gtest/gtest.h>

#include "tests/reliability/scenario.h"

namespace qseal::reliability {
namespace {

namespace fs = std::filesystem;
using testing::Qseald;
using testing::TempDir;

bool Mentions(const CheckReport& r, const std::string& needle) {
  for (const auto& p : r.problems) {
    if (p.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(ReliabilityCheckerTest, PassesACleanRunAndCatchesEachBrokenPromise) {
  TempDir tmp;
  Qseald qseald(tmp.Sub("d"), ScenarioOptions());
  Ledger ledger(tmp.Sub("ledger"));
  RunWindow window = RunWindow::StartNow();
  ASSERT_TRUE(Started(qseald));
  LoadOptions lo;
  lo.api = qseald.api();
  lo.token = qseald.token();
  lo.ca_file = qseald.ca_pem();
  lo.watch_root = qseald.watch_root();
  lo.max_api_documents = 12;
  lo.max_watch_documents = 6;
  LoadGenerator load(ledger, lo);
  load.Start();
  ASSERT_TRUE(load.WaitUntilDone(std::chrono::minutes(2)));
  load.Stop();
  RunOutputs out{qseald.api(), qseald.token(), {qseald.watch_root()}, qseald.ca_pem()};
  ASSERT_TRUE(WaitUntilSettled(ledger, out, std::chrono::seconds(60)).ok());
  window.Close();
  CheckReport clean = CheckRun(ledger, out, qseald.ca_pem(), window);
  ASSERT_TRUE(clean.ok()) << clean.ToString();
  EXPECT_EQ(clean.seals_verified, 18u);

  // A window that ended before the run: every signing time is outside it.
  RunWindow past{window.begin - std::chrono::hours(2), window.begin - std::chrono::hours(1)};
  EXPECT_TRUE(Mentions(CheckRun(ledger, out, qseald.ca_pem(), past), "outside the run"));

  std::string outbox = qseald.watch_root() + "/outbox/";
  // Tampered original, missing seal, unknown output, partial output.
  testing::WriteFile(outbox + "w0.bin", "not what was submitted");
  fs::remove(outbox + "w1.bin.p7s");
  testing::WriteFile(outbox + "nobody.bin.p7s", "x");
  testing::WriteFile(outbox + ".qseal-1-1.tmp", "x");
  // A valid seal, but over other bytes: w3's seal in place of w2's.
  fs::copy_file(outbox + "w3.bin.p7s", outbox + "w2.bin.p7s", fs::copy_options::overwrite_existing);
  CheckReport broken = CheckRun(ledger, out, qseald.ca_pem(), window);
  EXPECT_TRUE(Mentions(broken, "watch w0.bin: outbox original differs")) << broken.ToString();
  EXPECT_TRUE(Mentions(broken, "watch w1.bin: no seal")) << broken.ToString();
  EXPECT_TRUE(Mentions(broken, "unexpected file outbox/nobody.bin.p7s")) << broken.ToString();
  EXPECT_TRUE(Mentions(broken, "unexpected file outbox/.qseal-1-1.tmp")) << broken.ToString();
  EXPECT_TRUE(Mentions(broken, "watch w2.bin: openssl cms -verify")) << broken.ToString();
  EXPECT_EQ(broken.seals_verified, 18u - 2u);  // w0 still verifies against the ledger copy

  // The queue's counts: more sealed than the ledger knows of is caught.
  EXPECT_EQ(qseald.Stop(), 0);
  EXPECT_TRUE(CheckQueue(ledger, qseald.var() + "/queue").ok());
  Ledger smaller(tmp.Sub("ledger2"));
  EXPECT_TRUE(Mentions(CheckQueue(smaller, qseald.var() + "/queue"), "only 0 were accepted"));
}

}  // namespace
}  // namespace qseal::reliability
