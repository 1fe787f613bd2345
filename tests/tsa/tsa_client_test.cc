#include "tsa/tsa_client.h"

#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include "common/sha256.h"
#include "tests/testing/testing.h"
#include "tests/tsa/test_tsa.h"

namespace qseal::tsa {
namespace {

using qseal::testing::TestTsa;
using qseal::testing::TsaFault;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

Bytes RandomDigest(std::size_t size = 32) {
  Bytes out(size);
  EXPECT_EQ(RAND_bytes(out.data(), static_cast<int>(size)), 1);
  return out;
}

// Waits (bounded) until `pred` holds; the tests assert on server counters, not on elapsed time.
template <typename Pred>
bool Eventually(Pred pred, milliseconds limit = milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// A port nothing listens on: bound, then closed.
int ClosedPort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

class TsaClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new qseal::testing::TempDir();
    auto pki = qseal::testing::MakeTsaPki(dir_->path().string());
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = new qseal::testing::TsaPki(pki.value());
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }

  void SetUp() override {
    ASSERT_NE(pki_, nullptr);
    server_ = std::make_unique<TestTsa>(*pki_);
    ASSERT_TRUE(server_->Start().ok());
  }

  TsaEndpoint Endpoint(const std::string& name, const std::string& url) const {
    TsaEndpoint e;
    e.name = name;
    e.url = url;
    e.ca_file = pki_->ca_pem;
    e.timeout = milliseconds(10000);  // generous: sanitizer and valgrind runs are slow
    return e;
  }

  TsaClientOptions OneTsa() const {
    TsaClientOptions o;
    o.tsas.push_back(Endpoint("a", server_->url()));
    o.backoff_initial = milliseconds(1);
    return o;
  }

  static Result<TimeStampToken> StampOnce(TsaClient& client, const Bytes& digest) {
    return client.Stamp(DigestAlgorithm::kSha256, digest).get();
  }

  static qseal::testing::TempDir* dir_;
  static qseal::testing::TsaPki* pki_;
  std::unique_ptr<TestTsa> server_;
};

qseal::testing::TempDir* TsaClientTest::dir_ = nullptr;
qseal::testing::TsaPki* TsaClientTest::pki_ = nullptr;

TEST_F(TsaClientTest, TokensVerifyWithOpensslTs) {
  auto client = TsaClient::Create(OneTsa());
  ASSERT_TRUE(client.ok()) << client.status();
  struct Case {
    DigestAlgorithm algorithm;
    Bytes digest;
    std::future<Result<TimeStampToken>> token;
  };
  std::vector<Case> cases;
  for (int i = 0; i < 6; ++i) {
    DigestAlgorithm alg = i % 3 == 0   ? DigestAlgorithm::kSha256
                          : i % 3 == 1 ? DigestAlgorithm::kSha384
                                       : DigestAlgorithm::kSha512;
    Bytes digest = RandomDigest(DigestSize(alg));
    auto future = client.value()->Stamp(alg, digest);
    cases.push_back({alg, digest, std::move(future)});
  }
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto token = cases[i].token.get();
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(token.value().tsa, "a");
    EXPECT_FALSE(token.value().serial_hex.empty());
    auto skew = std::chrono::system_clock::now() - token.value().gen_time;
    EXPECT_LT(std::chrono::abs(skew), std::chrono::seconds(5));
    std::string path = dir_->Sub("token" + std::to_string(i) + ".der");
    qseal::testing::WriteFile(path, std::string(AsChars(token.value().der)));
    auto r = qseal::testing::RunCommand(
        "openssl ts -verify -token_in -in " + qseal::testing::ShellQuote(path) + " -digest " +
        HexEncode(cases[i].digest) + " -CAfile " + qseal::testing::ShellQuote(pki_->ca_pem));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("Verification: OK"));
  }
}

TEST_F(TsaClientTest, PolicyIsRequestedAndChecked) {
  TsaClientOptions o = OneTsa();
  o.tsas[0].policy_oid = "1.3.6.1.4.1.99999.2";
  auto client = TsaClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  auto token = StampOnce(*client.value(), RandomDigest());
  ASSERT_TRUE(token.ok()) << token.status();
  std::string path = dir_->Sub("policy.der");
  qseal::testing::WriteFile(path, std::string(AsChars(token.value().der)));
  auto r = qseal::testing::RunCommand("openssl ts -reply -token_in -in " +
                                      qseal::testing::ShellQuote(path) + " -text -token_out");
  EXPECT_THAT(r.output, HasSubstr("Policy OID: 1.3.6.1.4.1.99999.2"));

  o.tsas[0].policy_oid = "not an oid";
  EXPECT_EQ(TsaClient::Create(o).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TsaClientTest, RefusesEachBadResponseWithItsReason) {
  TsaClientOptions o = OneTsa();
  o.max_attempts = 1;
  o.breaker_failures = 1000;
  o.tsas[0].timeout = milliseconds(300);
  auto client = TsaClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  struct Case {
    TsaFault fault;
    milliseconds delay;
    std::string reason;
  };
  ASSERT_FALSE(pki_->expired_pem.empty()) << "libfaketime is missing (scripts/deps installs it)";
  const std::vector<Case> cases = {
      {TsaFault::kHttp503, milliseconds(0), "HTTP 503"},
      {TsaFault::kRejection, milliseconds(0), "PKIStatus rejection"},
      {TsaFault::kWrongNonce, milliseconds(0), "nonce mismatch"},
      {TsaFault::kWrongImprint, milliseconds(0), "message imprint differs"},
      {TsaFault::kUntrusted, milliseconds(0), "certificate verify error"},
      {TsaFault::kEkuNotCritical, milliseconds(0), "timeStamping is not critical"},
      {TsaFault::kDrop, milliseconds(0), "reading the answer"},
      {TsaFault::kGarbage, milliseconds(0), "not a DER TimeStampResp"},
      {TsaFault::kBadSignature, milliseconds(0), "signature failure"},
      {TsaFault::kExpired, milliseconds(0), "certificate has expired"},
      {TsaFault::kNone, milliseconds(1000), "timed out"},
  };
  for (const Case& c : cases) {
    server_->SetFault(c.fault);
    server_->SetDelay(c.delay);
    auto token = StampOnce(*client.value(), RandomDigest());
    ASSERT_FALSE(token.ok()) << c.reason;
    EXPECT_EQ(token.status().code(), StatusCode::kUnavailable);
    EXPECT_THAT(token.status().message(), HasSubstr(c.reason));
    EXPECT_THAT(token.status().message(), HasSubstr("TSA a"));
  }
  server_->SetFault(TsaFault::kNone);
  server_->SetDelay(milliseconds(0));
  auto token = StampOnce(*client.value(), RandomDigest());
  EXPECT_TRUE(token.ok()) << token.status();
  auto health = client.value()->Health()[0];
  EXPECT_EQ(health.failures, cases.size());
  EXPECT_EQ(health.tokens, 1u);
  EXPECT_EQ(health.requests, cases.size() + 1);
}

TEST_F(TsaClientTest, RefusesGenTimeFarFromTheLocalClock) {
  ManualClock clock(std::chrono::system_clock::now() + std::chrono::hours(1));
  TsaClientOptions o = OneTsa();
  o.max_attempts = 1;
  auto client = TsaClient::Create(o, clock);
  ASSERT_TRUE(client.ok());
  auto token = StampOnce(*client.value(), RandomDigest());
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(token.status().message(), HasSubstr("away from the local clock"));
}

TEST_F(TsaClientTest, RefusesWrongDigestLengthAtOnce) {
  auto client = TsaClient::Create(OneTsa());
  ASSERT_TRUE(client.ok());
  auto token = client.value()->Stamp(DigestAlgorithm::kSha384, RandomDigest(32)).get();
  EXPECT_EQ(token.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server_->requests(), 0);
}

TEST_F(TsaClientTest, FailsOverToTheSecondTsaWhenTheFirstIsDown) {
  TsaClientOptions o;
  o.tsas.push_back(Endpoint("down", "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/"));
  o.tsas.push_back(Endpoint("b", server_->url()));
  o.backoff_initial = milliseconds(1);
  o.breaker_failures = 2;
  auto client = TsaClient::Create(o);
  ASSERT_TRUE(client.ok());
  std::vector<std::future<Result<TimeStampToken>>> futures;
  for (int i = 0; i < 20; ++i) {
    futures.push_back(client.value()->Stamp(DigestAlgorithm::kSha256, RandomDigest()));
  }
  for (auto& f : futures) {
    auto token = f.get();
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(token.value().tsa, "b");
  }
  EXPECT_EQ(server_->requests(), 20);
  auto health = client.value()->Health();
  ASSERT_EQ(health.size(), 2u);
  EXPECT_EQ(health[0].state, BreakerState::kOpen);
  EXPECT_EQ(health[1].state, BreakerState::kClosed);
}

TEST_F(TsaClientTest, CircuitOpensAndClosesAfterTheCooldown) {
  ManualClock clock(std::chrono::system_clock::now());
  TsaClientOptions o = OneTsa();
  o.max_attempts = 1;
  o.breaker_failures = 3;
  o.breaker_cooldown = milliseconds(10000);
  auto client = TsaClient::Create(o, clock);
  ASSERT_TRUE(client.ok());
  server_->SetFault(TsaFault::kHttp503);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(StampOnce(*client.value(), RandomDigest()).ok());
  EXPECT_EQ(server_->requests(), 3);
  EXPECT_EQ(client.value()->Health()[0].state, BreakerState::kOpen);

  // Open: refused without a request, with the status that keeps documents queued.
  auto refused = StampOnce(*client.value(), RandomDigest());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("no TSA available"));
  EXPECT_EQ(server_->requests(), 3);

  // Half-open: a failed probe opens it again.
  clock.Advance(milliseconds(10000));
  EXPECT_EQ(client.value()->Health()[0].state, BreakerState::kHalfOpen);
  EXPECT_FALSE(StampOnce(*client.value(), RandomDigest()).ok());
  EXPECT_EQ(server_->requests(), 4);
  EXPECT_EQ(client.value()->Health()[0].state, BreakerState::kOpen);

  // After the next cool-down a good probe closes it.
  server_->SetFault(TsaFault::kNone);
  clock.Advance(milliseconds(10000));
  auto token = StampOnce(*client.value(), RandomDigest());
  EXPECT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(server_->requests(), 5);
  EXPECT_EQ(client.value()->Health()[0].state, BreakerState::kClosed);
  EXPECT_TRUE(StampOnce(*client.value(), RandomDigest()).ok());
}

TEST_F(TsaClientTest, RateLimitHoldsAtTheServer) {
  ManualClock clock(std::chrono::system_clock::now());
  TsaClientOptions o = OneTsa();
  o.tsas[0].rate_per_second = 10;
  o.tsas[0].burst = 5;
  auto client = TsaClient::Create(o, clock);
  ASSERT_TRUE(client.ok());
  std::vector<std::future<Result<TimeStampToken>>> futures;
  for (int i = 0; i < 20; ++i) {
    futures.push_back(client.value()->Stamp(DigestAlgorithm::kSha256, RandomDigest()));
  }
  ASSERT_TRUE(Eventually([&] { return server_->requests() == 5; }));
  // Time stands still for the client: nothing more may go, however long the wall clock runs.
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(server_->requests(), 5);
  EXPECT_EQ(client.value()->pending(), 15u);
  // 10/s refills 5 tokens in 500 ms; the bucket holds 5 at most, so waiting longer adds none.
  clock.Advance(milliseconds(500));
  ASSERT_TRUE(Eventually([&] { return server_->requests() == 10; }));
  clock.Advance(milliseconds(5000));
  ASSERT_TRUE(Eventually([&] { return server_->requests() == 15; }));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(server_->requests(), 15);
  clock.Advance(milliseconds(500));
  for (auto& f : futures) EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(server_->requests(), 20);
}

TEST_F(TsaClientTest, ManyRequestsInFlightOverAFewConnections) {
  TsaClientOptions o = OneTsa();
  o.tsas[0].connections = 3;
  auto client = TsaClient::Create(o);
  ASSERT_TRUE(client.ok());
  server_->SetDelay(milliseconds(2));
  constexpr int kRequests = 300;
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  for (int i = 0; i < kRequests; ++i) {
    client.value()->Stamp(DigestAlgorithm::kSha256, RandomDigest(),
                          [&](Result<TimeStampToken> token) {
                            if (token.ok()) ++ok;
                            ++done;
                          });
  }
  ASSERT_TRUE(Eventually([&] { return done == kRequests; }, milliseconds(20000)));
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(server_->requests(), kRequests);
  EXPECT_LE(server_->connections(), 3);
  EXPECT_EQ(server_->max_concurrent(), 3);
  auto health = client.value()->Health()[0];
  EXPECT_EQ(health.open_connections, 3u);
  EXPECT_EQ(health.requests, static_cast<std::uint64_t>(kRequests));
  EXPECT_EQ(health.tokens, static_cast<std::uint64_t>(kRequests));
  EXPECT_EQ(health.failures, 0u);
  EXPECT_GT(health.request_seconds_sum, 0.0);
}

TEST_F(TsaClientTest, TryStampRefusesBeyondMaxPending) {
  TsaClientOptions o = OneTsa();
  o.max_pending = 2;
  auto client = TsaClient::Create(o);
  ASSERT_TRUE(client.ok());
  server_->SetDelay(milliseconds(300));
  std::atomic<int> done{0};
  auto count = [&](Result<TimeStampToken>) { ++done; };
  EXPECT_TRUE(client.value()->TryStamp(DigestAlgorithm::kSha256, RandomDigest(), count).ok());
  EXPECT_TRUE(client.value()->TryStamp(DigestAlgorithm::kSha256, RandomDigest(), count).ok());
  EXPECT_EQ(client.value()->TryStamp(DigestAlgorithm::kSha256, RandomDigest(), count).code(),
            StatusCode::kResourceExhausted);
  ASSERT_TRUE(Eventually([&] { return done == 2; }));
}

TEST_F(TsaClientTest, ShutdownCancelsOutstandingRequests) {
  auto client = TsaClient::Create(OneTsa());
  ASSERT_TRUE(client.ok());
  server_->SetDelay(milliseconds(1000));
  auto token = client.value()->Stamp(DigestAlgorithm::kSha256, RandomDigest());
  ASSERT_TRUE(Eventually([&] { return server_->requests() == 1; }));
  client.value()->Shutdown();
  EXPECT_EQ(token.get().status().code(), StatusCode::kCancelled);
  auto later = client.value()->Stamp(DigestAlgorithm::kSha256, RandomDigest()).get();
  EXPECT_EQ(later.status().code(), StatusCode::kCancelled);
}

TEST_F(TsaClientTest, StampsOverHttps) {
  TestTsa tls_server(*pki_, /*tls=*/true);
  ASSERT_TRUE(tls_server.Start().ok());
  TsaClientOptions o;
  o.tsas.push_back(Endpoint("tls", tls_server.url()));
  o.tsas[0].tls_ca_file = pki_->ca_pem;
  o.tsas[0].connections = 2;
  o.max_attempts = 1;
  auto client = TsaClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<std::future<Result<TimeStampToken>>> futures;
  for (int i = 0; i < 10; ++i) {
    futures.push_back(client.value()->Stamp(DigestAlgorithm::kSha256, RandomDigest()));
  }
  for (auto& f : futures) {
    auto token = f.get();
    EXPECT_TRUE(token.ok()) << token.status();
  }
  EXPECT_LE(tls_server.connections(), 2);

  // A server certificate from another CA is refused at the handshake.
  o.tsas[0].tls_ca_file = pki_->dir + "/rogue-ca.pem";
  auto rogue = TsaClient::Create(o);
  ASSERT_TRUE(rogue.ok());
  auto refused = StampOnce(*rogue.value(), RandomDigest());
  EXPECT_THAT(refused.status().message(), HasSubstr("TLS handshake"));
}

}  // namespace
}  // namespace qseal::tsa
