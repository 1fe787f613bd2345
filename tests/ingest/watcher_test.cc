// FolderWatcher against a real RocksDB queue and real inotify on a temp dir, publishing through the
// same root's publish::FolderOutbox as in the daemon. A fake engine loop leases records and
// publishes a stand-in seal (the record's sha256 hex) through the outbox, so the test can check
// that every output pairs the right seal with the right original; real signing is covered by the
// daemon's e2e tests, the outbox alone by tests/publish/folder_outbox_test.cc.
#include "ingest/watcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/sha256.h"
#include "publish/folder_outbox.h"
#include "queue/queue.h"
#include "tests/testing/seal_namer.h"
#include "tests/testing/testing.h"

namespace qseal::ingest {
namespace {

namespace fs = std::filesystem;
using qseal::testing::ListNames;
using qseal::testing::ReadFile;
using qseal::testing::TempDir;
using qseal::testing::WriteFile;

std::string Sha256Hex(const std::string& data) { return qseal::Sha256Hex(AsBytes(data)); }

// Polls `pred` until true or the timeout (file system effects of another thread have no latch).
bool WaitFor(const std::function<bool()>& pred,
             std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// Leases records and publishes them through the outbox, as the engine does: Publish (or
// PublishFailure) first, then the queue's final state.
class FakeEngine {
 public:
  FakeEngine(queue::Queue* q, publish::Publisher* p, bool fail = false, int threads = 4)
      : queue_(q), publisher_(p), fail_(fail) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~FakeEngine() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  std::uint64_t done() const { return done_.load(); }
  std::uint64_t errors() const { return errors_.load(); }

 private:
  void Run() {
    while (!stop_) {
      auto leased = queue_->Lease(64, 1ull << 30, std::chrono::seconds(60));
      if (!leased.ok() || leased->empty()) {
        queue_->WaitForWork(std::chrono::milliseconds(20));
        continue;
      }
      std::vector<queue::Queue::Completion> completions;
      std::vector<queue::Queue::Failure> failures;
      for (const auto& r : *leased) {
        if (fail_) {
          Status err = InvalidArgumentError("not a document we can seal");
          if (!publisher_->PublishFailure(r, err).ok()) errors_++;
          failures.push_back({r.id, err, false});
        } else {
          Status s = publisher_->Publish(r, AsBytes(r.sha256_hex));
          if (!s.ok()) {
            errors_++;
            continue;
          }
          completions.push_back({r.id, Bytes(r.sha256_hex.begin(), r.sha256_hex.end()),
                                 "application/pkcs7-signature"});
        }
      }
      if (!completions.empty() && !queue_->Complete(std::move(completions)).ok()) errors_++;
      if (!failures.empty() && !queue_->Fail(std::move(failures)).ok()) errors_++;
      done_ += leased->size();
    }
  }

  queue::Queue* queue_;
  publish::Publisher* publisher_;
  bool fail_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> done_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::vector<std::thread> threads_;
};

class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.Sub("watch");
    staging_ = tmp_.Sub("staging");
    fs::create_directories(staging_);
    OpenQueue();
  }

  // Also a new outbox, as a restarted process has.
  void OpenQueue(queue::QueueOptions options = {}) {
    outbox_.reset();
    options.path = tmp_.Sub("queue");
    auto q = queue::Queue::Open(options);
    ASSERT_TRUE(q.ok()) << q.status();
    queue_ = std::move(*q);
    outbox_ = std::make_unique<publish::FolderOutbox>(root_, queue_.get(), &namer_);
  }

  WatchOptions Options() const {
    WatchOptions o;
    o.root = root_;
    o.profile = "default";
    return o;
  }

  std::string Inbox() const { return root_ + "/inbox"; }
  std::string Processing() const { return root_ + "/processing"; }
  std::string Outbox() const { return root_ + "/outbox"; }
  std::string Failed() const { return root_ + "/failed"; }

  // The producer protocol: write under a temporary name elsewhere, rename in.
  void Drop(const std::string& name, const std::string& content) {
    std::string tmp = staging_ + "/" + name;
    WriteFile(tmp, content);
    ASSERT_EQ(::rename(tmp.c_str(), (Inbox() + "/" + name).c_str()), 0);
  }

  // Asserts outbox/<name> holds `content` and outbox/<name>.p7s the stand-in seal for it.
  void ExpectPublished(const std::string& name, const std::string& content) {
    EXPECT_EQ(ReadFile(Outbox() + "/" + name), content) << name;
    EXPECT_EQ(ReadFile(Outbox() + "/" + name + ".p7s"), Sha256Hex(content)) << name;
  }

  TempDir tmp_;
  std::string root_;
  std::string staging_;
  std::unique_ptr<queue::Queue> queue_;
  qseal::testing::CadesSealNamer namer_;
  std::unique_ptr<publish::FolderOutbox> outbox_;
};

TEST(WatcherOptionsTest, StartRefusesMissingProfile) {
  TempDir tmp;
  auto q = queue::Queue::Open({.path = tmp.Sub("queue")});
  ASSERT_TRUE(q.ok());
  qseal::testing::CadesSealNamer namer;
  publish::FolderOutbox outbox(tmp.Sub("w"), q->get(), &namer);
  FolderWatcher w({.root = tmp.Sub("w"), .profile = ""}, q->get(), &outbox);
  EXPECT_EQ(w.Start().code(), StatusCode::kInvalidArgument);
}

TEST(WatcherOptionsTest, StartRefusesAMissingOutboxOrOneOfAnotherRoot) {
  TempDir tmp;
  auto q = queue::Queue::Open({.path = tmp.Sub("queue")});
  ASSERT_TRUE(q.ok());
  FolderWatcher none({.root = tmp.Sub("w"), .profile = "default"}, q->get(), nullptr);
  EXPECT_EQ(none.Start().code(), StatusCode::kInvalidArgument);
  qseal::testing::CadesSealNamer namer;
  publish::FolderOutbox other(tmp.Sub("other"), q->get(), &namer);
  FolderWatcher w({.root = tmp.Sub("w"), .profile = "default"}, q->get(), &other);
  EXPECT_EQ(w.Start().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp.Sub("w")));
}

TEST_F(WatcherTest, StartCreatesTheFourFolders) {
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  for (const auto& d : {Inbox(), Processing(), Outbox(), Failed()}) {
    EXPECT_TRUE(fs::is_directory(d)) << d;
  }
  EXPECT_EQ(w.Start().code(), StatusCode::kFailedPrecondition);
  w.Stop();
  w.Stop();
}

TEST_F(WatcherTest, LeavesSymlinkFifoDotFileTmpAndOpenFileAlone) {
  WatchOptions o = Options();
  o.poll_interval = std::chrono::milliseconds(20);  // rescans must not claim them either
  FolderWatcher w(o, queue_.get(), outbox_.get());
  fs::create_directories(Inbox());
  WriteFile(staging_ + "/target.txt", "symlink target");
  ASSERT_EQ(::symlink((staging_ + "/target.txt").c_str(), (Inbox() + "/link.txt").c_str()), 0);
  ASSERT_EQ(::mkfifo((Inbox() + "/pipe").c_str(), 0600), 0);
  WriteFile(Inbox() + "/.hidden", "dot file");
  WriteFile(Inbox() + "/upload.tmp", "temp file");
  fs::create_directories(Inbox() + "/subdir");
  // Written in place and not closed yet: seen by the start scan, must not be claimed.
  int writing = ::open((Inbox() + "/writing.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(writing, 0);
  ASSERT_EQ(::write(writing, "partial", 7), 7);

  FakeEngine engine(queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  Drop("done.txt", "a complete document");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Outbox() + "/done.txt"); }));
  std::uint64_t scans = w.Stats().scans;
  ASSERT_TRUE(WaitFor([&] { return w.Stats().scans >= scans + 5; }));

  ExpectPublished("done.txt", "a complete document");
  EXPECT_EQ(ListNames(Inbox()), (std::set<std::string>{".hidden", "link.txt", "pipe", "subdir",
                                                       "upload.tmp", "writing.txt"}));
  EXPECT_TRUE(ListNames(Processing()).empty());
  EXPECT_EQ(ListNames(Outbox()), (std::set<std::string>{"done.txt", "done.txt.p7s"}));
  EXPECT_EQ(ReadFile(staging_ + "/target.txt"), "symlink target");
  EXPECT_GT(w.Stats().skipped, 0u);
  EXPECT_EQ(queue_->Stats().sealed, 1u);

  // Closing the file written in place makes it claimable (IN_CLOSE_WRITE).
  ASSERT_EQ(::write(writing, " and the rest", 13), 13);
  ::close(writing);
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Outbox() + "/writing.txt"); }));
  ExpectPublished("writing.txt", "partial and the rest");
  EXPECT_EQ(engine.errors(), 0u);
  w.Stop();
}

TEST_F(WatcherTest, RenamedFileIsPublishedOnceAndPublishIsIdempotent) {
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  {
    FakeEngine engine(queue_.get(), outbox_.get());
    Drop("invoice.pdf", "%PDF-1.7 pretend");
    ASSERT_TRUE(WaitFor([&] { return engine.done() == 1 && queue_->Stats().sealed == 1; }));
    EXPECT_EQ(engine.errors(), 0u);
  }
  ExpectPublished("invoice.pdf", "%PDF-1.7 pretend");
  EXPECT_TRUE(ListNames(Processing()).empty());

  // The engine crashed between Publish and the queue commit and publishes again: nothing new.
  auto leased = queue_->Lease(10, 1 << 20, std::chrono::seconds(10));
  ASSERT_TRUE(leased.ok());
  EXPECT_TRUE(leased->empty());
  auto stats = w.Stats();
  EXPECT_EQ(stats.claimed, 1u);
  EXPECT_EQ(stats.published, 1u);
  // A copy of the sealed record, as the engine would pass it again.
  queue::Record r;
  r.client = root_;
  r.name = "invoice.pdf";
  r.sha256_hex = Sha256Hex("%PDF-1.7 pretend");
  EXPECT_TRUE(outbox_->Publish(r, AsBytes(std::string("other seal"))).ok());
  ExpectPublished("invoice.pdf", "%PDF-1.7 pretend");
  EXPECT_EQ(ListNames(Outbox()).size(), 2u);
  EXPECT_EQ(w.Stats().published, 1u);

  // A record from another root or with a path in its name is refused.
  queue::Record other = r;
  other.client = "/elsewhere";
  EXPECT_EQ(outbox_->Publish(other, AsBytes(std::string("x"))).code(),
            StatusCode::kInvalidArgument);
  queue::Record sneaky = r;
  sneaky.name = "../escape";
  EXPECT_EQ(outbox_->Publish(sneaky, AsBytes(std::string("x"))).code(),
            StatusCode::kInvalidArgument);
  w.Stop();
}

// The engine hands the outbox every seal assembled since its last call in one PublishBatch
// (two directory fsyncs for all of them); each item still succeeds or fails on its own.
TEST_F(WatcherTest, PublishBatchPublishesEachItemOnItsOwn) {
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  const int kDocs = 5;
  for (int i = 0; i < kDocs; ++i)
    Drop("doc" + std::to_string(i) + ".txt", "content " + std::to_string(i));
  std::vector<queue::Record> records;
  ASSERT_TRUE(WaitFor([&] {
    auto leased = queue_->Lease(kDocs, 1 << 20, std::chrono::seconds(60));
    if (leased.ok()) records.insert(records.end(), leased->begin(), leased->end());
    return records.size() == kDocs;
  }));
  // One item from another root and one whose profile names no seal fail; the others are
  // published.
  queue::Record foreign = records[0];
  foreign.client = "/elsewhere";
  queue::Record unnamed = records[1];
  unnamed.profile = "unnamed";
  std::vector<std::string> seals;
  for (const auto& r : records) seals.push_back(r.sha256_hex);
  std::vector<publish::PublishItem> items;
  for (int i = 0; i < kDocs; ++i) items.push_back({&records[i], AsBytes(seals[i])});
  items.push_back({&foreign, AsBytes(seals[0])});
  items.push_back({&unnamed, AsBytes(seals[1])});
  std::vector<Status> published = outbox_->PublishBatch(items);
  ASSERT_EQ(published.size(), items.size());
  for (int i = 0; i < kDocs; ++i) EXPECT_TRUE(published[i].ok()) << i << ": " << published[i];
  EXPECT_EQ(published[kDocs].code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(published[kDocs + 1].code(), StatusCode::kInvalidArgument);
  for (int i = 0; i < kDocs; ++i) {
    ExpectPublished("doc" + std::to_string(i) + ".txt", "content " + std::to_string(i));
  }
  EXPECT_TRUE(ListNames(Processing()).empty());
  EXPECT_EQ(ListNames(Outbox()).size(), 2u * kDocs);  // no temp file left behind
  EXPECT_EQ(w.Stats().published, static_cast<std::uint64_t>(kDocs));

  // Published again (a crash before the queue commit): every item is OK and nothing new appears.
  items.resize(kDocs);
  for (const Status& s : outbox_->PublishBatch(items)) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(ListNames(Outbox()).size(), 2u * kDocs);
  EXPECT_EQ(w.Stats().published, static_cast<std::uint64_t>(kDocs));
  w.Stop();
}

TEST_F(WatcherTest, FilesInTheInboxBeforeStartAreClaimedByTheStartScan) {
  fs::create_directories(Inbox());
  for (int i = 0; i < 20; ++i) Drop("early-" + std::to_string(i), "early " + std::to_string(i));
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  FakeEngine engine(queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 20; }));
  for (int i = 0; i < 20; ++i) {
    ExpectPublished("early-" + std::to_string(i), "early " + std::to_string(i));
  }
  EXPECT_GE(w.Stats().scans, 1u);
  w.Stop();
}

TEST_F(WatcherTest, FiveThousandFilesDroppedAtOnceArePublishedExactlyOnce) {
  constexpr int kFiles = 5000;
  std::map<std::string, std::string> contents;
  for (int i = 0; i < kFiles; ++i) {
    std::string name = "doc-" + std::to_string(i) + ".xml";
    std::string content = "<doc n=\"" + std::to_string(i) + "\">" +
                          std::string(static_cast<std::size_t>(i % 97) * 13, 'x') + "</doc>";
    WriteFile(staging_ + "/" + name, content);
    contents[name] = content;
  }
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  FakeEngine engine(queue_.get(), outbox_.get());
  for (const auto& [name, content] : contents) {
    ASSERT_EQ(::rename((staging_ + "/" + name).c_str(), (Inbox() + "/" + name).c_str()), 0);
  }
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == kFiles; }, std::chrono::seconds(90)))
      << "sealed " << queue_->Stats().sealed;
  auto outbox = ListNames(Outbox());
  EXPECT_EQ(outbox.size(), 2u * kFiles);
  for (const auto& [name, content] : contents) ExpectPublished(name, content);
  EXPECT_TRUE(ListNames(Inbox()).empty());
  EXPECT_TRUE(ListNames(Processing()).empty());
  auto stats = w.Stats();
  EXPECT_EQ(stats.claimed, static_cast<std::uint64_t>(kFiles));
  EXPECT_EQ(stats.published, static_cast<std::uint64_t>(kFiles));
  EXPECT_EQ(stats.duplicates, 0u);
  EXPECT_EQ(engine.errors(), 0u);
  auto qs = queue_->Stats();
  EXPECT_EQ(qs.queued + qs.leased + qs.failed, 0u);
  w.Stop();
}

TEST_F(WatcherTest, CollisionsGetASuffixAndNothingIsOverwritten) {
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  WriteFile(Outbox() + "/report.txt", "someone else's file");
  FakeEngine engine(queue_.get(), outbox_.get());
  Drop("report.txt", "first report");
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 1; }));
  Drop("report.txt", "second report");
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 2; }));
  Drop("README", "no extension");
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 3; }));
  Drop("README", "no extension again");
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 4; }));

  EXPECT_EQ(ReadFile(Outbox() + "/report.txt"), "someone else's file");
  EXPECT_FALSE(fs::exists(Outbox() + "/report.txt.p7s"));
  ExpectPublished("report-1.txt", "first report");
  ExpectPublished("report-2.txt", "second report");
  ExpectPublished("README", "no extension");
  ExpectPublished("README-1", "no extension again");
  EXPECT_EQ(ListNames(Outbox()).size(), 9u);
  w.Stop();
}

TEST_F(WatcherTest, OverLongNameIsShortenedKeepingItsExtension) {
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  FakeEngine engine(queue_.get(), outbox_.get());
  std::string long_name = std::string(240, 'n') + ".pdf";
  Drop(long_name, "long named");
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 1; }));
  std::string short_name = std::string(196, 'n') + ".pdf";
  ExpectPublished(short_name, "long named");
  EXPECT_EQ(engine.errors(), 0u);
  w.Stop();
}

TEST_F(WatcherTest, BackpressurePausesClaimingAndResumes) {
  constexpr int kFiles = 40;
  queue::QueueOptions qo;
  qo.high_watermark_count = 3;
  qo.low_watermark_count = 1;
  queue_.reset();
  OpenQueue(qo);
  WatchOptions o = Options();
  o.backpressure_recheck = std::chrono::milliseconds(10);
  FolderWatcher w(o, queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  for (int i = 0; i < kFiles; ++i) Drop("f" + std::to_string(i), "content " + std::to_string(i));
  ASSERT_TRUE(WaitFor([&] { return w.Stats().paused; }));
  // Claiming stopped near the watermark: a claim batch in flight may overshoot a little (its
  // extra files wait in processing/ for admission), but the inbox keeps the rest.
  auto paused = w.Stats();
  EXPECT_GE(paused.claimed, 3u);
  EXPECT_LT(paused.claimed, 16u);
  EXPECT_GT(ListNames(Inbox()).size(), static_cast<std::size_t>(kFiles - 16));
  EXPECT_LT(queue_->Stats().queued, 16u);
  std::uint64_t scans = w.Stats().scans;
  // Still paused while nothing drains the queue.
  ASSERT_TRUE(WaitFor([&] { return w.Stats().paused; }));
  EXPECT_EQ(w.Stats().scans, scans);

  FakeEngine engine(queue_.get(), outbox_.get());
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == kFiles; }));
  for (int i = 0; i < kFiles; ++i) {
    ExpectPublished("f" + std::to_string(i), "content " + std::to_string(i));
  }
  EXPECT_FALSE(w.Stats().paused);
  EXPECT_EQ(w.Stats().claimed, static_cast<std::uint64_t>(kFiles));
  EXPECT_EQ(ListNames(Outbox()).size(), 2u * kFiles);
  EXPECT_TRUE(ListNames(Processing()).empty());
  EXPECT_TRUE(ListNames(Inbox()).empty());
  EXPECT_EQ(engine.errors(), 0u);
  w.Stop();
}

TEST_F(WatcherTest, RestartReenqueuesProcessingWithTheSameIds) {
  std::set<std::string> first_ids;
  {
    FolderWatcher w(Options(), queue_.get(), outbox_.get());
    ASSERT_TRUE(w.Start().ok());
    for (int i = 0; i < 3; ++i) Drop("r" + std::to_string(i), "doc " + std::to_string(i));
    ASSERT_TRUE(WaitFor([&] { return w.Stats().claimed == 3; }));
    w.Stop();
    // The engine had leased them when the process died.
    auto leased = queue_->Lease(10, 1 << 20, std::chrono::seconds(60));
    ASSERT_TRUE(leased.ok());
    ASSERT_EQ(leased->size(), 3u);
    for (const auto& r : *leased) first_ids.insert(r.id.ToString());
  }
  EXPECT_EQ(ListNames(Processing()).size(), 3u);
  // A file claimed by the dead process but never enqueued (crash between rename and commit).
  WriteFile(Processing() + "/orphan.txt", "claimed, not enqueued");
  queue_.reset();
  OpenQueue();

  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  auto stats = w.Stats();
  EXPECT_EQ(stats.reconciled, 4u);
  EXPECT_EQ(stats.duplicates, 3u);
  EXPECT_EQ(queue_->Stats().queued, 4u);

  std::set<std::string> second_ids;
  auto leased = queue_->Lease(10, 1 << 20, std::chrono::seconds(60));
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 4u);
  std::vector<queue::Queue::Completion> completions;
  for (const auto& r : *leased) {
    if (r.name != "orphan.txt") second_ids.insert(r.id.ToString());
    ASSERT_TRUE(outbox_->Publish(r, AsBytes(r.sha256_hex)).ok());
    completions.push_back({r.id, Bytes(r.sha256_hex.begin(), r.sha256_hex.end()), "x"});
  }
  ASSERT_TRUE(queue_->Complete(std::move(completions)).ok());
  EXPECT_EQ(first_ids, second_ids);
  for (int i = 0; i < 3; ++i) ExpectPublished("r" + std::to_string(i), "doc " + std::to_string(i));
  ExpectPublished("orphan.txt", "claimed, not enqueued");
  EXPECT_TRUE(ListNames(Processing()).empty());
  w.Stop();
}

TEST_F(WatcherTest, RestartPublishesDocumentsTheQueueAlreadyFinished) {
  // A crash after the queue recorded the outcome but before the folder showed it (the engine
  // publishes first, so this needs an outside hand; the watcher still converges).
  {
    FolderWatcher w(Options(), queue_.get(), outbox_.get());
    ASSERT_TRUE(w.Start().ok());
    Drop("sealed.txt", "will be sealed");
    Drop("failed.txt", "will fail");
    ASSERT_TRUE(WaitFor([&] { return w.Stats().claimed == 2; }));
    w.Stop();
  }
  auto leased = queue_->Lease(10, 1 << 20, std::chrono::seconds(60));
  ASSERT_TRUE(leased.ok());
  ASSERT_EQ(leased->size(), 2u);
  for (const auto& r : *leased) {
    if (r.name == "sealed.txt") {
      ASSERT_TRUE(queue_
                      ->Complete({{r.id, Bytes(r.sha256_hex.begin(), r.sha256_hex.end()),
                                   "application/pkcs7-signature"}})
                      .ok());
    } else {
      ASSERT_TRUE(queue_->Fail({{r.id, UnavailableError("HSM gone"), false}}).ok());
    }
  }
  EXPECT_EQ(ListNames(Processing()).size(), 2u);

  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  EXPECT_EQ(w.Stats().duplicates, 2u);
  ExpectPublished("sealed.txt", "will be sealed");
  EXPECT_EQ(ReadFile(Failed() + "/failed.txt"), "will fail");
  auto j = nlohmann::json::parse(ReadFile(Failed() + "/failed.txt.error.json"));
  EXPECT_EQ(j["code"], "UNAVAILABLE");
  EXPECT_EQ(j["message"], "HSM gone");
  EXPECT_EQ(j["sha256"], Sha256Hex("will fail"));
  EXPECT_TRUE(ListNames(Processing()).empty());
  auto qs = queue_->Stats();
  EXPECT_EQ(qs.queued + qs.leased, 0u);
  w.Stop();
}

TEST_F(WatcherTest, OversizedFileGoesToFailedUnread) {
  WatchOptions o = Options();
  o.max_file_bytes = 100;
  FolderWatcher w(o, queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  FakeEngine engine(queue_.get(), outbox_.get());
  Drop("big.bin", std::string(101, 'b'));
  Drop("small.bin", std::string(100, 's'));
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Failed() + "/big.bin.error.json"); }));
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 1; }));
  EXPECT_EQ(ReadFile(Failed() + "/big.bin"), std::string(101, 'b'));
  auto j = nlohmann::json::parse(ReadFile(Failed() + "/big.bin.error.json"));
  EXPECT_EQ(j["code"], "INVALID_ARGUMENT");
  EXPECT_NE(j["message"].get<std::string>().find("101 bytes"), std::string::npos);
  EXPECT_TRUE(j["sha256"].is_null());
  EXPECT_EQ(j["attempts"], 0);
  EXPECT_TRUE(j.contains("failed_at"));
  ExpectPublished("small.bin", std::string(100, 's'));
  EXPECT_EQ(w.Stats().failed, 1u);
  EXPECT_EQ(ListNames(Failed()).size(), 2u);
  w.Stop();
}

TEST_F(WatcherTest, PublishFailureMovesOriginalWithErrorJson) {
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  {
    FakeEngine engine(queue_.get(), outbox_.get(), /*fail=*/true);
    Drop("bad.xml", "<not-sealable/>");
    ASSERT_TRUE(WaitFor([&] { return queue_->Stats().failed == 1; }));
    EXPECT_EQ(engine.errors(), 0u);
  }
  EXPECT_EQ(ReadFile(Failed() + "/bad.xml"), "<not-sealable/>");
  auto j = nlohmann::json::parse(ReadFile(Failed() + "/bad.xml.error.json"));
  EXPECT_EQ(j["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(j["message"], "not a document we can seal");
  EXPECT_EQ(j["sha256"], Sha256Hex("<not-sealable/>"));
  EXPECT_EQ(j["attempts"], 1);
  EXPECT_EQ(j["failed_at"].get<std::string>().size(), 24u);
  EXPECT_TRUE(ListNames(Processing()).empty());
  EXPECT_TRUE(ListNames(Outbox()).empty());

  // Again after a crash before the queue commit: nothing new.
  queue::Record r;
  r.client = root_;
  r.name = "bad.xml";
  EXPECT_TRUE(outbox_->PublishFailure(r, InternalError("again")).ok());
  EXPECT_EQ(ListNames(Failed()).size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(ReadFile(Failed() + "/bad.xml.error.json"))["message"],
            "not a document we can seal");
  w.Stop();
}

// Reads failed/<name>.error.json.
nlohmann::json ErrorJsonOf(const std::string& failed_dir, const std::string& name) {
  return nlohmann::json::parse(ReadFile(failed_dir + "/" + name + ".error.json"));
}

TEST_F(WatcherTest, HardLinkedFileGoesToFailedUnreadAndNothingIsLost) {
  FolderWatcher w(Options(), queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  FakeEngine engine(queue_.get(), outbox_.get());
  // The producer keeps a second link to what it renames in (or links in a file from elsewhere).
  WriteFile(staging_ + "/linked.txt", "two links");
  ASSERT_EQ(::link((staging_ + "/linked.txt").c_str(), (staging_ + "/keep.txt").c_str()), 0);
  ASSERT_EQ(::rename((staging_ + "/linked.txt").c_str(), (Inbox() + "/linked.txt").c_str()), 0);
  Drop("single.txt", "one link");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Failed() + "/linked.txt.error.json"); }));
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 1; }));
  EXPECT_EQ(ReadFile(Failed() + "/linked.txt"), "two links");
  EXPECT_EQ(ReadFile(staging_ + "/keep.txt"), "two links");
  auto j = ErrorJsonOf(Failed(), "linked.txt");
  EXPECT_EQ(j["code"], "INVALID_ARGUMENT");
  EXPECT_NE(j["message"].get<std::string>().find("2 hard links"), std::string::npos) << j;
  EXPECT_TRUE(j["sha256"].is_null());
  EXPECT_EQ(j["attempts"], 0);
  ExpectPublished("single.txt", "one link");
  EXPECT_FALSE(fs::exists(Outbox() + "/linked.txt"));
  EXPECT_EQ(queue_->Stats().sealed, 1u);  // the linked file was never accepted
  w.Stop();
}

TEST_F(WatcherTest, FilesOfAnotherOwnerGoToFailedWhenAnOwnerIsConfigured) {
  if (::getuid() != 0) GTEST_SKIP() << "needs root to give a file another owner (chown)";
  WatchOptions o = Options();
  o.owner_uid = ::getuid();
  FolderWatcher w(o, queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  FakeEngine engine(queue_.get(), outbox_.get());
  Drop("mine.txt", "from the configured owner");
  WriteFile(staging_ + "/theirs.txt", "from someone else");
  const uid_t other = 65534;
  ASSERT_EQ(::chown((staging_ + "/theirs.txt").c_str(), other, static_cast<gid_t>(-1)), 0);
  ASSERT_EQ(::rename((staging_ + "/theirs.txt").c_str(), (Inbox() + "/theirs.txt").c_str()), 0);
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Failed() + "/theirs.txt.error.json"); }));
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().sealed == 1; }));
  EXPECT_EQ(ReadFile(Failed() + "/theirs.txt"), "from someone else");
  auto j = ErrorJsonOf(Failed(), "theirs.txt");
  EXPECT_EQ(j["code"], "INVALID_ARGUMENT");
  EXPECT_NE(j["message"].get<std::string>().find("owned by uid " + std::to_string(other)),
            std::string::npos)
      << j;
  EXPECT_TRUE(j["sha256"].is_null());
  ExpectPublished("mine.txt", "from the configured owner");
  w.Stop();
}

TEST_F(WatcherTest, FileLargerThanTheLimitWhenReadFailsAndIsNotAccepted) {
  // A file claimed while small that grew before it was read (here: found in processing/ at
  // Start, where no size check ran before the read).
  WatchOptions o = Options();
  o.max_file_bytes = 1000;
  fs::create_directories(Processing());
  WriteFile(Processing() + "/grown.bin", std::string(300'000, 'g'));
  FolderWatcher w(o, queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  FakeEngine engine(queue_.get(), outbox_.get());
  ASSERT_TRUE(WaitFor([&] { return fs::exists(Failed() + "/grown.bin.error.json"); }));
  EXPECT_EQ(ReadFile(Failed() + "/grown.bin"), std::string(300'000, 'g'));
  auto j = ErrorJsonOf(Failed(), "grown.bin");
  EXPECT_EQ(j["code"], "INVALID_ARGUMENT");
  EXPECT_NE(j["message"].get<std::string>().find("grew past max_file_bytes 1000"),
            std::string::npos)
      << j;
  queue::QueueStats qs = queue_->Stats();
  EXPECT_EQ(qs.queued + qs.leased + qs.sealed + qs.failed, 0u);
  EXPECT_TRUE(ListNames(Processing()).empty());
  w.Stop();
}

TEST_F(WatcherTest, FileGrowingWhileItIsReadFailsWithAReason) {
  // A writer the lease probe cannot see extends the claimed file while the watcher reads it.
  // Each round drops a 1 MiB file and, the moment it lands in processing/, extends it to 64 MiB;
  // a round where the watcher finished reading first seals the 1 MiB (allowed: it was complete
  // then), so rounds repeat until one grew during the read. The limit is 2 MiB.
  WatchOptions o = Options();
  o.max_file_bytes = 2 << 20;
  FolderWatcher w(o, queue_.get(), outbox_.get());
  ASSERT_TRUE(w.Start().ok());
  FakeEngine engine(queue_.get(), outbox_.get());
  int grown_rounds = 0;
  for (int round = 0; round < 10 && grown_rounds == 0; ++round) {
    const std::string name = "growing" + std::to_string(round) + ".bin";
    const std::string claimed = Processing() + "/" + name;
    std::atomic<bool> stop{false};
    std::atomic<bool> grew{false};
    std::thread writer([&] {
      while (!stop.load()) {
        if (::truncate(claimed.c_str(), 64 << 20) == 0) {
          grew = true;
          return;
        }
      }
    });
    Drop(name, std::string(1 << 20, 'x'));
    bool done = WaitFor([&] {
      return fs::exists(Failed() + "/" + name + ".error.json") ||
             fs::exists(Outbox() + "/" + name + ".p7s");
    });
    stop = true;
    writer.join();
    ASSERT_TRUE(done) << name;
    const std::string json = Failed() + "/" + name + ".error.json";
    if (!fs::exists(Outbox() + "/" + name + ".p7s") && fs::exists(json) &&
        ErrorJsonOf(Failed(), name)["message"].get<std::string>().find(
            "grew past max_file_bytes") != std::string::npos) {
      ++grown_rounds;
      EXPECT_EQ(ErrorJsonOf(Failed(), name)["code"], "INVALID_ARGUMENT");
      EXPECT_EQ(fs::file_size(Failed() + "/" + name), 64u << 20);  // moved whole, nothing lost
    } else {
      // Read in full before it grew: sealed as 1 MiB (a growth after acceptance sends the
      // changed file to failed/ and the accepted copy to outbox/, as the outbox documents).
      ASSERT_TRUE(WaitFor([&] { return fs::exists(Outbox() + "/" + name + ".p7s"); })) << name;
      EXPECT_EQ(ReadFile(Outbox() + "/" + name + ".p7s"), Sha256Hex(std::string(1 << 20, 'x')));
    }
  }
  EXPECT_EQ(grown_rounds, 1) << "no round grew the file while it was read";
  w.Stop();
}

}  // namespace
}  // namespace qseal::ingest
