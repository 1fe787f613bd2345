// The Kafka source and the Kafka result publisher against librdkafka's mock cluster (three mock
// brokers on loopback ports, hosted in this process: no Kafka broker is packaged) and a real
// RocksDB queue: records become queued documents and their offsets are committed only once
// enqueued, records consumed again map to the documents already queued, refusals get a failure
// result, backpressure keeps records in the topic, and results carry the seal with its headers.
#include "ingest/kafka_source.h"

#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "publish/kafka_publisher.h"
#include "queue/queue.h"
#include "tests/testing/kafka_mock.h"
#include "tests/testing/testing.h"

namespace qseal {
namespace {

using testing::KafkaMock;
using testing::TempDir;
using testing::WaitFor;

class KafkaSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = KafkaMock::Start();
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mock_ = std::move(*m);
    ASSERT_TRUE(mock_->CreateTopic("docs", 3).ok());
    ASSERT_TRUE(mock_->CreateTopic("results", 2).ok());
  }

  void TearDown() override {
    source_.reset();
    publisher_.reset();
  }

  void OpenQueue(std::uint64_t high = 1000, std::uint64_t low = 900) {
    queue::QueueOptions q;
    q.path = dir_.Sub("queue");
    q.high_watermark_count = high;
    q.low_watermark_count = low;
    q.min_free_bytes = 0;
    auto opened = queue::Queue::Open(q);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    queue_ = std::move(*opened);
  }

  publish::KafkaClientOptions Client() const {
    publish::KafkaClientOptions c;
    c.brokers = {mock_->bootstraps()};
    return c;
  }

  void StartSource(int fetch_batch = 16, std::uint64_t high = 0,
                   const std::string& group = "sealers") {
    if (publisher_ == nullptr) {
      publish::KafkaPublisherOptions po;
      po.client = Client();
      po.topic = "results";
      auto p = publish::KafkaPublisher::Create(po);
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      publisher_ = std::move(*p);
    }
    ingest::KafkaSourceOptions so;
    so.client = Client();
    so.name = "docs";
    so.topics = {"docs"};
    so.group = group;
    so.default_profile = "default";
    so.profiles = {"other"};
    so.fetch_batch = fetch_batch;
    so.local_high_watermark = high;
    so.fetch_wait = std::chrono::milliseconds(200);
    so.retry_interval = std::chrono::milliseconds(50);
    source_ = std::make_unique<ingest::KafkaSource>(so, queue_.get(), publisher_.get());
    ASSERT_TRUE(source_->Start().ok());
  }

  std::int64_t Committed() {
    auto c = mock_->CommittedTotal("sealers", "docs");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : -1;
  }

  std::vector<queue::Record> QueuedRecords(std::size_t max) {
    auto leased = queue_->Lease(max, 1ull << 40, std::chrono::minutes(5));
    EXPECT_TRUE(leased.ok());
    return leased.ok() ? *leased : std::vector<queue::Record>{};
  }

  std::string Payload(const queue::Record& r) {
    auto payload = queue_->OpenPayload(r.id);
    EXPECT_TRUE(payload.ok());
    if (!payload.ok()) return "";
    std::string bytes(static_cast<std::size_t>((*payload)->size()), '\0');
    auto n = (*payload)->Read(
        std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()));
    EXPECT_TRUE(n.ok());
    return bytes;
  }

  TempDir dir_;
  std::unique_ptr<KafkaMock> mock_;
  std::unique_ptr<queue::Queue> queue_;
  std::unique_ptr<publish::KafkaPublisher> publisher_;
  std::unique_ptr<ingest::KafkaSource> source_;
};

TEST_F(KafkaSourceTest, EveryRecordBecomesOneQueuedDocumentAndItsOffsetIsCommitted) {
  OpenQueue();
  StartSource();
  constexpr int kDocs = 60;
  for (int i = 0; i < kDocs; ++i) {
    std::map<std::string, std::string> h;
    if (i % 2 == 0) h["Qseal-Filename"] = "invoice-" + std::to_string(i) + ".xml";
    if (i % 3 == 0) h["Qseal-Profile"] = "other";
    if (i % 5 == 0) h["Qseal-Idempotency-Key"] = "msg-" + std::to_string(i);
    ASSERT_TRUE(mock_->Produce("docs", "document " + std::to_string(i), h, i % 3).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().queued == kDocs; }, std::chrono::seconds(30)))
      << queue_->Stats().queued;
  // Committed once enqueued: the group's offsets reach the end of every partition.
  ASSERT_TRUE(WaitFor([&] { return Committed() == kDocs; }, std::chrono::seconds(10)))
      << Committed();
  const ingest::KafkaSourceStats st = source_->Stats();
  EXPECT_EQ(st.enqueued, static_cast<std::uint64_t>(kDocs));
  EXPECT_EQ(st.partitions, 3u);
  // The lag is asked of the brokers once a second.
  EXPECT_TRUE(WaitFor([&] { return source_->Stats().lag == 0; }, std::chrono::seconds(5)))
      << source_->Stats().lag;
  std::set<std::string> keys;
  for (const queue::Record& r : QueuedRecords(kDocs)) {
    EXPECT_EQ(r.source, queue::Source::kBroker);
    EXPECT_EQ(r.client, "kafka:docs");
    keys.insert(r.idempotency_key);
    const std::string bytes = Payload(r);
    const int i = std::stoi(bytes.substr(9));
    EXPECT_EQ(r.profile, i % 3 == 0 ? "other" : "default");
    EXPECT_EQ(r.source_ref.rfind("docs/" + std::to_string(i % 3) + "/", 0), 0u) << r.source_ref;
    if (i % 2 == 0) {
      EXPECT_EQ(r.name, "invoice-" + std::to_string(i) + ".xml");
    } else {
      EXPECT_EQ(r.name.rfind("docs-" + std::to_string(i % 3) + "-", 0), 0u) << r.name;
    }
    EXPECT_EQ(r.idempotency_key, i % 5 == 0 ? "msg-" + std::to_string(i) : r.source_ref);
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kDocs));
}

TEST_F(KafkaSourceTest, RecordsConsumedAgainAreDuplicatesNotNewDocuments) {
  OpenQueue();
  StartSource();
  constexpr int kDocs = 12;
  for (int i = 0; i < kDocs; ++i) {
    ASSERT_TRUE(mock_->Produce("docs", "doc " + std::to_string(i), {}, i % 3).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return Committed() == kDocs; }, std::chrono::seconds(30)));
  source_->Stop();
  // As after a crash before the commit: the records come again (here through a group that has
  // committed nothing, so it starts at the beginning of each partition).
  StartSource(16, 0, "sealers-again");
  ASSERT_TRUE(
      WaitFor([&] { return source_->Stats().duplicates == kDocs; }, std::chrono::seconds(30)))
      << source_->Stats().duplicates;
  EXPECT_EQ(source_->Stats().duplicates, static_cast<std::uint64_t>(kDocs));
  EXPECT_EQ(source_->Stats().enqueued, 0u);
  EXPECT_EQ(queue_->Stats().queued, static_cast<std::uint64_t>(kDocs));
}

TEST_F(KafkaSourceTest, RepeatedKeyIsOneDocumentAndConflictsAndBadProfilesGetAFailureResult) {
  OpenQueue();
  StartSource();
  ASSERT_TRUE(mock_->Produce("docs", "same", {{"Qseal-Idempotency-Key", "k1"}}, 0).ok());
  ASSERT_TRUE(mock_->Produce("docs", "same", {{"Qseal-Idempotency-Key", "k1"}}, 0).ok());
  ASSERT_TRUE(mock_->Produce("docs", "changed", {{"Qseal-Idempotency-Key", "k1"}}, 0).ok());
  ASSERT_TRUE(
      mock_->Produce("docs", "x", {{"Qseal-Idempotency-Key", "k2"}, {"Qseal-Profile", "nope"}}, 1)
          .ok());
  ASSERT_TRUE(WaitFor([&] { return Committed() == 4; }, std::chrono::seconds(30))) << Committed();
  EXPECT_EQ(queue_->Stats().queued, 1u);
  const ingest::KafkaSourceStats st = source_->Stats();
  EXPECT_EQ(st.enqueued, 1u);
  EXPECT_EQ(st.duplicates, 1u);
  EXPECT_EQ(st.rejected, 2u);
  auto results = mock_->ReadTopic("results");
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 2u);
  std::map<std::string, std::string> code_by_key;
  for (const auto& r : *results) {
    EXPECT_EQ(r.headers.at("Qseal-Status"), "failed");
    EXPECT_EQ(r.headers.count("Qseal-Document-Id"), 0u);
    EXPECT_EQ(r.key, r.headers.at("Qseal-Idempotency-Key"));
    EXPECT_TRUE(r.value.empty());
    code_by_key[r.key] = r.headers.at("Qseal-Error-Code");
  }
  EXPECT_EQ(code_by_key["k1"], "FAILED_PRECONDITION");
  EXPECT_EQ(code_by_key["k2"], "INVALID_ARGUMENT");
}

TEST_F(KafkaSourceTest, BackpressureKeepsRecordsInTheTopic) {
  OpenQueue(/*high=*/10, /*low=*/5);
  StartSource(/*fetch_batch=*/4, /*high=*/10);
  constexpr int kDocs = 40;
  for (int i = 0; i < kDocs; ++i) {
    ASSERT_TRUE(mock_->Produce("docs", "doc " + std::to_string(i), {}, i % 3).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return source_->Stats().paused; }, std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // The node holds no more than its high watermark and committed no more; the rest is in the
  // topic.
  EXPECT_LE(queue_->Stats().queued, 10u);
  EXPECT_LE(Committed(), 10);
  EXPECT_TRUE(source_->Stats().paused);
  // The lag is asked of the brokers once a second.
  EXPECT_TRUE(WaitFor([&] { return source_->Stats().lag >= kDocs - 10; }, std::chrono::seconds(5)))
      << source_->Stats().lag;
  std::size_t finished = 0;
  std::set<std::string> contents;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<queue::Record> leased = QueuedRecords(8);
        std::vector<queue::Queue::Completion> done;
        for (const auto& r : leased) {
          contents.insert(Payload(r));
          done.push_back({r.id, Bytes{1, 2, 3}, "application/test"});
        }
        if (!done.empty()) {
          EXPECT_TRUE(queue_->Complete(std::move(done)).ok());
        }
        finished += leased.size();
        return finished == kDocs;
      },
      std::chrono::seconds(60)))
      << finished;
  EXPECT_EQ(contents.size(), static_cast<std::size_t>(kDocs));  // each record once, none lost
  ASSERT_TRUE(WaitFor([&] { return Committed() == kDocs; }, std::chrono::seconds(10)));
  EXPECT_EQ(source_->Stats().enqueued, static_cast<std::uint64_t>(kDocs));
}

queue::Record BrokerRecord(int i) {
  queue::Record r;
  r.id = queue::DocumentId::FromBytes(Bytes(16, static_cast<std::uint8_t>(i + 1)));
  r.source = queue::Source::kBroker;
  r.client = "kafka:docs";
  r.idempotency_key = "docs/0/" + std::to_string(i);
  r.source_ref = r.idempotency_key;
  r.profile = "default";
  r.name = "inv-" + std::to_string(i) + ".xml";
  r.sha256_hex = std::string(64, 'a');
  r.seal_media_type = "application/pkcs7-signature";
  return r;
}

TEST_F(KafkaSourceTest, PublisherSendsEachResultWithItsHeadersAndKey) {
  publish::KafkaPublisherOptions po;
  po.client = Client();
  po.topic = "results";
  auto publisher = publish::KafkaPublisher::Create(po);
  ASSERT_TRUE(publisher.ok()) << publisher.status().ToString();
  std::vector<queue::Record> records;
  for (int i = 0; i < 30; ++i) records.push_back(BrokerRecord(i));
  records[5].seal_media_type.clear();  // a seal that does not say what it is is refused alone
  records[7].idempotency_key.clear();  // as is a broker record without its identity
  std::vector<Bytes> seals;
  for (int i = 0; i < 30; ++i) seals.push_back(Bytes(100 + static_cast<std::size_t>(i), 0x30));
  std::vector<publish::PublishItem> items;
  for (int i = 0; i < 30; ++i)
    items.push_back({&records[static_cast<std::size_t>(i)], seals[static_cast<std::size_t>(i)]});
  std::vector<Status> out = (*publisher)->PublishBatch(items);
  ASSERT_EQ(out.size(), items.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i == 5 || i == 7) {
      EXPECT_EQ(out[i].code(), StatusCode::kInvalidArgument) << i;
    } else {
      EXPECT_TRUE(out[i].ok()) << i << ": " << out[i].ToString();
    }
  }
  ASSERT_TRUE((*publisher)->PublishFailure(BrokerRecord(40), UnavailableError("gave up")).ok());
  auto results = mock_->ReadTopic("results");
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 29u);
  for (const auto& r : *results) {
    const int i = std::stoi(r.key.substr(7));
    EXPECT_EQ(r.headers.at("Qseal-Idempotency-Key"), r.key);
    EXPECT_EQ(r.headers.at("Qseal-Source"), r.key);
    EXPECT_EQ(r.headers.at("Qseal-Filename"), "inv-" + std::to_string(i) + ".xml");
    if (i == 40) {
      EXPECT_EQ(r.headers.at("Qseal-Status"), "failed");
      EXPECT_EQ(r.headers.at("Qseal-Error-Code"), "UNAVAILABLE");
      EXPECT_EQ(r.headers.at("Qseal-Error-Message"), "gave up");
      EXPECT_TRUE(r.value.empty());
    } else {
      EXPECT_EQ(r.headers.at("Qseal-Status"), "sealed");
      EXPECT_EQ(r.headers.at("Content-Type"), "application/pkcs7-signature");
      EXPECT_EQ(r.headers.at("Qseal-Document-Id"),
                records[static_cast<std::size_t>(i)].id.ToString());
      EXPECT_EQ(r.value.size(), 100u + static_cast<std::size_t>(i));
    }
  }
  EXPECT_EQ((*publisher)->Stats().published, 29u);
}

TEST_F(KafkaSourceTest, BrokersDownIsAnOutageTheEngineRetries) {
  publish::KafkaPublisherOptions po;
  po.client = Client();
  po.topic = "results";
  po.publish_timeout = std::chrono::milliseconds(1500);
  auto publisher = publish::KafkaPublisher::Create(po);
  ASSERT_TRUE(publisher.ok());
  const queue::Record r = BrokerRecord(1);
  ASSERT_TRUE((*publisher)->Publish(r, Bytes{1}).ok());
  mock_->SetBrokersUp(false);
  Status down = (*publisher)->Publish(BrokerRecord(2), Bytes{2});
  EXPECT_EQ(down.code(), StatusCode::kUnavailable) << down.ToString();
  EXPECT_GE((*publisher)->Stats().errors, 1u);
  mock_->SetBrokersUp(true);
  Status up = UnavailableError("not tried");
  ASSERT_TRUE(WaitFor(
      [&] {
        up = (*publisher)->Publish(BrokerRecord(2), Bytes{2});
        return up.ok();
      },
      std::chrono::seconds(30)))
      << up.ToString();
  auto results = mock_->ReadTopic("results");
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  std::set<std::string> keys;
  for (const auto& rec : *results) keys.insert(rec.key);
  EXPECT_EQ(keys, (std::set<std::string>{"docs/0/1", "docs/0/2"}));
}

}  // namespace
}  // namespace qseal
