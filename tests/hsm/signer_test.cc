// hsm::Signer against real SoftHSM2 tokens: signatures of every scheme verified with the openssl
// CLI, batches spread over sessions and partitions, backpressure, shutdown, startup checks.
#include "hsm/signer.h"

#include <cstdlib>
#include <latch>

#include <gtest/gtest.h>

#include "tests/hsm/hsm_test_util.h"

namespace qseal::hsm::testing {
namespace {

class SignerTest : public ::testing::Test {
 protected:
  void SetUp() override { Tokens(); }
  TempDir dir_;
};

TEST_F(SignerTest, EverySchemeAndDigestVerifiesWithOpenssl) {
  auto signer = Signer::Create(TestOptions(),
                               {Part("a", kSoftHsm, "hsm-a", 2), Part("b", kSoftHsm, "hsm-b", 2),
                                Part("c", kSoftHsm, "hsm-c", 2)},
                               {SealKey({"a", "b"}), OtherKey({"c"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_TRUE((*signer)->Ready());

  struct Case {
    std::string key;
    std::string cert;
    SignatureScheme scheme;
    DigestAlgorithm digest;
  };
  std::vector<Case> cases;
  for (DigestAlgorithm d :
       {DigestAlgorithm::kSha256, DigestAlgorithm::kSha384, DigestAlgorithm::kSha512}) {
    cases.push_back({"seal", Tokens().CertPem("seal"), SignatureScheme::kEcdsa, d});
    cases.push_back({"other", Tokens().CertPem("other"), SignatureScheme::kRsaPkcs1v15, d});
    cases.push_back({"other", Tokens().CertPem("other"), SignatureScheme::kRsaPss, d});
  }
  const int kPerCase = 4;
  Collector c(cases.size() * kPerCase);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    for (int j = 0; j < kPerCase; ++j) {
      std::size_t idx = i * kPerCase + static_cast<std::size_t>(j);
      c.Submit(**signer, idx, cases[i].key, cases[i].scheme, cases[i].digest,
               static_cast<int>(idx));
    }
  }
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  for (std::size_t i = 0; i < c.outcomes().size(); ++i) {
    const Case& k = cases[i / kPerCase];
    const Outcome& o = c.outcomes()[i];
    ASSERT_TRUE(o.signature.ok());
    EXPECT_EQ(o.calls, 1);
    EXPECT_TRUE(OpensslVerify(dir_, k.cert, k.scheme, k.digest, o.digest, *o.signature))
        << "case " << i << " " << SchemeName(k.scheme) << " " << DigestName(k.digest);
    if (k.scheme != SignatureScheme::kEcdsa) {
      EXPECT_EQ(o.signature->size(), 384u);
    }
  }

  auto info = (*signer)->GetKey("seal");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->type, KeyType::kEc);
  EXPECT_EQ(info->curve, "P-256");
  EXPECT_EQ(info->certificate_chain_der.size(), 2u);
  auto other = (*signer)->GetKey("other");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->type, KeyType::kRsa);
  EXPECT_EQ(other->bits, 3072);
  EXPECT_EQ((*signer)->GetKey("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(SignerTest, BatchesSpreadOverSessionsAndPartitions) {
  SignerOptions o = TestOptions();
  o.max_batch = 8;
  auto signer = Signer::Create(
      o, {Part("a", kSoftHsm, "hsm-a", 4), Part("b", kSoftHsm, "hsm-b", 4)}, {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  const std::size_t n = 4000;
  Collector c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  SignerStats st = (*signer)->Stats();
  EXPECT_EQ(st.succeeded, n);
  EXPECT_EQ(st.queued, 0u);
  EXPECT_EQ(st.in_flight, 0u);
  // Batches formed (fewer dispatches than requests) and were capped at max_batch.
  EXPECT_LT(st.batches, n);
  EXPECT_GE(st.batches, n / 8);
  for (const char* name : {"a", "b"}) {
    const PartitionStats* p = FindPartition(st, name);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->state, PartitionState::kUp);
    EXPECT_GT(p->signatures, n / 10) << name;
    ASSERT_EQ(p->session_signatures.size(), 4u);
    for (std::uint64_t per_session : p->session_signatures) EXPECT_GT(per_session, 0u) << name;
  }
  // A sample through the independent verifier.
  for (std::size_t i = 0; i < n; i += 500) {
    EXPECT_TRUE(OpensslVerify(dir_, Tokens().CertPem("seal"), SignatureScheme::kEcdsa,
                              DigestAlgorithm::kSha256, c.outcomes()[i].digest,
                              *c.outcomes()[i].signature));
  }
}

TEST_F(SignerTest, LingerHoldsASmallBatchUntilItIsFull) {
  SignerOptions o = TestOptions();
  o.max_batch = 4;
  o.max_linger = std::chrono::milliseconds(60'000);
  o.max_queue_time = std::chrono::milliseconds(120'000);
  auto signer = Signer::Create(o, {Part("a", kSoftHsm, "hsm-a", 1)}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  Collector c(4);
  for (std::size_t i = 0; i < 3; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  // Without linger these would already be in flight (dispatch happens inside Submit).
  SignerStats st = (*signer)->Stats();
  EXPECT_EQ(st.queued, 3u);
  EXPECT_EQ(st.in_flight, 0u);
  EXPECT_EQ(st.batches, 0u);
  c.Submit(**signer, 3, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, 3);
  ASSERT_TRUE(c.Wait());
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  st = (*signer)->Stats();
  EXPECT_EQ(st.batches, 1u);  // the four went out together, to one session
  const PartitionStats* p = FindPartition(st, "a");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->session_signatures, std::vector<std::uint64_t>{4});
}

TEST_F(SignerTest, LingerExpiryDispatchesALoneRequest) {
  SignerOptions o = TestOptions();
  o.max_batch = 4;
  o.max_linger = std::chrono::milliseconds(100);
  auto signer = Signer::Create(o, {Part("a", kSoftHsm, "hsm-a", 1)}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  Collector c(1);
  c.Submit(**signer, 0, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, 0);
  ASSERT_TRUE(c.Wait());  // the supervisor dispatched it once it had lingered
  EXPECT_EQ(c.Failed(), 0u) << c.FirstError();
  EXPECT_EQ((*signer)->Stats().batches, 1u);
  EXPECT_EQ(Signer::Create(
                [] {
                  SignerOptions bad;
                  bad.max_linger = bad.max_queue_time;
                  return bad;
                }(),
                {Part("a", kSoftHsm, "hsm-a", 1)}, {SealKey({"a"})})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SignerTest, RejectsRequestsThatDoNotFitTheKey) {
  auto signer = Signer::Create(TestOptions(), {Part("a", kSoftHsm, "hsm-a", 1)}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  auto noop = [](Result<Bytes>) {};
  EXPECT_EQ(
      (*signer)
          ->TrySubmit({"nope", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, Bytes(32)}, noop)
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(
      (*signer)
          ->TrySubmit({"seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha384, Bytes(32)}, noop)
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(
      (*signer)
          ->TrySubmit({"seal", SignatureScheme::kRsaPss, DigestAlgorithm::kSha256, Bytes(32)}, noop)
          .code(),
      StatusCode::kInvalidArgument);
}

TEST_F(SignerTest, BackpressureTrySubmitAndSubmitWithDeadline) {
  TempDir d;
  Shim slow = MakeShim(d, "slow", "sign_latency_ms=600\n");
  SignerOptions o = TestOptions();
  o.max_pending = 2;
  auto signer = Signer::Create(o, {Part("a", slow.so, "hsm-a", 1)}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  std::latch all(3);
  std::atomic<int> ok{0};
  auto cb = [&](Result<Bytes> r) {
    if (r.ok()) ++ok;
    all.count_down();
  };
  Bytes dg(32, 1);
  ASSERT_TRUE((*signer)
                  ->TrySubmit({"seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, dg}, cb)
                  .ok());
  ASSERT_TRUE((*signer)
                  ->TrySubmit({"seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, dg}, cb)
                  .ok());
  Status full =
      (*signer)->TrySubmit({"seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, dg}, cb);
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted) << full;
  Status late = (*signer)->Submit({"seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, dg},
                                  cb, std::chrono::steady_clock::now());
  EXPECT_EQ(late.code(), StatusCode::kDeadlineExceeded) << late;
  // Waits for room (the first request completes after ~600 ms).
  Status waited =
      (*signer)->Submit({"seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, dg}, cb,
                        std::chrono::steady_clock::now() + std::chrono::seconds(30));
  EXPECT_TRUE(waited.ok()) << waited;
  all.wait();
  EXPECT_EQ(ok.load(), 3);
  EXPECT_EQ((*signer)->Stats().rejected, 2u);
}

TEST_F(SignerTest, ShutdownCancelsQueuedRequestsExactlyOnce) {
  TempDir d;
  Shim slow = MakeShim(d, "slow", "sign_latency_ms=50\n");
  auto signer = Signer::Create(TestOptions(), {Part("a", slow.so, "hsm-a", 1)}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  const std::size_t n = 50;
  Collector c(n);
  for (std::size_t i = 0; i < n; ++i) {
    c.Submit(**signer, i, "seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256,
             static_cast<int>(i));
  }
  (*signer)->Shutdown();
  ASSERT_TRUE(c.Wait());
  std::size_t cancelled = 0;
  for (const auto& o : c.outcomes()) {
    EXPECT_EQ(o.calls, 1);
    if (!o.signature.ok()) {
      EXPECT_EQ(o.signature.status().code(), StatusCode::kCancelled);
      ++cancelled;
    }
  }
  EXPECT_GT(cancelled, 0u);
  EXPECT_EQ((*signer)
                ->TrySubmit({"seal", SignatureScheme::kEcdsa, DigestAlgorithm::kSha256, Bytes(32)},
                            [](Result<Bytes>) {})
                .code(),
            StatusCode::kCancelled);
}

TEST_F(SignerTest, PinFromEnvironment) {
  setenv("QSEAL_TEST_PIN", Tokens().pin.c_str(), 1);
  PartitionOptions p = Part("a", kSoftHsm, "hsm-a", 1);
  p.pin_source = "env:QSEAL_TEST_PIN";
  auto signer = Signer::Create(TestOptions(), {p}, {SealKey({"a"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_TRUE((*signer)->Ready());
  p.pin_source = "env:QSEAL_TEST_PIN_UNSET";
  EXPECT_EQ(Signer::Create(TestOptions(), {p}, {SealKey({"a"})}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SignerTest, PartitionsSharingAnEnvPinReadItOnceAndTheVariableIsCleared) {
  setenv("QSEAL_TEST_SHARED_PIN", Tokens().pin.c_str(), 1);
  PartitionOptions a = Part("a", kSoftHsm, "hsm-a", 1);
  PartitionOptions b = Part("b", kSoftHsm, "hsm-b", 1);
  a.pin_source = b.pin_source = "env:QSEAL_TEST_SHARED_PIN";
  auto signer = Signer::Create(TestOptions(), {a, b}, {SealKey({"a", "b"})});
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ(std::getenv("QSEAL_TEST_SHARED_PIN"), nullptr);
  SignerStats st = (*signer)->Stats();
  EXPECT_EQ(FindPartition(st, "a")->state, PartitionState::kUp);
  EXPECT_EQ(FindPartition(st, "b")->state, PartitionState::kUp);
  (*signer)->Shutdown();
}

}  // namespace
}  // namespace qseal::hsm::testing
