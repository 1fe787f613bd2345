// qseald behind Kafka, end to end: librdkafka's mock cluster (three mock brokers on loopback,
// hosted in this test process: no Kafka broker is packaged), real qseald processes with their
// own SoftHSM2 tokens and RocksDB queues consuming one topic as one consumer group, results read
// back from the result topic. The checker: every produced document has a `sealed` result whose
// seal `openssl cms -verify` accepts against the exact bytes produced (enveloping seals: the
// content they carry is those bytes); results of one document beyond the first are counted and
// must be the same queued document (same Qseal-Document-Id: sealed again after a SIGKILL between
// the brokers' ack and the queue's commit, the caveat of docs/scale-out.md), never a second
// document.
#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testing/kafka_mock.h"
#include "tests/testing/qseald_harness.h"

namespace qseal {
namespace {

using testing::KafkaMock;
using testing::KafkaRecord;
using testing::Qseald;
using testing::TempDir;
using testing::WaitFor;

struct Produced {
  std::string key;
  std::string content;
  bool enveloping = false;
};

std::string Content(int i) {
  std::string s = "<Invoice><ID>" + std::to_string(i) + "</ID>";
  s.append(static_cast<std::size_t>(1500 + (i % 13) * 97), static_cast<char>('a' + i % 26));
  return s + "</Invoice>";
}

class KafkaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = KafkaMock::Start();
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mock_ = std::move(*m);
    ASSERT_TRUE(mock_->CreateTopic("invoices", 4).ok());
    ASSERT_TRUE(mock_->CreateTopic("qseal.results", 4).ok());
  }

  testing::QsealdOptions NodeOptions() const {
    testing::QsealdOptions o;
    o.edit_config = [brokers = mock_->bootstraps()](std::string& conf) {
      conf += "\n[[kafka]]\nname = \"invoices\"\nbrokers = [\"" + brokers +
              "\"]\ntopics = [\"invoices\"]\ngroup = \"sealers\"\nprofile = \"default\"\n"
              "profiles = [\"invoice-p7m\"]\nfetch_batch = 32\nresult_topic = \"qseal.results\"\n"
              "session_timeout = \"6s\"\n";
    };
    return o;
  }

  // Documents [from, to): odd ones with a Qseal-Idempotency-Key, which is then their key, the
  // others without (key: topic/partition/offset); every fifth asks for the enveloping profile.
  void Produce(int from, int to) {
    for (int i = from; i < to; ++i) {
      Produced p;
      p.content = Content(i);
      p.enveloping = i % 5 == 0;
      std::map<std::string, std::string> h = {
          {"Qseal-Filename", "inv-" + std::to_string(i) + ".xml"}};
      if (p.enveloping) h["Qseal-Profile"] = "invoice-p7m";
      if (i % 2 == 1) h["Qseal-Idempotency-Key"] = "inv-" + std::to_string(i);
      const std::int32_t partition = i % 4;
      Result<std::int64_t> offset = mock_->Produce("invoices", p.content, h, partition);
      ASSERT_TRUE(offset.ok()) << offset.status().ToString();
      p.key = i % 2 == 1 ? "inv-" + std::to_string(i)
                         : "invoices/" + std::to_string(partition) + "/" + std::to_string(*offset);
      produced_.push_back(std::move(p));
    }
  }

  // Result records now (repeats included).
  std::size_t ResultCount() {
    auto n = mock_->Records("qseal.results");
    return n.ok() ? static_cast<std::size_t>(*n) : 0;
  }

  // Distinct documents with a result now.
  std::size_t ResultKeys() {
    auto results = mock_->ReadTopic("qseal.results");
    if (!results.ok()) return 0;
    std::set<std::string> keys;
    for (const auto& r : *results) keys.insert(r.key);
    return keys.size();
  }

  // The checker (see the top). Returns how many seals verified against each CA and, through
  // `repeats`, the results beyond the first of a document. With `one_queue` (one node) repeats
  // must be of the same queued document; across nodes, a partition handed over between a node's
  // enqueue and its offset commit is sealed by both (each seal verifies; docs/scale-out.md).
  std::vector<std::size_t> Check(const std::vector<std::string>& cas, bool one_queue,
                                 std::size_t* repeats) {
    std::vector<std::size_t> by_ca(cas.size(), 0);
    auto results = mock_->ReadTopic("qseal.results");
    EXPECT_TRUE(results.ok()) << results.status().ToString();
    if (!results.ok()) return by_ca;
    std::map<std::string, std::vector<const KafkaRecord*>> by_key;
    for (const auto& r : *results) by_key[r.key].push_back(&r);
    EXPECT_EQ(by_key.size(), produced_.size()) << "documents with a result vs produced";
    *repeats = results->size() - by_key.size();
    const std::string work = tmp_.Sub("check");
    std::filesystem::create_directories(work);
    std::mutex mu;
    std::atomic<std::size_t> next{0};
    std::vector<std::string> failures;
    auto worker = [&] {
      for (std::size_t i = next++; i < produced_.size(); i = next++) {
        const Produced& p = produced_[i];
        auto it = by_key.find(p.key);
        std::string failure;
        if (it == by_key.end()) {
          failure = "lost: no result for " + p.key;
        }
        for (std::size_t n = 0; failure.empty() && it != by_key.end() && n < it->second.size();
             ++n) {
          const KafkaRecord& r = *it->second[n];
          if (r.headers.at("Qseal-Status") != "sealed") {
            failure = p.key + " not sealed: " + r.headers.at("Qseal-Status");
            break;
          }
          if (one_queue &&
              r.headers.at("Qseal-Document-Id") != it->second[0]->headers.at("Qseal-Document-Id")) {
            failure = p.key + ": results of two different queued documents";
            break;
          }
          std::string err;
          const int ca = testing::VerifyAgainstAny(
              r.value, p.content, p.enveloping, cas,
              work + "/" + std::to_string(i) + "-" + std::to_string(n), &err);
          if (ca < 0) {
            failure = p.key + ": " + err;
          } else if (n == 0) {
            std::lock_guard<std::mutex> lock(mu);
            ++by_ca[static_cast<std::size_t>(ca)];
          }
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
    return by_ca;
  }

  TempDir tmp_;
  std::unique_ptr<KafkaMock> mock_;
  std::vector<Produced> produced_;
};

TEST_F(KafkaE2eTest, OneNodeSealsEveryRecordAcrossASigkill) {
  constexpr int kDocs = 600;
  Produce(0, kDocs);  // a backlog waiting before the node starts
  Qseald node(tmp_.Sub("node"), NodeOptions());
  ASSERT_TRUE(node.Start().ok()) << node.Stderr();
  ASSERT_TRUE(WaitFor([&] { return ResultCount() >= 60; }, std::chrono::seconds(60),
                      std::chrono::milliseconds(20)));
  node.Kill();
  const std::size_t at_kill = ResultCount();
  ASSERT_TRUE(node.Start().ok()) << node.Stderr();
  ASSERT_TRUE(WaitFor([&] { return ResultKeys() >= kDocs; }, std::chrono::seconds(90)))
      << ResultKeys();
  std::this_thread::sleep_for(std::chrono::seconds(1));  // a late repeat would show now
  std::size_t repeats = 0;
  std::vector<std::size_t> by_ca = Check({node.ca_pem()}, /*one_queue=*/true, &repeats);
  EXPECT_EQ(by_ca[0], static_cast<std::size_t>(kDocs));
  EXPECT_LT(at_kill, static_cast<std::size_t>(kDocs)) << "killed after the run: nothing tested";
  std::cerr << "results beyond the first after one SIGKILL: " << repeats << "\n";
  // The broker metrics are exported, and promtool accepts the exposition. The restarted node is
  // given every partition once the group has dropped the killed member (session_timeout).
  std::string text;
  EXPECT_TRUE(WaitFor(
      [&] {
        testing::CommandResult scrape = testing::RunCommand(
            "curl -sf http://" + node.metrics() + "/metrics > " + tmp_.Sub("metrics.txt"));
        text = testing::ReadFile(tmp_.Sub("metrics.txt"));
        return scrape.exit_code == 0 &&
               text.find("qseal_kafka_assigned_partitions{kafka=\"invoices\"} 4") !=
                   std::string::npos &&
               text.find("qseal_kafka_lag_messages{kafka=\"invoices\"} 0") != std::string::npos;
      },
      std::chrono::seconds(30)));
  for (const char* name : {"qseal_kafka_documents_enqueued_total{kafka=\"invoices\"}",
                           "qseal_kafka_results_published_total{kafka=\"invoices\"}",
                           "qseal_kafka_lag_messages{kafka=\"invoices\"} 0",
                           "qseal_kafka_assigned_partitions{kafka=\"invoices\"} 4"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  testing::CommandResult check =
      testing::RunCommand("promtool check metrics < " + tmp_.Sub("metrics.txt"));
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(node.Stop(), 0);
}

TEST_F(KafkaE2eTest, TwoNodesShareTheTopicThroughOneGroupAcrossASigkill) {
  constexpr int kDocs = 300;
  Qseald a(tmp_.Sub("a"), NodeOptions());
  Qseald b(tmp_.Sub("b"), NodeOptions());
  ASSERT_TRUE(a.Start().ok()) << a.Stderr();
  ASSERT_TRUE(b.Start().ok()) << b.Stderr();
  // Both nodes in the group before the documents come, so the group splits the partitions.
  auto assigned = [](Qseald& n) {
    testing::CommandResult r = testing::RunCommand(
        "curl -sf http://" + n.metrics() + "/metrics | grep '^qseal_kafka_assigned_partitions'");
    return r.exit_code == 0 && r.output.find("} 2") != std::string::npos;
  };
  ASSERT_TRUE(WaitFor([&] { return assigned(a) && assigned(b); }, std::chrono::seconds(60)));
  Produce(0, kDocs / 2);
  ASSERT_TRUE(WaitFor([&] { return ResultCount() >= 50; }, std::chrono::seconds(60),
                      std::chrono::milliseconds(20)));
  a.Kill();  // its partitions go to b once the group notices (session timeout)
  Produce(kDocs / 2, kDocs);
  ASSERT_TRUE(a.Start().ok()) << a.Stderr();
  ASSERT_TRUE(WaitFor([&] { return ResultKeys() >= kDocs; }, std::chrono::seconds(120)))
      << ResultKeys();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  std::size_t repeats = 0;
  std::vector<std::size_t> by_ca = Check({a.ca_pem(), b.ca_pem()}, /*one_queue=*/false, &repeats);
  EXPECT_EQ(by_ca[0] + by_ca[1], static_cast<std::size_t>(kDocs));
  EXPECT_GT(by_ca[0], 0u) << "node a sealed nothing";
  EXPECT_GT(by_ca[1], 0u) << "node b sealed nothing";
  std::cerr << "node a sealed " << by_ca[0] << ", node b " << by_ca[1]
            << "; results beyond the first: " << repeats << "\n";
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
}

}  // namespace
}  // namespace qseal
