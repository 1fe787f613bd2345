// The QSCDs of the field by their behaviour (docs/hsm-vendors.md), each imitated by the p11shim
// in front of SoftHSM2 and driven through a real qseald under load, every run ending with the
// checker (every seal verified with `openssl cms -verify`):
//
// - Utimaco CryptoServer: sessions idle past AppTimeout are dropped (idle_drop_ms). With the
//   keepalive on, no session is ever dropped; with it off, the dropped sessions are re-opened
//   and the digest signed again in place, no attempt spent (also in the logged-out form).
// - Entrust nShield with a load-shared slot: a fraction of C_Sign calls fail with
//   CKR_DEVICE_ERROR (device_error_rate); device_error_retries signs them again on the same
//   partition, which never goes down.
// - i4p Trident: partitions with their own PINs, each logging in again on its own.
//
// The queue gives each document one attempt (queue max_attempts = 1): a fault that reached a
// document would fail it, and the checker allows no failed document.
//
// Seeded: QSEAL_SEED=<n> replays a run.
#include <sys/stat.h>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "tests/p11shim/p11shim.h"
#include "tests/reliability/scenario.h"

namespace qseal::reliability {
namespace {

namespace fs = std::filesystem;
using testing::Qseald;
using testing::TempDir;

class ReliabilityHsmVendorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = SeedFromEnv();
    shims_ = {tmp_.Sub("hsm-a.so"), tmp_.Sub("hsm-b.so")};
    for (const std::string& shim : shims_) {
      fs::copy_file(QSEAL_P11SHIM_PATH, shim);
      Configure(shim, "");
    }
  }

  void Configure(const std::string& shim, const std::string& conf) {
    p11shim::WriteConfig(shim + ".conf", "seed=" + std::to_string(seed_ % 100000) + "\n" + conf);
  }
  void ConfigureBoth(const std::string& conf) {
    for (const std::string& shim : shims_) Configure(shim, conf);
  }

  std::uint64_t Count(p11shim::Counter c) {
    std::uint64_t n = 0;
    for (const std::string& shim : shims_) n += p11shim::ReadCount(shim + ".counts", c);
    return n;
  }

  // Both partitions behind their shims, `partition_lines` added to each, one queue attempt.
  testing::QsealdOptions Options(const std::string& partition_lines) {
    testing::QsealdOptions o = ScenarioOptions();
    auto base = o.edit_config;
    o.edit_config = [this, base, partition_lines](std::string& conf) {
      base(conf);
      SetConfig(conf, "max_attempts", "1");  // the queue's: a fault reaching a document fails it
      SetModule(conf, 0, shims_[0]);
      SetModule(conf, 1, shims_[1]);
      if (!partition_lines.empty()) AddToPartitions(conf, partition_lines);
    };
    return o;
  }

  // `bursts` rounds of API documents (the first also drops files into the watched folder),
  // `pause` apart so that sessions sit idle in between, then the checker.
  void RunBursts(Qseald& qseald, int bursts, std::size_t per_burst,
                 std::chrono::milliseconds pause) {
    Ledger ledger(tmp_.Sub("ledger"));
    RunWindow window = RunWindow::StartNow();
    for (int b = 0; b < bursts; ++b) {
      if (b > 0) std::this_thread::sleep_for(pause);
      LoadOptions lo = LoadFor(qseald, seed_ + static_cast<std::uint64_t>(b));
      lo.max_api_documents = per_burst;
      lo.max_watch_documents = b == 0 ? 20 : 0;
      if (b > 0) lo.watch_root.clear();
      LoadGenerator load(ledger, lo);
      load.Start();
      ASSERT_TRUE(load.WaitUntilDone(std::chrono::minutes(2)));
      load.Stop();
      // Let the burst drain, so the pause really leaves every session idle.
      RunOutputs out{qseald.api(), qseald.token(), {qseald.watch_root()}, qseald.ca_pem()};
      ASSERT_TRUE(WaitUntilSettled(ledger, out, std::chrono::seconds(60)).ok())
          << ledger.Summary() << "\n"
          << LogDigest(qseald.var() + "/..");
    }
    // Before Stop: it closes the metrics listener and finalises the modules.
    metrics_ = ScrapeMetrics(qseald.metrics());
    ASSERT_FALSE(metrics_.empty());
    finalizes_ = Count(p11shim::kFinalize);
    ExpectNoAttemptSpent();
    ExpectRunKeptPromises(qseald, ledger, window);
  }

  // No sign request was put back or failed: every fault was recovered inside its attempt.
  void ExpectNoAttemptSpent() {
    EXPECT_EQ(MetricSum(metrics_, "qseal_hsm_requests_total", {"outcome=\"rerouted\""}), 0);
    EXPECT_EQ(MetricSum(metrics_, "qseal_hsm_requests_total", {"outcome=\"failed\""}), 0);
  }

  double Metric(const std::string& name, const std::vector<std::string>& labels = {}) {
    return MetricSum(metrics_, name, labels);
  }

  TempDir tmp_;
  std::uint64_t seed_ = 0;
  std::vector<std::string> shims_;
  std::string metrics_;          // /metrics text at the end of the run, before Stop
  std::uint64_t finalizes_ = 0;  // C_Finalize calls before Stop (re-initialisations)
};

constexpr auto kIdleDrop = std::chrono::milliseconds(1500);
constexpr auto kPause = std::chrono::milliseconds(2500);

// Utimaco AppTimeout with the keepalive on: no session is ever dropped, nothing recovered.
TEST_F(ReliabilityHsmVendorTest, IdleDropKeptAwayByKeepalive) {
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed_));
  ConfigureBoth("idle_drop_ms=" + std::to_string(kIdleDrop.count()) + "\n");
  Qseald qseald(tmp_.Sub("d"), Options("keepalive_interval = \"250ms\""));
  ASSERT_TRUE(Started(qseald));
  RunBursts(qseald, 2, 80, kPause);
  EXPECT_EQ(Count(p11shim::kInjectedIdleDrop), 0u);
  EXPECT_GT(Metric("qseal_hsm_session_keepalives_total", {"outcome=\"ok\""}), 0);
  EXPECT_EQ(Metric("qseal_hsm_session_keepalives_total", {"outcome=\"failed\""}), 0);
  EXPECT_EQ(Metric("qseal_hsm_recovered_in_place_total"), 0);
  EXPECT_EQ(Metric("qseal_hsm_sign_errors_total"), 0);
}

// Keepalive off: the HSM drops idle sessions; each is re-opened and its digest signed in place.
TEST_F(ReliabilityHsmVendorTest, IdleDroppedSessionsRecoveredInPlaceWithoutKeepalive) {
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed_));
  ConfigureBoth("idle_drop_ms=" + std::to_string(kIdleDrop.count()) + "\n");
  Qseald qseald(tmp_.Sub("d"), Options(""));
  ASSERT_TRUE(Started(qseald));
  RunBursts(qseald, 2, 80, kPause);
  const std::uint64_t drops = Count(p11shim::kInjectedIdleDrop);
  EXPECT_GT(drops, 0u);
  EXPECT_EQ(Metric("qseal_hsm_recovered_in_place_total", {"reason=\"stale_session\""}),
            static_cast<double>(drops));
  EXPECT_EQ(Metric("qseal_hsm_sign_errors_total", {"code=\"CKR_SESSION_HANDLE_INVALID\""}),
            static_cast<double>(drops));
}

// The other form of the idle timeout: the token logged out (CKR_USER_NOT_LOGGED_IN); qseal logs
// in again (single-flight, per partition) and signs the digest in place.
TEST_F(ReliabilityHsmVendorTest, IdleLogoutRecoveredByReloginWithoutKeepalive) {
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed_));
  ConfigureBoth("idle_drop_ms=" + std::to_string(kIdleDrop.count()) + "\nidle_drop_logout=1\n");
  Qseald qseald(tmp_.Sub("d"), Options(""));
  ASSERT_TRUE(Started(qseald));
  const std::uint64_t logins_before = Count(p11shim::kLogin);
  RunBursts(qseald, 2, 80, kPause);
  EXPECT_GT(Count(p11shim::kInjectedIdleDrop), 0u);
  EXPECT_GT(Count(p11shim::kLogin), logins_before);
  EXPECT_EQ(Count(p11shim::kWrongPins), 0u);
}

// nShield load-shared slot with one failing module: 5 % of C_Sign calls answer CKR_DEVICE_ERROR.
// Retried on the same partition, they never take it down (no module re-initialised).
TEST_F(ReliabilityHsmVendorTest, LoadSharedSlotDeviceErrorsRetriedOnSamePartition) {
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed_));
  ConfigureBoth("device_error_rate=0.05\n");
  Qseald qseald(tmp_.Sub("d"), Options("device_error_retries = 4"));
  ASSERT_TRUE(Started(qseald));
  RunBursts(qseald, 1, 240, kPause);
  const std::uint64_t injected = Count(p11shim::kInjectedDeviceError);
  EXPECT_GT(injected, 0u);
  EXPECT_EQ(Metric("qseal_hsm_recovered_in_place_total", {"reason=\"device_error\""}),
            static_cast<double>(injected));
  EXPECT_EQ(Metric("qseal_hsm_module_reinits_total"), 0);
  EXPECT_EQ(finalizes_, 0u);
}

// i4p Trident: each partition is its own token with its own PIN. Partition p2's token gets
// another PIN (and pin_source) than p1's; the shim logs the tokens out whenever the daemon idles,
// so each partition must log in again with its own PIN, on its own, while documents keep coming.
TEST_F(ReliabilityHsmVendorTest, PartitionsWithTheirOwnPinsLogInAgainEachOnItsOwn) {
  SCOPED_TRACE("QSEAL_SEED=" + std::to_string(seed_));
  ConfigureBoth("idle_drop_ms=" + std::to_string(kIdleDrop.count()) + "\nidle_drop_logout=1\n");
  testing::QsealdOptions o = Options("");
  auto base = o.edit_config;
  o.edit_config = [base](std::string& conf) {
    base(conf);
    // The second partition's pin_source (the first keeps var/pin).
    const std::string pin = "pin_source = \"file:${QSEAL_VAR:-var}/pin\"";
    std::size_t second = conf.find(pin, conf.find(pin) + 1);
    ASSERT_NE(second, std::string::npos);
    conf.replace(second, pin.size(), "pin_source = \"file:${QSEAL_VAR:-var}/pin-p2\"");
  };
  Qseald qseald(tmp_.Sub("d"), o);
  ASSERT_TRUE(qseald.Prepare().ok());
  std::string old_pin = testing::ReadFile(qseald.var() + "/pin");
  while (!old_pin.empty() && (old_pin.back() == '\n' || old_pin.back() == '\r')) old_pin.pop_back();
  const std::string new_pin = "p2-" + std::to_string(seed_ % 1000000);
  testing::CommandResult changed = testing::RunCommand(
      "SOFTHSM2_CONF=" + testing::ShellQuote(qseald.var() + "/softhsm2.conf") +
      " pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label qseal-p2 --login "
      "--pin " +
      testing::ShellQuote(old_pin) + " --change-pin --new-pin " + testing::ShellQuote(new_pin));
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  testing::WriteFile(qseald.var() + "/pin-p2", new_pin);
  ASSERT_EQ(::chmod((qseald.var() + "/pin-p2").c_str(), 0600), 0);  // a looser one is refused
  ASSERT_TRUE(Started(qseald));
  const std::uint64_t logins_before = Count(p11shim::kLogin);
  RunBursts(qseald, 2, 80, kPause);
  EXPECT_GT(Count(p11shim::kInjectedIdleDrop), 0u);
  EXPECT_GT(Count(p11shim::kLogin), logins_before);
  EXPECT_EQ(Count(p11shim::kWrongPins), 0u);
  // Both partitions signed (each with its own login).
  EXPECT_GT(Metric("qseal_hsm_signatures_total", {"partition=\"p1\""}), 0);
  EXPECT_GT(Metric("qseal_hsm_signatures_total", {"partition=\"p2\""}), 0);
}

}  // namespace
}  // namespace qseal::reliability
