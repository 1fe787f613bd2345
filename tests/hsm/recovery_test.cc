// The recovery ladder, each case driven through the p11shim module (a simulated network HSM in
// front of SoftHSM2): session loss, a partition down for 5 s, a sticky device error, a wrong PIN,
// a corrupted signature, a hung call, and a request that fails everywhere.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "hsm/signer.h"
#include "tests/hsm/hsm_test_util.h"

namespace qseal::hsm::testing {
namespace {

using p11shim::Counter;

class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override { Tokens(); }
  TempDir dir_;
};

TEST_F(RecoveryTest, OnePercentSessionInvalidationFailsNoRequest) {
  Shim a = MakeShim(dir_, "a", "session_invalid_rate=0.01\nseed=7\n");
  Shim b = MakeShim(dir_, "b", "session_invalid_rate=0.01\nseed=8\n");
  auto signer = Signer::Create(TestOptions(), {Part("a", a.so, "hsm-a"), Part("b", b.so, "hsm-b")},
                               {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  const std::size_t n = 3000;
  Collector c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  std::uint64_t injected =
      a.Count(Counter::kInjectedSessionInvalid) + b.Count(Counter::kInjectedSessionInvalid);
  EXPECT_GT(injected, 5u);
  SignerStats st = (*signer)->Stats();
  std::uint64_t reopens =
      FindPartition(st, "a")->session_reopens + FindPartition(st, "b")->session_reopens;
  // Every killed session was re-opened, except one killed by the last request of its thread.
  EXPECT_GE(reopens + 8, injected);
  EXPECT_GT(reopens, 0u);
  EXPECT_GE(st.rerouted, injected);
  EXPECT_EQ(FindPartition(st, "a")->errors.count("CKR_SESSION_HANDLE_INVALID") +
                FindPartition(st, "b")->errors.count("CKR_SESSION_HANDLE_INVALID"),
            2u);
  for (std::size_t i = 0; i < n; i += 300) {
    EXPECT_TRUE(OpensslVerify(dir_, Tokens().CertPem("seal"), SignatureScheme::kEcdsa,
                              DigestAlgorithm::kSha256, c.outcomes()[i].digest,
                              *c.outcomes()[i].signature));
  }
}

TEST_F(RecoveryTest, PartitionDownFiveSecondsMovesWorkAndIsReadmitted) {
  Shim a = MakeShim(dir_, "a", "sign_latency_ms=1\n");
  Shim b = MakeShim(dir_, "b", "sign_latency_ms=1\n");
  auto signer = Signer::Create(TestOptions(), {Part("a", a.so, "hsm-a"), Part("b", b.so, "hsm-b")},
                               {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  Signer& s = **signer;
  auto part = [&](const char* name) { return *FindPartition(s.Stats(), name); };

  LoadGen load(s, "seal");
  ASSERT_TRUE(WaitFor([&] { return part("a").signatures > 200 && part("b").signatures > 200; }));

  a.Configure("sign_latency_ms=1\ndown=1\n");
  ASSERT_TRUE(WaitFor([&] { return part("a").state == PartitionState::kDown; }));
  const std::uint64_t b_at_down = part("b").signatures;
  const std::uint64_t a_at_down = part("a").signatures;
  std::this_thread::sleep_for(std::chrono::seconds(5));  // the outage the issue asks for
  EXPECT_EQ(part("a").state, PartitionState::kDown);
  EXPECT_LE(part("a").signatures, a_at_down + 32);   // at most what was already in flight
  EXPECT_GT(part("b").signatures, b_at_down + 500);  // b carried the load meanwhile

  a.Configure("sign_latency_ms=1\n");
  ASSERT_TRUE(WaitFor([&] { return part("a").state == PartitionState::kUp; }));
  const std::uint64_t a_at_up = part("a").signatures;
  ASSERT_TRUE(WaitFor([&] { return part("a").signatures > a_at_up + 200; }));
  load.Stop();

  EXPECT_EQ(load.failed(), 0u) << load.first_error();
  PartitionStats pa = part("a");
  EXPECT_GE(pa.reinits, 1u);
  EXPECT_GE(pa.errors["CKR_DEVICE_ERROR"], 1u);
  EXPECT_GE(a.Count(Counter::kFinalize), 1u);  // the sticky error needed C_Finalize+C_Initialize
  EXPECT_TRUE(s.Ready());
}

TEST_F(RecoveryTest, StickyDeviceErrorOnOnlyPartitionRecoversByReinitialise) {
  Shim a = MakeShim(dir_, "a");
  auto signer = Signer::Create(TestOptions(), {Part("a", a.so, "hsm-a", 2)}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  a.Configure("device_error_at=" + std::to_string(a.Count(Counter::kSign) + 10) + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // > the shim's 20 ms reload
  const std::size_t n = 200;
  Collector c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  EXPECT_EQ(a.Count(Counter::kInjectedDeviceError) > 0, true);
  PartitionStats pa = *FindPartition((*signer)->Stats(), "a");
  EXPECT_EQ(pa.state, PartitionState::kUp);
  EXPECT_GE(pa.reinits, 1u);
  EXPECT_GE(a.Count(Counter::kFinalize), 1u);
}

TEST_F(RecoveryTest, WrongPinMakesExactlyOneLoginAndDisablesThePartition) {
  Shim a = MakeShim(dir_, "a", "pin_lockout_after=3\n");
  Shim b = MakeShim(dir_, "b");
  qseal::testing::WriteFile(dir_.Sub("wrong-pin"), "000000\n");
  ASSERT_EQ(::chmod(dir_.Sub("wrong-pin").c_str(), 0600), 0);  // qseald refuses a looser one
  PartitionOptions pa = Part("a", a.so, "hsm-a");
  pa.pin_source = "file:" + dir_.Sub("wrong-pin");
  auto signer =
      Signer::Create(TestOptions(), {pa, Part("b", b.so, "hsm-b")}, {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  const std::size_t n = 200;
  Collector c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  PartitionStats st = *FindPartition((*signer)->Stats(), "a");
  EXPECT_EQ(st.state, PartitionState::kDisabled);
  EXPECT_NE(st.last_error.find("CKR_PIN_INCORRECT"), std::string::npos) << st.last_error;
  EXPECT_EQ(st.signatures, 0u);
  (*signer)->Shutdown();
  EXPECT_EQ(a.Count(Counter::kLogin), 1u);
  EXPECT_EQ(a.Count(Counter::kWrongPins), 1u);
  EXPECT_EQ(a.Count(Counter::kInjectedPinLocked), 0u);  // far from the lockout
  EXPECT_EQ(a.Count(Counter::kSign), 0u);
}

TEST_F(RecoveryTest, WrongPinOnEveryPartitionRefusesTheKeyAfterOneLoginEach) {
  Shim a = MakeShim(dir_, "a");
  qseal::testing::WriteFile(dir_.Sub("wrong-pin"), "000000");
  ASSERT_EQ(::chmod(dir_.Sub("wrong-pin").c_str(), 0600), 0);  // qseald refuses a looser one
  PartitionOptions pa = Part("a", a.so, "hsm-a");
  pa.pin_source = "file:" + dir_.Sub("wrong-pin");
  auto signer = Signer::Create(TestOptions(), {pa}, {SealKey({"a"})});
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(signer.status().message().find("check 'partition available'"), std::string::npos)
      << signer.status();
  EXPECT_NE(signer.status().message().find("CKR_PIN_INCORRECT"), std::string::npos);
  EXPECT_EQ(a.Count(Counter::kLogin), 1u);
}

TEST_F(RecoveryTest, CorruptedSignatureIsNeverReturnedAndQuarantinesThePartition) {
  Shim a = MakeShim(dir_, "a");
  Shim b = MakeShim(dir_, "b");
  auto signer = Signer::Create(TestOptions(), {Part("a", a.so, "hsm-a"), Part("b", b.so, "hsm-b")},
                               {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  a.Configure("corrupt_sign_at=" + std::to_string(a.Count(Counter::kSign) + 3) + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // > the shim's 20 ms reload
  const std::size_t n = 120;
  Collector c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  EXPECT_EQ(a.Count(Counter::kInjectedCorrupt), 1u);
  SignerStats st = (*signer)->Stats();
  const PartitionStats& pa = *FindPartition(st, "a");
  EXPECT_EQ(pa.state, PartitionState::kQuarantined);
  EXPECT_EQ(pa.verify_failures, 1u);
  EXPECT_EQ(FindPartition(st, "b")->state, PartitionState::kUp);
  // Every signature returned verifies with the independent verifier.
  for (const Outcome& o : c.outcomes()) {
    ASSERT_TRUE(o.signature.ok());
    EXPECT_TRUE(OpensslVerify(dir_, Tokens().CertPem("seal"), SignatureScheme::kEcdsa,
                              DigestAlgorithm::kSha256, o.digest, *o.signature));
  }
}

TEST_F(RecoveryTest, HungCallIsReroutedAfterSignTimeout) {
  Shim a = MakeShim(dir_, "a");
  Shim b = MakeShim(dir_, "b");
  SignerOptions o = TestOptions();
  o.sign_timeout = std::chrono::milliseconds(500);
  auto signer = Signer::Create(o, {Part("a", a.so, "hsm-a", 2), Part("b", b.so, "hsm-b", 2)},
                               {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  const int kHangMs = 4000;
  a.Configure("hang_ms=" + std::to_string(kHangMs) +
              "\nhang_sign_at=" + std::to_string(a.Count(Counter::kSign) + 2) + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // > the shim's 20 ms reload
  auto start = std::chrono::steady_clock::now();
  const std::size_t n = 100;
  Collector c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  ASSERT_TRUE(c.Wait());
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  EXPECT_EQ(a.Count(Counter::kInjectedHang), 1u);
  // Every request, the hung one included, completed long before the hung call returned.
  EXPECT_LT(elapsed, std::chrono::milliseconds(kHangMs - 1000));
  SignerStats st = (*signer)->Stats();
  EXPECT_EQ(FindPartition(st, "a")->timeouts, 1u);
  EXPECT_EQ(FindPartition(st, "a")->sessions_dead, 1);
  EXPECT_GE(st.rerouted, 1u);
}

// A call that never comes back (a network HSM's client library stuck on a dead connection): the
// request is re-routed after sign_timeout, and after hung_call_timeout the module is reported
// wedged (it cannot be re-initialised while a call is inside it) and Shutdown abandons the stuck
// thread instead of waiting for it.
TEST_F(RecoveryTest, HungCallPastHungCallTimeoutWedgesTheModuleAndShutdownAbandonsIt) {
  Shim a = MakeShim(dir_, "a");
  Shim b = MakeShim(dir_, "b");
  SignerOptions o = TestOptions();
  o.sign_timeout = std::chrono::milliseconds(300);
  o.hung_call_timeout = std::chrono::milliseconds(1000);
  auto signer = Signer::Create(o, {Part("a", a.so, "hsm-a", 2), Part("b", b.so, "hsm-b", 2)},
                               {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  Signer& s = **signer;
  EXPECT_TRUE(s.Health().ok());
  const auto kHang = std::chrono::seconds(300);
  a.Configure("hang_ms=" + std::to_string(kHang.count() * 1000) +
              "\nhang_sign_at=" + std::to_string(a.Count(Counter::kSign) + 2) + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // > the shim's 20 ms reload
  const auto start = std::chrono::steady_clock::now();
  const std::size_t n = 100;
  Collector c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.Submit(s, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, static_cast<int>(i));
  }
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  EXPECT_EQ(a.Count(Counter::kInjectedHang), 1u);
  for (std::size_t i = 0; i < n; i += 20) {
    EXPECT_TRUE(OpensslVerify(dir_, Tokens().CertPem("seal"), SignatureScheme::kEcdsa,
                              DigestAlgorithm::kSha256, c.outcomes()[i].digest,
                              *c.outcomes()[i].signature));
  }
  // The stuck call passes hung_call_timeout: module a is wedged (and stays so), b is not named.
  Status health = Status::Ok();
  for (int i = 0; i < 3000 && health.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    health = s.Health();
  }
  ASSERT_FALSE(health.ok());
  EXPECT_EQ(health.code(), StatusCode::kUnavailable);
  EXPECT_NE(health.message().find(a.so), std::string::npos) << health;
  EXPECT_EQ(health.message().find(b.so), std::string::npos) << health;
  EXPECT_NE(health.message().find("wedged"), std::string::npos) << health;
  EXPECT_FALSE(s.Ready());
  // Shutdown returns although a thread is still inside module a (it is abandoned, not joined).
  s.Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, kHang / 2);
  EXPECT_EQ(a.Count(Counter::kInjectedHang), 1u);
  signer->reset();
}

// A request that was never attempted (no partition of its key up for max_queue_time) fails with
// what each partition was doing, so a log alone explains it.
TEST_F(RecoveryTest, RequestPastMaxQueueTimeSaysWhatEachPartitionWasDoing) {
  Shim a = MakeShim(dir_, "a", "down=1\n");
  SignerOptions o = TestOptions();
  o.max_queue_time = std::chrono::milliseconds(500);
  auto signer = Signer::Create(o, {Part("a", a.so, "hsm-a", 2)}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  Collector c(1);
  c.Submit(**signer, 0, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, 1);
  ASSERT_TRUE(c.Wait());
  ASSERT_EQ(c.Failed(), 1u);
  const std::string error = c.FirstError();
  EXPECT_NE(error.find("max_queue_time"), std::string::npos) << error;
  EXPECT_NE(error.find("a: down, 0/2 sessions busy, last error: "), std::string::npos) << error;
}

TEST_F(RecoveryTest, RequestFailingEverywhereFailsWithLastReasonAfterMaxAttempts) {
  Shim a = MakeShim(dir_, "a");
  Shim b = MakeShim(dir_, "b");
  SignerOptions o = TestOptions();
  o.max_attempts = 3;
  o.max_session_failures = 1000;  // keep both partitions up: only the attempt bound ends this
  auto signer = Signer::Create(o, {Part("a", a.so, "hsm-a", 1), Part("b", b.so, "hsm-b", 1)},
                               {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  a.Configure("session_invalid_rate=1\n");
  b.Configure("session_invalid_rate=1\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // > the shim's 20 ms reload
  Collector c(5);
  for (std::size_t i = 0; i < 5; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  ASSERT_TRUE(c.Wait());
  for (const Outcome& out : c.outcomes()) {
    ASSERT_FALSE(out.signature.ok());
    EXPECT_EQ(out.signature.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(out.signature.status().message().find("after 3 attempts"), std::string::npos)
        << out.signature.status();
    EXPECT_NE(out.signature.status().message().find("CKR_SESSION_HANDLE_INVALID"),
              std::string::npos);
  }
  EXPECT_EQ(a.Count(Counter::kSign) + b.Count(Counter::kSign), 2u + 5u * 3u);
}

}  // namespace
}  // namespace qseal::hsm::testing
