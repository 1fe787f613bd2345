// qseald behind NATS JetStream, end to end: a real nats-server -js on loopback (started here, its
// store in a temp dir), real qseald processes with their own SoftHSM2 tokens and RocksDB queues,
// documents published to one work-queue stream, results read back from the result stream. The
// checker: every published document has exactly one result message, a seal that `openssl cms
// -verify` accepts against the exact bytes published (enveloping seals: the content they carry is
// those bytes), nothing left in the work stream; across SIGKILLs of a node and a broker restart.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/nats_server.h"
#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using testing::NatsServer;
using testing::Qseald;
using testing::TempDir;
using testing::WaitFor;

constexpr char kStream[] = "DOCS";
constexpr char kResults[] = "QSEAL_RESULTS";

// A [[jetstream]] section for a node: the shared stream and consumer, a short ack_wait so that
// messages a killed node fetched but never enqueued come back quickly.
testing::QsealdOptions NodeOptions(const std::string& url) {
  testing::QsealdOptions o;
  o.edit_config = [url](std::string& conf) {
    conf += "\n[[jetstream]]\nname = \"docs\"\nservers = [\"" + url +
            "\"]\nstream = \"DOCS\"\nsubjects = [\"qseal.docs.>\"]\nconsumer = \"sealers\"\n"
            "profile = \"default\"\nprofiles = [\"invoice-p7m\"]\nfetch_batch = 32\n"
            "ack_wait = \"5s\"\nresult_subject = \"qseal.results\"\n";
  };
  return o;
}

struct Published {
  std::string key;      // the idempotency key the node derives
  std::string content;  // the exact bytes
  bool enveloping = false;
};

std::string Content(int i) {
  std::string s = "<Invoice><ID>" + std::to_string(i) + "</ID>";
  s.append(static_cast<std::size_t>(1500 + (i % 13) * 97), static_cast<char>('a' + i % 26));
  return s + "</Invoice>";
}

// Publishes documents [from, to): even ones with a Nats-Msg-Id (the key), odd ones without (the
// key is stream/sequence); every fifth asks for the enveloping profile.
void PublishDocs(publish::NatsConnection& nc, int from, int to, std::vector<Published>* out) {
  for (int i = from; i < to; ++i) {
    Published p;
    p.content = Content(i);
    p.enveloping = i % 5 == 0;
    std::map<std::string, std::string> h = {
        {"Qseal-Filename", "inv-" + std::to_string(i) + ".xml"}};
    if (p.enveloping) h["Qseal-Profile"] = "invoice-p7m";
    if (i % 2 == 0) h["Nats-Msg-Id"] = "doc-" + std::to_string(i);
    Result<std::uint64_t> seq = Result<std::uint64_t>(UnavailableError("not yet"));
    for (int attempt = 0; attempt < 50 && !seq.ok(); ++attempt) {
      seq = testing::PublishJs(nc, "qseal.docs.in", p.content, h);
      if (!seq.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    p.key =
        i % 2 == 0 ? "doc-" + std::to_string(i) : std::string(kStream) + "/" + std::to_string(*seq);
    out->push_back(std::move(p));
  }
}

std::size_t ResultCount(publish::NatsConnection& nc) {
  return static_cast<std::size_t>(testing::StreamMessages(nc, kResults));
}

// The checker. Returns how many seals verified against each CA (by index in `cas`).
std::vector<std::size_t> CheckResults(publish::NatsConnection& nc,
                                      const std::vector<Published>& published,
                                      const std::vector<std::string>& cas,
                                      const std::string& work) {
  std::vector<std::size_t> by_ca(cas.size(), 0);
  auto results = testing::ReadStream(nc, kResults);
  EXPECT_TRUE(results.ok()) << results.status().ToString();
  if (!results.ok()) return by_ca;
  std::map<std::string, std::vector<const testing::StreamMessage*>> by_key;
  for (const auto& m : *results)
    by_key[m.headers.count("Qseal-Idempotency-Key") != 0 ? m.headers.at("Qseal-Idempotency-Key")
                                                         : ""]
        .push_back(&m);
  EXPECT_EQ(results->size(), published.size()) << "result messages vs published documents";
  std::filesystem::create_directories(work);
  std::mutex mu;
  std::atomic<std::size_t> next{0};
  std::vector<std::string> failures;
  auto worker = [&] {
    for (std::size_t i = next++; i < published.size(); i = next++) {
      const Published& p = published[i];
      auto it = by_key.find(p.key);
      std::string failure;
      if (it == by_key.end()) {
        failure = "lost: no result for " + p.key;
      } else if (it->second.size() != 1) {
        failure = std::to_string(it->second.size()) + " results for " + p.key;
      } else if (it->second[0]->headers.at("Qseal-Status") != "sealed") {
        failure = p.key + " not sealed: " + it->second[0]->headers.at("Qseal-Status");
      } else {
        const std::string base = work + "/" + std::to_string(i);
        testing::WriteFile(base + ".seal", it->second[0]->data);
        testing::WriteFile(base + ".doc", p.content);
        std::string err = "no CA";
        for (std::size_t c = 0; c < cas.size() && !err.empty(); ++c) {
          err = testing::OpensslVerify(base + ".seal", cas[c], p.enveloping ? "" : base + ".doc",
                                       p.enveloping ? base + ".out" : "");
          if (err.empty() && p.enveloping && testing::ReadFile(base + ".out") != p.content) {
            err = "enveloped content differs";
          }
          if (err.empty()) {
            std::lock_guard<std::mutex> lock(mu);
            ++by_ca[c];
          }
        }
        if (!err.empty()) failure = p.key + ": " + err;
      }
      if (!failure.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(failure);
      }
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures; first: " << failures.front();
  EXPECT_EQ(testing::StreamMessages(nc, kStream), 0u) << "messages left unacked in the stream";
  return by_ca;
}

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

}  // namespace
}  // namespace qseal
