// The JetStream source and the JetStream result publisher against a real nats-server -js started
// on a loopback port with its store in a temp dir, and a real RocksDB queue: messages become
// queued documents and are acked only once enqueued, redeliveries and repeated keys map to one
// document, refusals get a failure result, backpressure keeps messages in the stream, and the
// publisher stores one result per source message however often it is called.
#include "ingest/jetstream_source.h"

#include <thread>

#include <gtest/gtest.h>

#include "ingest/detail/object_store.h"
#include "publish/jetstream_publisher.h"
#include "queue/queue.h"
#include "tests/testing/nats_server.h"

namespace qseal {
namespace {

using testing::NatsServer;
using testing::TempDir;
using testing::WaitFor;

class JetStreamSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.Start().ok());
    auto c = testing::ConnectNats(nats_.url());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
    auto c2 = testing::ConnectNats(nats_.url());
    ASSERT_TRUE(c2.ok());
    source_conn_ = std::move(*c2);
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

  void StartSource(int fetch_batch = 16, std::uint64_t high = 0) {
    publish::JetStreamPublisherOptions po;
    po.subject_prefix = "test.results";
    po.stream = "RESULTS";
    publisher_ = std::make_unique<publish::JetStreamPublisher>(po, source_conn_.get());
    ingest::JetStreamSourceOptions so;
    so.name = "docs";
    so.stream = "DOCS";
    so.subjects = {"test.docs.>"};
    so.default_profile = "default";
    so.profiles = {"other"};
    so.fetch_batch = fetch_batch;
    so.local_high_watermark = high;
    so.fetch_wait = std::chrono::milliseconds(200);
    so.retry_interval = std::chrono::milliseconds(50);
    source_ = std::make_unique<ingest::JetStreamSource>(so, queue_.get(), source_conn_.get(),
                                                        publisher_.get());
    ASSERT_TRUE(source_->Start().ok());
  }

  // Waits until the stream exists (the source creates it), so publishes land in it.
  void WaitForStream() {
    ASSERT_TRUE(WaitFor(
        [&] {
          jsStreamInfo* si = nullptr;
          if (js_GetStreamInfo(&si, client_->js(), "DOCS", nullptr, nullptr) != NATS_OK)
            return false;
          jsStreamInfo_Destroy(si);
          return true;
        },
        std::chrono::seconds(10)));
  }

  std::vector<queue::Record> QueuedRecords(std::size_t max) {
    auto leased = queue_->Lease(max, 1ull << 40, std::chrono::minutes(5));
    EXPECT_TRUE(leased.ok());
    return leased.ok() ? *leased : std::vector<queue::Record>{};
  }

  TempDir dir_;
  NatsServer nats_{dir_.Sub("nats")};
  std::unique_ptr<publish::NatsConnection> client_;
  std::unique_ptr<publish::NatsConnection> source_conn_;
  std::unique_ptr<queue::Queue> queue_;
  std::unique_ptr<publish::JetStreamPublisher> publisher_;
  std::unique_ptr<ingest::JetStreamSource> source_;
};

TEST_F(JetStreamSourceTest, EveryMessageBecomesOneQueuedDocumentAndIsAcked) {
  OpenQueue();
  StartSource();
  WaitForStream();
  constexpr int kDocs = 60;
  for (int i = 0; i < kDocs; ++i) {
    std::map<std::string, std::string> h;
    if (i % 2 == 0) h["Qseal-Filename"] = "invoice-" + std::to_string(i) + ".xml";
    if (i % 3 == 0) h["Qseal-Profile"] = "other";
    if (i % 5 == 0) h["Nats-Msg-Id"] = "msg-" + std::to_string(i);
    ASSERT_TRUE(
        testing::PublishJs(*client_, "test.docs.in", "document " + std::to_string(i), h).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().queued == kDocs; }, std::chrono::seconds(20)))
      << queue_->Stats().queued;
  // Acked: the work-queue stream drops every message.
  ASSERT_TRUE(WaitFor([&] { return testing::StreamMessages(*client_, "DOCS") == 0; },
                      std::chrono::seconds(10)));
  EXPECT_EQ(source_->Stats().enqueued, static_cast<std::uint64_t>(kDocs));
  std::set<std::string> keys;
  for (const queue::Record& r : QueuedRecords(kDocs)) {
    EXPECT_EQ(r.source, queue::Source::kBroker);
    EXPECT_EQ(r.client, "jetstream:docs");
    keys.insert(r.idempotency_key);
    auto payload = queue_->OpenPayload(r.id);
    ASSERT_TRUE(payload.ok());
    std::string bytes(static_cast<std::size_t>((*payload)->size()), '\0');
    auto n = (*payload)->Read(
        std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()));
    ASSERT_TRUE(n.ok());
    const int i = std::stoi(bytes.substr(9));
    EXPECT_EQ(r.profile, i % 3 == 0 ? "other" : "default");
    if (i % 2 == 0) {
      EXPECT_EQ(r.name, "invoice-" + std::to_string(i) + ".xml");
    }
    if (i % 5 == 0) {
      EXPECT_EQ(r.idempotency_key, "msg-" + std::to_string(i));
    } else {
      EXPECT_EQ(r.idempotency_key, r.source_ref);
      EXPECT_EQ(r.source_ref.rfind("DOCS/", 0), 0u) << r.source_ref;
    }
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kDocs));
}

TEST_F(JetStreamSourceTest, RepeatedKeyIsOneDocumentAndConflictsAndBadProfilesGetAFailureResult) {
  OpenQueue();
  StartSource();
  WaitForStream();
  ASSERT_TRUE(
      testing::PublishJs(*client_, "test.docs.a", "same", {{"Qseal-Idempotency-Key", "k1"}}).ok());
  ASSERT_TRUE(
      testing::PublishJs(*client_, "test.docs.a", "same", {{"Qseal-Idempotency-Key", "k1"}}).ok());
  ASSERT_TRUE(
      testing::PublishJs(*client_, "test.docs.a", "changed", {{"Qseal-Idempotency-Key", "k1"}})
          .ok());
  ASSERT_TRUE(testing::PublishJs(*client_, "test.docs.a", "x",
                                 {{"Qseal-Idempotency-Key", "k2"}, {"Qseal-Profile", "nope"}})
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return testing::StreamMessages(*client_, "DOCS") == 0; },
                      std::chrono::seconds(20)));
  EXPECT_EQ(queue_->Stats().queued, 1u);
  ingest::JetStreamSourceStats st = source_->Stats();
  EXPECT_EQ(st.enqueued, 1u);
  EXPECT_EQ(st.duplicates, 1u);
  EXPECT_EQ(st.rejected, 2u);
  auto results = testing::ReadStream(*client_, "RESULTS");
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 2u);
  std::map<std::string, std::string> code_by_key;
  for (const auto& m : *results) {
    EXPECT_EQ(m.headers.at("Qseal-Status"), "failed");
    EXPECT_EQ(m.headers.count("Qseal-Document-Id"), 0u);
    code_by_key[m.headers.at("Qseal-Idempotency-Key")] = m.headers.at("Qseal-Error-Code");
    EXPECT_EQ(m.subject, publisher_->ResultSubject(m.headers.at("Qseal-Idempotency-Key")));
  }
  EXPECT_EQ(code_by_key["k1"], "FAILED_PRECONDITION");
  EXPECT_EQ(code_by_key["k2"], "INVALID_ARGUMENT");
}

TEST_F(JetStreamSourceTest, BackpressureKeepsMessagesInTheStream) {
  OpenQueue(/*high=*/10, /*low=*/5);
  StartSource(/*fetch_batch=*/4, /*high=*/10);
  WaitForStream();
  constexpr int kDocs = 40;
  for (int i = 0; i < kDocs; ++i) {
    ASSERT_TRUE(testing::PublishJs(*client_, "test.docs.in", "doc " + std::to_string(i)).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return source_->Stats().paused; }, std::chrono::seconds(20)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // The node holds no more than its high watermark; the rest waits at the broker.
  EXPECT_LE(queue_->Stats().queued, 10u);
  EXPECT_GE(testing::StreamMessages(*client_, "DOCS"), static_cast<std::uint64_t>(kDocs - 10));
  EXPECT_TRUE(source_->Stats().paused);
  // Finishing documents lets the source fetch again, until everything is in.
  std::size_t finished = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<queue::Record> leased = QueuedRecords(8);
        std::vector<queue::Queue::Completion> done;
        for (const auto& r : leased) done.push_back({r.id, Bytes{1, 2, 3}, "application/test"});
        if (!done.empty()) {
          EXPECT_TRUE(queue_->Complete(std::move(done)).ok());
        }
        finished += leased.size();
        return finished == kDocs;
      },
      std::chrono::seconds(30)))
      << finished;
  EXPECT_EQ(testing::StreamMessages(*client_, "DOCS"), 0u);
  EXPECT_EQ(source_->Stats().enqueued, static_cast<std::uint64_t>(kDocs));
}

TEST_F(JetStreamSourceTest, PublisherStoresOneResultPerSourceMessageEvenAfterItsWindow) {
  publish::JetStreamPublisherOptions po;
  po.subject_prefix = "test.results";
  po.stream = "RESULTS";
  po.duplicate_window = std::chrono::seconds(1);
  publish::JetStreamPublisher publisher(po, source_conn_.get());
  queue::Record r;
  r.id = queue::DocumentId::FromBytes(Bytes(16, 7));
  r.source = queue::Source::kBroker;
  r.client = "jetstream:docs";
  r.idempotency_key = "DOCS/1";
  r.source_ref = "DOCS/1";
  r.profile = "default";
  r.sha256_hex = std::string(64, 'a');
  r.seal_media_type = "application/pkcs7-signature";
  const Bytes first = {1, 2, 3}, second = {4, 5, 6};
  ASSERT_TRUE(publisher.Publish(r, first).ok());
  ASSERT_TRUE(publisher.Publish(r, second).ok());  // within the window: dropped
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(publisher.Publish(r, second).ok());  // after it: refused by subject
  ASSERT_TRUE(publisher.PublishFailure(r, UnavailableError("late")).ok());
  auto results = testing::ReadStream(*client_, "RESULTS");
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ((*results)[0].data, std::string("\x01\x02\x03"));
  EXPECT_EQ((*results)[0].headers.at("Qseal-Status"), "sealed");
  EXPECT_EQ((*results)[0].headers.at("Qseal-Document-Id"), r.id.ToString());
  EXPECT_EQ((*results)[0].headers.at("Content-Type"), "application/pkcs7-signature");
  publish::JetStreamPublisherStats st = publisher.Stats();
  EXPECT_EQ(st.published, 1u);
  EXPECT_EQ(st.duplicates, 3u);
}

TEST_F(JetStreamSourceTest, PublishBatchSendsAllAndRefusesRepeats) {
  publish::JetStreamPublisherOptions po;
  po.subject_prefix = "test.results";
  po.stream = "RESULTS";
  publish::JetStreamPublisher publisher(po, source_conn_.get());
  std::vector<queue::Record> records(40);
  for (std::size_t i = 0; i < records.size(); ++i) {
    records[i].id = queue::DocumentId::FromBytes(Bytes(16, static_cast<std::uint8_t>(i + 1)));
    records[i].source = queue::Source::kBroker;
    records[i].idempotency_key = "DOCS/" + std::to_string(i);
    records[i].source_ref = records[i].idempotency_key;
    records[i].seal_media_type = "application/pkcs7-signature";
  }
  records[5].seal_media_type.clear();  // a seal that does not say what it is is refused alone
  ASSERT_TRUE(publisher.Publish(records[3], Bytes{9}).ok());  // published before
  const Bytes seal = {7, 7, 7};
  std::vector<publish::PublishItem> items;
  for (const auto& r : records) items.push_back({&r, seal});
  std::vector<Status> out = publisher.PublishBatch(items);
  ASSERT_EQ(out.size(), items.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i == 5) {
      EXPECT_EQ(out[i].code(), StatusCode::kInvalidArgument);
    } else {
      EXPECT_TRUE(out[i].ok()) << i << ": " << out[i].ToString();
    }
  }
  auto results = testing::ReadStream(*client_, "RESULTS");
  ASSERT_TRUE(results.ok());
  EXPECT_EQ(results->size(), records.size() - 1);  // all but the refused one, item 3 once
  std::map<std::string, std::string> body_by_key;
  for (const auto& m : *results) body_by_key[m.headers.at("Qseal-Idempotency-Key")] = m.data;
  EXPECT_EQ(body_by_key["DOCS/3"], std::string("\x09"));
  EXPECT_EQ(body_by_key["DOCS/4"], std::string("\x07\x07\x07"));
  EXPECT_EQ(publisher.Stats().published, records.size() - 1);
  EXPECT_EQ(publisher.Stats().duplicates, 1u);
}

TEST_F(JetStreamSourceTest, BrokerRestartIsAnOutageNotAnError) {
  OpenQueue();
  StartSource();
  WaitForStream();
  ASSERT_TRUE(testing::PublishJs(*client_, "test.docs.in", "before").ok());
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().queued == 1; }, std::chrono::seconds(10)));
  nats_.Kill();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(nats_.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return client_->connected(); }, std::chrono::seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return testing::PublishJs(*client_, "test.docs.in", "after").ok(); },
                      std::chrono::seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().queued == 2; }, std::chrono::seconds(30)))
      << queue_->Stats().queued;
}

// A document too large for a message comes as a reference into the object store: written here by
// the NATS Go client (another implementation of the store's layout), read into the queue chunk by
// chunk, checked against the object's size and digest. A missing object and one whose info does
// not match its chunks are refused with a failure result.
TEST_F(JetStreamSourceTest, ObjectStoreReferencesAreReadWholeAndChecked) {
  const std::string put_tool = QSEAL_NATS_OBJECT_PUT;
  ASSERT_FALSE(put_tool.empty())
      << "the NATS Go client is missing: scripts/deps installs golang-go and "
         "golang-github-nats-io-go-nats-dev";
  OpenQueue();
  StartSource();
  WaitForStream();
  // 1.2 MB, about ten 128 KiB chunks, bytes that differ from chunk to chunk.
  std::string big(1'200'000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>((i * 2654435761u) >> 13);
  }
  testing::WriteFile(dir_.Sub("big.bin"), big);
  testing::CommandResult put = testing::RunCommand(
      put_tool + " " + nats_.url() + " invoices big-invoice.xml " + dir_.Sub("big.bin"));
  ASSERT_EQ(put.exit_code, 0) << put.output;
  EXPECT_NE(put.output.find("1200000 10 SHA-256="), std::string::npos) << put.output;
  // A second name whose info claims big-invoice.xml's chunks with another digest.
  const std::string meta_subject =
      "$O.invoices.M." + ingest::detail::Base64Url(AsBytes(std::string("big-invoice.xml")));
  natsMsg* raw = nullptr;
  ASSERT_EQ(
      js_GetLastMsg(&raw, client_->js(), "OBJ_invoices", meta_subject.c_str(), nullptr, nullptr),
      NATS_OK);
  std::string info(natsMsg_GetData(raw), static_cast<std::size_t>(natsMsg_GetDataLength(raw)));
  natsMsg_Destroy(raw);
  const std::size_t digest = info.find("SHA-256=");
  ASSERT_NE(digest, std::string::npos) << info;
  std::string forged = info;
  forged[digest + 8] = forged[digest + 8] == 'A' ? 'B' : 'A';
  const std::size_t name_at = forged.find("big-invoice.xml");
  ASSERT_NE(name_at, std::string::npos);
  forged.replace(name_at, 15, "bad-invoice.xml");
  ASSERT_TRUE(testing::PublishJs(*client_,
                                 "$O.invoices.M." + ingest::detail::Base64Url(
                                                        AsBytes(std::string("bad-invoice.xml"))),
                                 forged)
                  .ok());

  ASSERT_TRUE(testing::PublishJs(
                  *client_, "test.docs.in", "",
                  {{"Qseal-Object", "invoices/big-invoice.xml"}, {"Qseal-Idempotency-Key", "big"}})
                  .ok());
  ASSERT_TRUE(testing::PublishJs(
                  *client_, "test.docs.in", "",
                  {{"Qseal-Object", "invoices/bad-invoice.xml"}, {"Qseal-Idempotency-Key", "bad"}})
                  .ok());
  ASSERT_TRUE(testing::PublishJs(
                  *client_, "test.docs.in", "",
                  {{"Qseal-Object", "invoices/missing.xml"}, {"Qseal-Idempotency-Key", "missing"}})
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return testing::StreamMessages(*client_, "DOCS") == 0; },
                      std::chrono::seconds(30)));
  ASSERT_EQ(queue_->Stats().queued, 1u);
  std::vector<queue::Record> records = QueuedRecords(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].name, "big-invoice.xml");
  EXPECT_EQ(records[0].idempotency_key, "big");
  auto payload = queue_->OpenPayload(records[0].id);
  ASSERT_TRUE(payload.ok());
  std::string bytes(static_cast<std::size_t>((*payload)->size()), '\0');
  ASSERT_TRUE((*payload)
                  ->Read(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(bytes.data()),
                                                 bytes.size()))
                  .ok());
  EXPECT_TRUE(bytes == big) << "the queued document is not the object's bytes";
  auto results = testing::ReadStream(*client_, "RESULTS");
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  std::map<std::string, std::string> why;
  for (const auto& m : *results) {
    EXPECT_EQ(m.headers.at("Qseal-Error-Code"), "INVALID_ARGUMENT");
    why[m.headers.at("Qseal-Idempotency-Key")] = m.headers.at("Qseal-Error-Message");
  }
  ASSERT_EQ(why.size(), 2u);
  EXPECT_NE(why["bad"].find("do not match its SHA-256 digest"), std::string::npos) << why["bad"];
  EXPECT_NE(why["missing"].find("does not exist"), std::string::npos) << why["missing"];
}

}  // namespace
}  // namespace qseal
