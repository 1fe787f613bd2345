// qseald behind NATS JetStream, end to end: a real nats-server -js on loopback (started here, its
// store in a temp dir), real qseald processes with their own SoftHSM2 tokens and RocksDB queues,
// documents published to one work-queue stream, results read back from the result stream. The
// checker: every published document has exactly one result message, a seal that `openssl cms
// -verify` accepts against the exact bytes published (enveloping seals: the content they carry is
// those bytes), nothing left in the work stream; across SIGKILLs of a node and a broker restart.
#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/jetstream_checker.h"
#include "tests/e2e/jetstream_cluster.h"
#include "tests/testing/nats_server.h"
#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using testing::NatsServer;
using testing::Qseald;
using testing::TempDir;
using testing::WaitFor;
using testing::jetstream::CheckResults;
using testing::jetstream::kStream;
using testing::jetstream::NodeOptions;
using testing::jetstream::PublishDocs;
using testing::jetstream::Published;
using testing::jetstream::ResultCount;

class JetStreamE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.Start().ok());
    auto c = testing::ConnectNats(nats_.url());
    ASSERT_TRUE(c.ok());
    client_ = std::move(*c);
    ASSERT_TRUE(testing::CreateWorkQueueStream(*client_, kStream, {"qseal.docs.>"}).ok());
  }

  TempDir tmp_;
  NatsServer nats_{tmp_.Sub("nats")};
  std::unique_ptr<publish::NatsConnection> client_;
};

TEST_F(JetStreamE2eTest, OneNodeSealsEveryMessageOnceAcrossASigkill) {
  constexpr int kDocs = 300;
  std::vector<Published> published;
  PublishDocs(*client_, 0, kDocs, &published);  // a backlog waiting before the node starts
  Qseald node(tmp_.Sub("node"), NodeOptions(nats_.url()));
  ASSERT_TRUE(node.Start().ok()) << node.Stderr();
  ASSERT_TRUE(WaitFor([&] { return ResultCount(*client_) >= 60; }, std::chrono::seconds(60)));
  node.Kill();
  const std::size_t at_kill = ResultCount(*client_);
  ASSERT_TRUE(node.Start().ok()) << node.Stderr();
  ASSERT_TRUE(WaitFor([&] { return ResultCount(*client_) >= kDocs; }, std::chrono::seconds(90)))
      << ResultCount(*client_);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // a late duplicate would show now
  std::vector<std::size_t> by_ca =
      CheckResults(*client_, published, {node.ca_pem()}, tmp_.Sub("c"));
  EXPECT_EQ(by_ca[0], static_cast<std::size_t>(kDocs));
  EXPECT_LT(at_kill, static_cast<std::size_t>(kDocs)) << "killed after the run: nothing tested";
  // The broker metrics are exported, and promtool accepts the exposition.
  testing::CommandResult scrape = testing::RunCommand("curl -sf http://" + node.metrics() +
                                                      "/metrics > " + tmp_.Sub("metrics.txt"));
  ASSERT_EQ(scrape.exit_code, 0) << scrape.output;
  const std::string text = testing::ReadFile(tmp_.Sub("metrics.txt"));
  for (const char* name : {"qseal_jetstream_documents_enqueued_total{jetstream=\"docs\"}",
                           "qseal_jetstream_results_published_total{jetstream=\"docs\"}",
                           "qseal_jetstream_lag_messages{jetstream=\"docs\"} 0",
                           "qseal_jetstream_connected{jetstream=\"docs\"} 1"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  testing::CommandResult check =
      testing::RunCommand("promtool check metrics < " + tmp_.Sub("metrics.txt"));
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(node.Stop(), 0);
}

TEST_F(JetStreamE2eTest, TwoNodesShareOneStreamAcrossSigkillsAndABrokerRestart) {
  constexpr int kDocs = 400;
  Qseald a(tmp_.Sub("a"), NodeOptions(nats_.url()));
  Qseald b(tmp_.Sub("b"), NodeOptions(nats_.url()));
  ASSERT_TRUE(a.Start().ok()) << a.Stderr();
  ASSERT_TRUE(b.Start().ok()) << b.Stderr();
  std::vector<Published> published;
  PublishDocs(*client_, 0, kDocs / 2, &published);
  ASSERT_TRUE(WaitFor([&] { return ResultCount(*client_) >= 50; }, std::chrono::seconds(60)));
  a.Kill();  // SIGKILL mid-stream; b goes on
  PublishDocs(*client_, kDocs / 2, kDocs * 3 / 4, &published);
  ASSERT_TRUE(a.Start().ok()) << a.Stderr();
  ASSERT_TRUE(WaitFor([&] { return ResultCount(*client_) >= 150; }, std::chrono::seconds(60)));
  // The broker restarts (clean stop, same store): both nodes reconnect and carry on.
  EXPECT_EQ(nats_.Stop(), 0);
  ASSERT_TRUE(nats_.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return client_->connected(); }, std::chrono::seconds(30)));
  PublishDocs(*client_, kDocs * 3 / 4, kDocs, &published);
  ASSERT_TRUE(WaitFor([&] { return ResultCount(*client_) >= 300; }, std::chrono::seconds(60)));
  b.Kill();  // and the other one, once
  ASSERT_TRUE(b.Start().ok()) << b.Stderr();
  ASSERT_TRUE(WaitFor([&] { return ResultCount(*client_) >= kDocs; }, std::chrono::seconds(90)))
      << ResultCount(*client_);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::vector<std::size_t> by_ca =
      CheckResults(*client_, published, {a.ca_pem(), b.ca_pem()}, tmp_.Sub("c"));
  EXPECT_EQ(by_ca[0] + by_ca[1], static_cast<std::size_t>(kDocs));
  EXPECT_GT(by_ca[0], 0u) << "node a sealed nothing";
  EXPECT_GT(by_ca[1], 0u) << "node b sealed nothing";
  std::cerr << "node a sealed " << by_ca[0] << ", node b " << by_ca[1] << "\n";
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
}

TEST_F(JetStreamE2eTest, ResultStreamOutageSpendsNoAttemptAndEveryDocumentIsSealedAfterIt) {
  constexpr int kDocs = 20;
  // The result stream cannot be created at first (its subjects would overlap the work stream's),
  // so no result can be published, for longer than two attempts with a 100 ms back-off take.
  // (With the newline: conf/qseald.toml has the same key in a comment.)
  const std::string broken = "\nresult_subject = \"qseal.docs.results\"";
  const std::string fixed = "\nresult_subject = \"qseal.results\"";
  testing::QsealdOptions o = NodeOptions(nats_.url());
  o.edit_config = [base = o.edit_config, broken, fixed](std::string& conf) {
    base(conf);
    for (auto [from, to] :
         {std::pair{fixed, broken},
          std::pair{std::string("max_attempts = 5"), std::string("max_attempts = 2")},
          std::pair{std::string("retry_backoff = \"2s\""),
                    std::string("retry_backoff = \"100ms\"")}}) {
      std::size_t at = conf.find(from);
      ASSERT_NE(at, std::string::npos) << from;
      conf.replace(at, from.size(), to);
    }
  };
  Qseald node(tmp_.Sub("node"), o);
  ASSERT_TRUE(node.Start().ok()) << node.Stderr();
  std::vector<Published> published;
  PublishDocs(*client_, 0, kDocs, &published);
  // Every document taken from the work stream (acked once durable in the local queue), then
  // sealed and refused by the sink a few times.
  ASSERT_TRUE(WaitFor([&] { return testing::StreamMessages(*client_, kStream) == 0; },
                      std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(ResultCount(*client_), 0u);
  EXPECT_EQ(node.Stop(), 0) << node.Stderr();

  std::string conf = testing::ReadFile(node.config_path());
  std::size_t at = conf.find(broken);
  ASSERT_NE(at, std::string::npos);
  conf.replace(at, broken.size(), fixed);
  testing::WriteFile(node.config_path(), conf);
  ASSERT_TRUE(node.Start().ok()) << node.Stderr();
  ASSERT_TRUE(WaitFor([&] { return ResultCount(*client_) >= kDocs; }, std::chrono::seconds(60)))
      << ResultCount(*client_) << " results; " << node.Stderr();
  std::vector<std::size_t> by_ca =
      CheckResults(*client_, published, {node.ca_pem()}, tmp_.Sub("c"));
  EXPECT_EQ(by_ca[0], static_cast<std::size_t>(kDocs));
  EXPECT_EQ(node.Stop(), 0);
}

// The three-node scenario of the long tier, small: 1 500 documents (about 35 s).
TEST(JetStreamClusterSmallTest, ThreeNodesSealEveryDocumentOnceAcrossKillsAndABrokerRestart) {
  testing::jetstream::ThreeNodesAcrossKillsAndABrokerRestart(1500);
}

}  // namespace
}  // namespace qseal
