// Integration tests of queue/: a real RocksDB in a temp dir per test, a manual clock.
#include "queue/queue.h"

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "tests/queue/queue_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::queue {
namespace {

using namespace std::chrono_literals;
using testing::Doc;
using testing::MustEnqueue;
using testing::MustOpen;
using testing::ReadAll;

constexpr char kHelloSha[] = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

class QueueTest : public ::testing::Test {
 protected:
  QueueOptions Options() {
    QueueOptions o;
    o.path = dir_.Sub("q");
    o.retention_sweep_interval = 0ms;
    return o;
  }
  std::unique_ptr<Queue> Open() { return MustOpen(Options(), clock_); }
  std::unique_ptr<Queue> Open(const QueueOptions& o) { return MustOpen(o, clock_); }

  qseal::testing::TempDir dir_;
  ManualClock clock_;
};

TEST_F(QueueTest, EnqueuedDocumentIsQueuedWithItsBytesAndDigest) {
  auto q = Open();
  NewDocument d = Doc("a.pdf");
  d.source = Source::kWatch;
  d.source_ref = "/w/processing/a.pdf";
  auto r = MustEnqueue(*q, d, "hello");
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.sha256_hex, kHelloSha);
  EXPECT_EQ(r.size, 5u);

  auto rec = q->Get(r.id);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->id, r.id);
  EXPECT_EQ(rec->state, State::kQueued);
  EXPECT_EQ(rec->profile, "invoices");
  EXPECT_EQ(rec->source, Source::kWatch);
  EXPECT_EQ(rec->client, "acme");
  EXPECT_EQ(rec->name, "a.pdf");
  EXPECT_EQ(rec->media_type, "application/pdf");
  EXPECT_EQ(rec->sha256_hex, kHelloSha);
  EXPECT_EQ(rec->size, 5u);
  EXPECT_EQ(rec->attempts, 0u);
  EXPECT_EQ(rec->created_at, clock_.Now());
  EXPECT_EQ(rec->source_ref, "/w/processing/a.pdf");

  auto reader = q->OpenPayload(r.id);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->size(), 5u);
  Bytes bytes = ReadAll(**reader);
  EXPECT_EQ(std::string(AsChars(bytes)), "hello");

  QueueStats s = q->Stats();
  EXPECT_EQ(s.queued, 1u);
  EXPECT_EQ(s.pending_bytes, 5u);
  EXPECT_TRUE(s.healthy);
  EXPECT_TRUE(q->Health().ok());
  EXPECT_TRUE(q->Close().ok());
}

TEST_F(QueueTest, RejectsDocumentsWithoutProfileAndUnknownIds) {
  auto q = Open();
  NewDocument d = Doc();
  d.profile.clear();
  EXPECT_EQ(q->Enqueue(d, AsBytes("x")).status().code(), StatusCode::kInvalidArgument);
  DocumentId unknown = DocumentId::Parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").value();
  EXPECT_EQ(q->Get(unknown).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(q->GetSeal(unknown).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(q->OpenPayload(unknown).status().code(), StatusCode::kNotFound);
}

TEST_F(QueueTest, IdsIncreaseInEnqueueOrder) {
  auto q = Open();
  DocumentId last;
  for (int i = 0; i < 100; ++i) {
    auto r = MustEnqueue(*q, Doc(), "x" + std::to_string(i));
    EXPECT_LT(last, r.id);
    EXPECT_LT(last.ToString(), r.id.ToString());
    last = r.id;
  }
}

TEST_F(QueueTest, LeaseIsFifoAndBoundedByCountAndBytes) {
  auto q = Open();
  std::vector<DocumentId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(MustEnqueue(*q, Doc(), std::string(100, 'a')).id);

  auto first = q->Lease(2, 1 << 20, 30s);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, ids[0]);
  EXPECT_EQ((*first)[1].id, ids[1]);
  EXPECT_EQ((*first)[0].state, State::kLeased);
  EXPECT_EQ((*first)[0].attempts, 1u);
  EXPECT_EQ((*first)[0].lease_deadline, clock_.Now() + 30s);

  auto by_bytes = q->Lease(10, 250, 30s);  // 2 x 100 fit, the third would not
  ASSERT_TRUE(by_bytes.ok());
  ASSERT_EQ(by_bytes->size(), 2u);
  EXPECT_EQ((*by_bytes)[0].id, ids[2]);

  auto oversized = q->Lease(10, 1, 30s);  // the first is handed out even when larger
  ASSERT_TRUE(oversized.ok());
  ASSERT_EQ(oversized->size(), 1u);
  EXPECT_EQ((*oversized)[0].id, ids[4]);

  auto none = q->Lease(10, 1 << 20, 30s);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  EXPECT_EQ(q->Get(ids[0])->state, State::kLeased);
  QueueStats s = q->Stats();
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.leased, 5u);
}

TEST_F(QueueTest, CompleteStoresTheSealAndDeletesThePayload) {
  auto q = Open();
  auto id = MustEnqueue(*q, Doc(), "hello").id;
  EXPECT_EQ(q->GetSeal(id).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_EQ(q->Lease(1, 1 << 20, 30s)->size(), 1u);
  clock_.Advance(2s);
  Bytes seal = {0x30, 0x80, 1, 2, 3};
  ASSERT_TRUE(q->Complete({{id, seal, "application/pkcs7-signature"}}).ok());

  auto rec = q->Get(id);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->state, State::kSealed);
  EXPECT_EQ(rec->sealed_at, clock_.Now());
  EXPECT_EQ(rec->seal_media_type, "application/pkcs7-signature");
  auto got = q->GetSeal(id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, seal);
  EXPECT_EQ(q->OpenPayload(id).status().code(), StatusCode::kNotFound);

  // A second outcome for the same document changes nothing.
  ASSERT_TRUE(q->Complete({{id, Bytes{9, 9}, "x"}}).ok());
  ASSERT_TRUE(q->Fail({{id, UnavailableError("late"), false}}).ok());
  EXPECT_EQ(*q->GetSeal(id), seal);
  EXPECT_EQ(q->Get(id)->state, State::kSealed);

  QueueStats s = q->Stats();
  EXPECT_EQ(s.sealed, 1u);
  EXPECT_EQ(s.leased, 0u);
  EXPECT_EQ(s.pending_bytes, 0u);
}

TEST_F(QueueTest, RetryableFailureBacksOffThenFailsAfterMaxAttempts) {
  QueueOptions o = Options();
  o.max_attempts = 2;
  o.initial_backoff = 10s;
  auto q = Open(o);
  auto id = MustEnqueue(*q, Doc(), "hello").id;

  ASSERT_EQ(q->Lease(1, 1 << 20, 30s)->size(), 1u);
  ASSERT_TRUE(q->Fail({{id, UnavailableError("hsm down"), true}}).ok());
  auto rec = q->Get(id);
  EXPECT_EQ(rec->state, State::kQueued);
  EXPECT_EQ(rec->error_code, "UNAVAILABLE");
  EXPECT_EQ(rec->error_message, "hsm down");
  EXPECT_EQ(rec->not_before, clock_.Now() + 10s);
  EXPECT_TRUE(q->Lease(1, 1 << 20, 30s)->empty()) << "leased during back-off";

  clock_.Advance(10s);
  auto again = q->Lease(1, 1 << 20, 30s);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].attempts, 2u);
  ASSERT_TRUE(q->Fail({{id, UnavailableError("still down"), true}}).ok());
  rec = q->Get(id);
  EXPECT_EQ(rec->state, State::kFailed);
  EXPECT_EQ(rec->error_message, "still down");
  EXPECT_EQ(q->OpenPayload(id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(q->GetSeal(id).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(q->Stats().failed, 1u);
}

TEST_F(QueueTest, FailureThatIsNotTheDocumentsIsRequeuedPastMaxAttempts) {
  QueueOptions o = Options();
  o.max_attempts = 1;
  o.initial_backoff = 1s;
  auto q = Open(o);
  auto id = MustEnqueue(*q, Doc(), "hello").id;

  // The only attempt: sealed, but the seal could not be delivered (a broker down).
  ASSERT_EQ(q->Lease(1, 1 << 20, 30s)->size(), 1u);
  ASSERT_TRUE(q->Fail({{id, UnavailableError("publishing: broker down"), true, false}}).ok());
  auto rec = q->Get(id);
  EXPECT_EQ(rec->state, State::kQueued) << "a sink outage used up the document's attempts";
  EXPECT_EQ(rec->error_message, "publishing: broker down");

  // Next time the seal itself fails: attempts are used up, so that is final.
  clock_.Advance(1s);
  auto again = q->Lease(1, 1 << 20, 30s);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].attempts, 2u);
  ASSERT_TRUE(q->Fail({{id, UnavailableError("hsm down"), true}}).ok());
  EXPECT_EQ(q->Get(id)->state, State::kFailed);
}

TEST_F(QueueTest, BackoffDoublesUpToTheCap) {
  QueueOptions o = Options();
  o.max_attempts = 10;
  o.initial_backoff = 1s;
  o.max_backoff = 3s;
  auto q = Open(o);
  auto id = MustEnqueue(*q, Doc(), "x").id;
  for (auto want : {1s, 2s, 3s, 3s}) {
    auto leased = q->Lease(1, 1 << 20, 30s);
    ASSERT_EQ(leased->size(), 1u);
    ASSERT_TRUE(q->Fail({{id, UnavailableError("x"), true}}).ok());
    EXPECT_EQ(q->Get(id)->not_before, clock_.Now() + want);
    clock_.Advance(want);
  }
}

TEST_F(QueueTest, PermanentFailureFailsAtOnce) {
  auto q = Open();
  auto id = MustEnqueue(*q, Doc(), "x").id;
  ASSERT_EQ(q->Lease(1, 1 << 20, 30s)->size(), 1u);
  ASSERT_TRUE(q->Fail({{id, InvalidArgumentError("not a PDF"), false}}).ok());
  auto rec = q->Get(id);
  EXPECT_EQ(rec->state, State::kFailed);
  EXPECT_EQ(rec->error_code, "INVALID_ARGUMENT");
  EXPECT_EQ(rec->attempts, 1u);
}

TEST_F(QueueTest, ExpiredLeaseIsRequeued) {
  auto q = Open();
  auto id = MustEnqueue(*q, Doc(), "x").id;
  ASSERT_EQ(q->Lease(1, 1 << 20, 5s)->size(), 1u);
  clock_.Advance(4s);
  EXPECT_TRUE(q->Lease(1, 1 << 20, 5s)->empty());
  clock_.Advance(1s);
  auto again = q->Lease(1, 1 << 20, 5s);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].id, id);
  EXPECT_EQ((*again)[0].attempts, 2u);
}

TEST_F(QueueTest, LeasedDocumentsAreRequeuedOnReopen) {
  std::vector<DocumentId> ids;
  {
    auto q = Open();
    for (int i = 0; i < 3; ++i) ids.push_back(MustEnqueue(*q, Doc(), "d" + std::to_string(i)).id);
    ASSERT_EQ(q->Lease(2, 1 << 20, 60s)->size(), 2u);
    EXPECT_EQ(q->Get(ids[0])->state, State::kLeased);
    ASSERT_TRUE(q->Close().ok());
  }
  auto q = Open();
  QueueStats s = q->Stats();
  EXPECT_EQ(s.queued, 3u);
  EXPECT_EQ(s.leased, 0u);
  EXPECT_EQ(q->Get(ids[0])->state, State::kQueued);
  auto leased = q->Lease(10, 1 << 20, 60s);
  ASSERT_EQ(leased->size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ((*leased)[i].id, ids[i]);
  EXPECT_EQ((*leased)[0].attempts, 2u);  // the lease before the restart counts
  EXPECT_EQ((*leased)[2].attempts, 1u);
  auto payload = q->OpenPayload(ids[1]);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(std::string(AsChars(ReadAll(**payload))), "d1");
}

TEST_F(QueueTest, RetentionDeletesFinalRecordsWithSealAndIdempotencyKey) {
  QueueOptions o = Options();
  o.retention = 1h;
  auto q = Open(o);
  auto sealed = MustEnqueue(*q, Doc("a", "key-a"), "a").id;
  auto failed = MustEnqueue(*q, Doc("b"), "b").id;
  auto waiting = MustEnqueue(*q, Doc("c"), "c").id;
  ASSERT_EQ(q->Lease(2, 1 << 20, 60s)->size(), 2u);
  ASSERT_TRUE(q->Complete({{sealed, Bytes{1}, "application/pkcs7-signature"}}).ok());
  ASSERT_TRUE(q->Fail({{failed, InvalidArgumentError("bad"), false}}).ok());

  clock_.Advance(59min);
  EXPECT_EQ(*q->SweepRetention(), 0u);
  EXPECT_TRUE(q->GetSeal(sealed).ok());
  clock_.Advance(1min);
  EXPECT_EQ(*q->SweepRetention(), 2u);
  EXPECT_EQ(q->Get(sealed).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(q->GetSeal(sealed).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(q->Get(failed).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(q->Get(waiting)->state, State::kQueued) << "retention touches only final records";
  QueueStats s = q->Stats();
  EXPECT_EQ(s.sealed, 0u);
  EXPECT_EQ(s.failed, 0u);
  // The idempotency key went with its record.
  auto reused = MustEnqueue(*q, Doc("a2", "key-a"), "other content");
  EXPECT_FALSE(reused.duplicate);
  EXPECT_EQ(*q->SweepRetention(), 0u);
}

TEST_F(QueueTest, TimedSweepRunsByItself) {
  QueueOptions o = Options();
  o.retention = 0s;
  o.retention_sweep_interval = 1ms;
  auto q = Open(o);
  auto id = MustEnqueue(*q, Doc(), "a").id;
  ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
  ASSERT_TRUE(q->Complete({{id, Bytes{1}, "x"}}).ok());
  // The committer sweeps every millisecond; wait for it (bounded) rather than sleeping blindly.
  for (int i = 0; i < 5000 && q->Get(id).ok(); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(q->Get(id).status().code(), StatusCode::kNotFound);
}

TEST_F(QueueTest, CountsAndSealedTotalsSurviveReopen) {
  DocumentId id;
  {
    auto q = Open();
    id = MustEnqueue(*q, Doc(), "a").id;
    MustEnqueue(*q, Doc(), "b");
    ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
    ASSERT_TRUE(q->Complete({{id, Bytes{7}, "x"}}).ok());
    ASSERT_TRUE(q->Close().ok());
  }
  auto q = Open();
  QueueStats s = q->Stats();
  EXPECT_EQ(s.sealed, 1u);
  EXPECT_EQ(s.queued, 1u);
  EXPECT_EQ(*q->GetSeal(id), Bytes{7});
}

TEST_F(QueueTest, WatermarksOnCountHaveHysteresis) {
  QueueOptions o = Options();
  o.high_watermark_count = 3;
  o.low_watermark_count = 1;
  auto q = Open(o);
  std::vector<DocumentId> ids;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(q->Admit().ok());
    ids.push_back(MustEnqueue(*q, Doc(), "d" + std::to_string(i)).id);
  }
  EXPECT_EQ(q->Admit().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(q->Enqueue(Doc(), AsBytes("x")).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(q->Begin(Doc()).status().code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(q->Stats().saturated);

  // Leasing does not drain: leased documents are still pending.
  ASSERT_EQ(q->Lease(3, 1 << 20, 60s)->size(), 3u);
  EXPECT_EQ(q->Admit().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(q->Complete({{ids[0], Bytes{1}, "x"}}).ok());  // 2 pending: between the marks
  EXPECT_EQ(q->Admit().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(q->Complete({{ids[1], Bytes{1}, "x"}}).ok());  // 1 pending: at the low mark
  EXPECT_TRUE(q->Admit().ok());
  EXPECT_FALSE(q->Stats().saturated);
  MustEnqueue(*q, Doc(), "e");  // 2 pending: below the high mark again, still admitted
  EXPECT_TRUE(q->Admit().ok());
}

TEST_F(QueueTest, WatermarksOnBytes) {
  QueueOptions o = Options();
  o.high_watermark_bytes = 1000;
  o.low_watermark_bytes = 400;
  auto q = Open(o);
  auto a = MustEnqueue(*q, Doc(), std::string(600, 'a')).id;
  EXPECT_TRUE(q->Admit().ok());
  auto b = MustEnqueue(*q, Doc(), std::string(500, 'b')).id;
  EXPECT_EQ(q->Admit().code(), StatusCode::kResourceExhausted);
  ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
  ASSERT_TRUE(q->Complete({{a, Bytes{1}, "x"}}).ok());  // 500 bytes left: above the low mark
  EXPECT_EQ(q->Admit().code(), StatusCode::kResourceExhausted);
  ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
  ASSERT_TRUE(q->Fail({{b, InvalidArgumentError("x"), false}}).ok());
  EXPECT_TRUE(q->Admit().ok());
}

TEST_F(QueueTest, SaturationIsRestoredOnReopen) {
  QueueOptions o = Options();
  o.high_watermark_count = 2;
  o.low_watermark_count = 0;
  {
    auto q = Open(o);
    MustEnqueue(*q, Doc(), "a");
    MustEnqueue(*q, Doc(), "b");
    ASSERT_TRUE(q->Close().ok());
  }
  auto q = Open(o);
  EXPECT_EQ(q->Admit().code(), StatusCode::kResourceExhausted);
}

TEST_F(QueueTest, IdempotencyKeyReturnsFirstIdOrConflicts) {
  auto q = Open();
  auto first = MustEnqueue(*q, Doc("a", "k1"), "hello");
  EXPECT_FALSE(first.duplicate);
  auto again = MustEnqueue(*q, Doc("a", "k1"), "hello");
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.id, first.id);
  EXPECT_EQ(again.sha256_hex, kHelloSha);

  auto conflict = q->Enqueue(Doc("a", "k1"), AsBytes("other"));
  EXPECT_EQ(conflict.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(conflict.status().message().find(first.id.ToString()), std::string::npos);

  NewDocument other_client = Doc("a", "k1");
  other_client.client = "globex";
  auto separate = MustEnqueue(*q, other_client, "other");
  EXPECT_FALSE(separate.duplicate);
  EXPECT_NE(separate.id, first.id);

  EXPECT_EQ(q->Stats().queued, 2u);
  // The key outlives the document's sealing (until retention).
  ASSERT_EQ(q->Lease(10, 1 << 20, 60s)->size(), 2u);
  ASSERT_TRUE(q->Complete({{first.id, Bytes{1}, "x"}}).ok());
  EXPECT_EQ(MustEnqueue(*q, Doc("a", "k1"), "hello").id, first.id);
}

TEST_F(QueueTest, CommitManyGivesEachDocumentItsOwnOutcomeInOneSyncedBatch) {
  QueueOptions o = Options();
  o.inline_payload_max_bytes = 8;  // the third document is spooled
  auto q = Open(o);
  auto first = MustEnqueue(*q, Doc("a", "k1"), "hello");
  std::uint64_t batches_before = q->Stats().batches_committed;

  std::vector<std::string> bodies = {"hello", "other", "a longer spooled body", "dup"};
  std::vector<NewDocument> docs = {Doc("0", "k1"), Doc("1", "k1"), Doc("2"), Doc("3", "k3")};
  std::vector<std::unique_ptr<PendingDocument>> pending;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    auto p = q->Begin(docs[i]);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE((*p)->Append(AsBytes(bodies[i])).ok());
    pending.push_back(std::move(*p));
  }
  std::vector<Result<EnqueueResult>> out = q->CommitMany(std::move(pending));
  ASSERT_EQ(out.size(), 4u);
  // Same key, same bytes: the earlier id. Same key, other bytes: only that one fails.
  ASSERT_TRUE(out[0].ok()) << out[0].status();
  EXPECT_TRUE(out[0]->duplicate);
  EXPECT_EQ(out[0]->id, first.id);
  EXPECT_EQ(out[1].status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(out[2].ok()) << out[2].status();
  ASSERT_TRUE(out[3].ok()) << out[3].status();
  EXPECT_FALSE(out[3]->duplicate);
  EXPECT_LT(out[2]->id, out[3]->id);
  EXPECT_EQ(q->Stats().batches_committed, batches_before + 1);
  EXPECT_EQ(q->Stats().queued, 3u);

  auto reader = q->OpenPayload(out[2]->id);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ(std::string(AsChars(ReadAll(**reader))), bodies[2]);
  // Only the referenced spool file is left.
  std::size_t spooled = 0;
  for (const auto& e : std::filesystem::directory_iterator(o.path + "/spool")) {
    (void)e;
    ++spooled;
  }
  EXPECT_EQ(spooled, 1u);
  EXPECT_TRUE(q->CommitMany({}).empty());
}

TEST_F(QueueTest, ConcurrentSubmissionsOfOneKeyYieldOneDocument) {
  auto q = Open();
  constexpr int kThreads = 16;
  std::vector<EnqueueResult> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      results[static_cast<std::size_t>(t)] = MustEnqueue(*q, Doc("a", "same"), "body");
    });
  }
  for (auto& t : threads) t.join();
  int originals = 0;
  for (const auto& r : results) {
    EXPECT_EQ(r.id, results[0].id);
    originals += r.duplicate ? 0 : 1;
  }
  EXPECT_EQ(originals, 1);
  EXPECT_EQ(q->Stats().queued, 1u);
}

// A lone enqueue on a quiet queue waits commit_linger for company: the enqueues that arrive
// meanwhile share its synced commit (one fsync for three documents instead of three).
TEST_F(QueueTest, CommitLingerGathersLoneEnqueuesIntoOneSyncedCommit) {
  QueueOptions o = Options();
  o.commit_linger = std::chrono::milliseconds(500);
  auto q = Open(o);
  const std::uint64_t batches_before = q->Stats().batches_committed;
  const auto t0 = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration first_took{};
  std::thread first([&] {
    ASSERT_TRUE(q->Enqueue(Doc(), AsBytes("first")).ok());
    first_took = std::chrono::steady_clock::now() - t0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the committer is lingering now
  std::vector<std::thread> later;
  for (int i = 0; i < 2; ++i) {
    later.emplace_back([&, i] { ASSERT_TRUE(q->Enqueue(Doc(), AsBytes(std::to_string(i))).ok()); });
  }
  first.join();
  for (auto& t : later) t.join();
  EXPECT_GE(first_took, std::chrono::milliseconds(500)) << "the first enqueue did not linger";
  QueueStats s = q->Stats();
  EXPECT_EQ(s.queued, 3u);
  EXPECT_EQ(s.batches_committed, batches_before + 1) << "the three enqueues did not share a commit";
}

TEST_F(QueueTest, ConcurrentEnqueuesAreGroupCommitted) {
  auto q = Open();
  constexpr int kThreads = 32;
  constexpr int kPerThread = 50;
  std::vector<std::vector<DocumentId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = q->Enqueue(Doc(), AsBytes(std::to_string(t) + "/" + std::to_string(i)));
        ASSERT_TRUE(r.ok()) << r.status();
        ids[static_cast<std::size_t>(t)].push_back(r->id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<DocumentId> all;
  for (const auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), std::size_t{kThreads * kPerThread});
  QueueStats s = q->Stats();
  EXPECT_EQ(s.queued, std::uint64_t{kThreads * kPerThread});
  EXPECT_EQ(s.operations_committed, std::uint64_t{kThreads * kPerThread});
  EXPECT_LT(s.batches_committed, s.operations_committed) << "no two enqueues shared a sync";
  for (int t = 0; t < kThreads; ++t) {
    auto p = q->OpenPayload(ids[static_cast<std::size_t>(t)][7]);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(std::string(AsChars(ReadAll(**p))), std::to_string(t) + "/7");
  }
}

TEST_F(QueueTest, LargeDocumentsAreSpooledStreamedAndRemovedWhenSealed) {
  QueueOptions o = Options();
  o.inline_payload_max_bytes = 1024;
  auto q = Open(o);
  auto pending = q->Begin(Doc("big.bin"));
  ASSERT_TRUE(pending.ok());
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    std::string chunk(1000, static_cast<char>('a' + i % 26));
    expected += chunk;
    ASSERT_TRUE((*pending)->Append(AsBytes(chunk)).ok());
  }
  EXPECT_EQ((*pending)->size(), 100000u);
  auto r = q->Commit(std::move(*pending));
  ASSERT_TRUE(r.ok()) << r.status();
  std::string spool = o.path + "/spool/" + r->id.ToString() + ".payload";
  EXPECT_TRUE(std::filesystem::exists(spool));
  EXPECT_EQ(std::filesystem::file_size(spool), 100000u);

  auto reader = q->OpenPayload(r->id);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(std::string(AsChars(ReadAll(**reader))), expected);

  // A big in-memory Enqueue also goes to the spool.
  auto r2 = MustEnqueue(*q, Doc(), std::string(5000, 'z'));
  EXPECT_TRUE(std::filesystem::exists(o.path + "/spool/" + r2.id.ToString() + ".payload"));

  ASSERT_EQ(q->Lease(10, 1 << 30, 60s)->size(), 2u);
  ASSERT_TRUE(q->Complete({{r->id, Bytes{1}, "x"}}).ok());
  ASSERT_TRUE(q->Fail({{r2.id, InvalidArgumentError("x"), false}}).ok());
  EXPECT_FALSE(std::filesystem::exists(spool));
  EXPECT_TRUE(std::filesystem::is_empty(o.path + "/spool"));
}

TEST_F(QueueTest, PayloadsOfEverySizeRoundTripAcrossReopen) {
  QueueOptions o = Options();
  o.inline_payload_max_bytes = 1 << 20;
  o.blob_min_bytes = 16 << 10;
  // Empty, tiny, at the blob threshold, in blob files, at the inline limit, just spooled.
  const std::vector<std::size_t> sizes = {0, 1, 16 << 10, 100 << 10, 1 << 20, (1 << 20) + 1};
  std::vector<std::pair<DocumentId, std::string>> docs;
  {
    auto q = Open(o);
    for (std::size_t size : sizes) {
      std::string body(size, '\0');
      for (std::size_t i = 0; i < size; ++i) body[i] = static_cast<char>((i * 131 + size) & 0xFF);
      docs.emplace_back(MustEnqueue(*q, Doc(), body).id, body);
    }
    ASSERT_TRUE(q->Close().ok());
  }
  auto q = Open(o);
  for (const auto& [id, body] : docs) {
    auto reader = q->OpenPayload(id);
    ASSERT_TRUE(reader.ok()) << reader.status();
    EXPECT_EQ((*reader)->size(), body.size());
    EXPECT_TRUE(std::string(AsChars(ReadAll(**reader))) == body) << "size " << body.size();
    EXPECT_EQ(q->Get(id)->size, body.size());
  }
  EXPECT_TRUE(
      std::filesystem::exists(o.path + "/spool/" + docs.back().first.ToString() + ".payload"));
  EXPECT_FALSE(std::filesystem::exists(o.path + "/spool/" + docs[4].first.ToString() + ".payload"));
}

TEST_F(QueueTest, AbandonedAndDuplicateStreamsLeaveNoSpoolFiles) {
  QueueOptions o = Options();
  o.inline_payload_max_bytes = 10;
  auto q = Open(o);
  {
    auto p = q->Begin(Doc());
    ASSERT_TRUE((*p)->Append(AsBytes(std::string(100, 'x'))).ok());
  }
  EXPECT_TRUE(std::filesystem::is_empty(o.path + "/spool"));
  auto first = MustEnqueue(*q, Doc("a", "k"), std::string(100, 'x'));
  auto dup = MustEnqueue(*q, Doc("a", "k"), std::string(100, 'x'));
  EXPECT_TRUE(dup.duplicate);
  EXPECT_EQ(q->Enqueue(Doc("a", "k"), AsBytes(std::string(100, 'y'))).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(o.path + "/spool"),
                          std::filesystem::directory_iterator{}),
            1);
  EXPECT_TRUE(std::filesystem::exists(o.path + "/spool/" + first.id.ToString() + ".payload"));
}

TEST_F(QueueTest, UnreferencedSpoolFilesAreRemovedOnOpen) {
  QueueOptions o = Options();
  o.inline_payload_max_bytes = 10;
  DocumentId kept;
  {
    auto q = Open(o);
    kept = MustEnqueue(*q, Doc(), std::string(100, 'k')).id;
    ASSERT_TRUE(q->Close().ok());
  }
  qseal::testing::WriteFile(o.path + "/spool/01ARZ3NDEKTSV4RRFFQ69G5FAV.payload", "orphan");
  qseal::testing::WriteFile(o.path + "/spool/01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp", "partial");
  auto q = Open(o);
  EXPECT_FALSE(std::filesystem::exists(o.path + "/spool/01ARZ3NDEKTSV4RRFFQ69G5FAV.payload"));
  EXPECT_FALSE(std::filesystem::exists(o.path + "/spool/01ARZ3NDEKTSV4RRFFQ69G5FAV.tmp"));
  auto p = q->OpenPayload(kept);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(ReadAll(**p).size(), 100u);
}

TEST_F(QueueTest, MissingSpoolFileOfAPendingRecordRefusesOpen) {
  QueueOptions o = Options();
  o.inline_payload_max_bytes = 10;
  DocumentId id;
  {
    auto q = Open(o);
    id = MustEnqueue(*q, Doc(), std::string(100, 'k')).id;
    ASSERT_TRUE(q->Close().ok());
  }
  std::filesystem::remove(o.path + "/spool/" + id.ToString() + ".payload");
  auto q = Queue::Open(o, clock_);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(q.status().message().find(id.ToString()), std::string::npos);
}

namespace {
std::vector<std::string> SealFiles(const std::string& spool) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(spool)) {
    std::string name = e.path().filename().string();
    if (name.find(".seal") != std::string::npos) names.push_back(name);
  }
  return names;
}

std::string Pattern(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 7 + i / 4096) & 0xFF);
  return s;
}
}  // namespace

TEST_F(QueueTest, LargeSealIsSpooledStreamedAndRemovedByRetention) {
  QueueOptions o = Options();
  o.retention = 1h;
  auto q = Open(o);
  auto id = MustEnqueue(*q, Doc(), "doc").id;
  ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);

  const std::string expected = Pattern(300000);
  auto seal = q->BeginSeal(id);
  ASSERT_TRUE(seal.ok()) << seal.status();
  for (std::size_t at = 0; at < expected.size(); at += 70000) {
    ASSERT_TRUE((*seal)->Append(AsBytes(std::string_view(expected).substr(at, 70000))).ok());
  }
  EXPECT_EQ((*seal)->size(), expected.size());
  EXPECT_EQ((*seal)->Open().status().code(), StatusCode::kFailedPrecondition)
      << "unfinished seals are not readable";
  ASSERT_EQ(SealFiles(o.path + "/spool").size(), 1u);
  EXPECT_NE(SealFiles(o.path + "/spool")[0].find(".tmp"), std::string::npos);
  ASSERT_TRUE(q->FinishSeal(**seal).ok());
  const std::vector<std::string> finished = SealFiles(o.path + "/spool");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].rfind(id.ToString() + "-", 0), 0u) << finished[0];
  EXPECT_EQ(finished[0].substr(finished[0].size() - 5), ".seal");
  auto early = (*seal)->Open();  // publishers read it before the queue completes it
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_EQ(std::string(AsChars(ReadAll(**early))), expected);

  ASSERT_TRUE(q->Complete({{id, Bytes{}, "application/pdf", std::move(*seal)}}).ok());
  EXPECT_EQ(q->Get(id)->state, State::kSealed);
  auto streamed = q->OpenSeal(id);
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  EXPECT_EQ((*streamed)->size(), expected.size());
  EXPECT_EQ(std::string(AsChars(ReadAll(**streamed))), expected);
  auto whole = q->GetSeal(id);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(std::string(AsChars(*whole)), expected);
  EXPECT_EQ(SealFiles(o.path + "/spool"), finished) << "a committed seal keeps its file";

  clock_.Advance(1h);
  EXPECT_EQ(*q->SweepRetention(), 1u);
  EXPECT_TRUE(SealFiles(o.path + "/spool").empty()) << "retention removes the seal file";
  EXPECT_EQ(q->OpenSeal(id).status().code(), StatusCode::kNotFound);
}

TEST_F(QueueTest, InlineSealsAreStreamedToo) {
  auto q = Open();
  auto id = MustEnqueue(*q, Doc(), "doc").id;
  ASSERT_EQ(q->OpenSeal(id).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
  ASSERT_TRUE(q->Complete({{id, Bytes{1, 2, 3}, "x"}}).ok());
  auto reader = q->OpenSeal(id);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->size(), 3u);
  EXPECT_EQ(ReadAll(**reader), (Bytes{1, 2, 3}));
}

TEST_F(QueueTest, SealFilesThatLoseOrAreAbandonedAreRemoved) {
  QueueOptions o = Options();
  auto q = Open(o);
  auto id = MustEnqueue(*q, Doc(), "doc").id;
  ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
  {
    auto abandoned = q->BeginSeal(id);
    ASSERT_TRUE((*abandoned)->Append(AsBytes(std::string(1000, 'a'))).ok());
  }
  EXPECT_TRUE(SealFiles(o.path + "/spool").empty()) << "an abandoned seal leaves no file";

  auto first = q->BeginSeal(id);
  ASSERT_TRUE((*first)->Append(AsBytes(std::string("first"))).ok());
  ASSERT_TRUE(q->FinishSeal(**first).ok());
  ASSERT_TRUE(q->Complete({{id, Bytes{}, "x", std::move(*first)}}).ok());
  const std::vector<std::string> kept = SealFiles(o.path + "/spool");
  ASSERT_EQ(kept.size(), 1u);

  // A late second outcome for the same document (a lease that expired and was sealed twice):
  // the first seal wins and the loser's file goes.
  auto second = q->BeginSeal(id);
  ASSERT_TRUE((*second)->Append(AsBytes(std::string("second"))).ok());
  ASSERT_TRUE(q->FinishSeal(**second).ok());
  EXPECT_EQ(SealFiles(o.path + "/spool").size(), 2u);
  ASSERT_TRUE(q->Complete({{id, Bytes{}, "x", std::move(*second)}}).ok());
  EXPECT_EQ(SealFiles(o.path + "/spool"), kept);
  EXPECT_EQ(std::string(AsChars(*q->GetSeal(id))), "first");
}

TEST_F(QueueTest, CompleteRefusesASealFileThatIsNotFinishedOrNotTheDocuments) {
  auto q = Open();
  auto a = MustEnqueue(*q, Doc("a"), "a").id;
  auto b = MustEnqueue(*q, Doc("b"), "b").id;
  ASSERT_EQ(q->Lease(2, 1 << 20, 60s)->size(), 2u);
  auto unfinished = q->BeginSeal(a);
  ASSERT_TRUE((*unfinished)->Append(AsBytes(std::string("x"))).ok());
  EXPECT_EQ(q->Complete({{a, Bytes{}, "x", std::move(*unfinished)}}).code(),
            StatusCode::kInvalidArgument);
  auto of_a = q->BeginSeal(a);
  ASSERT_TRUE((*of_a)->Append(AsBytes(std::string("x"))).ok());
  ASSERT_TRUE(q->FinishSeal(**of_a).ok());
  EXPECT_EQ(q->Complete({{b, Bytes{}, "x", std::move(*of_a)}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(q->Get(a)->state, State::kLeased);
  EXPECT_EQ(q->Get(b)->state, State::kLeased);
}

TEST_F(QueueTest, ReopenKeepsReferencedSealFilesAndRemovesTheRest) {
  QueueOptions o = Options();
  DocumentId id;
  const std::string expected = Pattern(50000);
  std::vector<std::string> kept;
  {
    auto q = Open(o);
    id = MustEnqueue(*q, Doc(), "doc").id;
    ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
    auto seal = q->BeginSeal(id);
    ASSERT_TRUE((*seal)->Append(AsBytes(expected)).ok());
    ASSERT_TRUE(q->FinishSeal(**seal).ok());
    ASSERT_TRUE(q->Complete({{id, Bytes{}, "x", std::move(*seal)}}).ok());
    kept = SealFiles(o.path + "/spool");
    ASSERT_TRUE(q->Close().ok());
  }
  // What a crash can leave: a finished seal whose Complete never committed, a half-written one.
  const std::string orphan = o.path + "/spool/" + id.ToString() + "-00112233445566ff.seal";
  const std::string partial = o.path + "/spool/" + id.ToString() + "-aabbccddeeff0011.seal.tmp";
  qseal::testing::WriteFile(orphan, "orphan");
  qseal::testing::WriteFile(partial, "partial");
  auto q = Open(o);
  EXPECT_EQ(SealFiles(o.path + "/spool"), kept);
  EXPECT_EQ(std::string(AsChars(*q->GetSeal(id))), expected);
}

TEST_F(QueueTest, MissingSealFileIsDataLossNamingTheDocument) {
  QueueOptions o = Options();
  auto q = Open(o);
  auto id = MustEnqueue(*q, Doc(), "doc").id;
  ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
  auto seal = q->BeginSeal(id);
  ASSERT_TRUE((*seal)->Append(AsBytes(std::string(5000, 's'))).ok());
  ASSERT_TRUE(q->FinishSeal(**seal).ok());
  ASSERT_TRUE(q->Complete({{id, Bytes{}, "x", std::move(*seal)}}).ok());
  for (const std::string& name : SealFiles(o.path + "/spool")) {
    std::filesystem::remove(o.path + "/spool/" + name);
  }
  EXPECT_EQ(q->GetSeal(id).status().code(), StatusCode::kDataLoss);
  auto reader = q->OpenSeal(id);
  ASSERT_EQ(reader.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(reader.status().message().find(id.ToString()), std::string::npos);
}

TEST_F(QueueTest, WaitForWorkWakesOnEnqueue) {
  auto q = Open();
  EXPECT_FALSE(q->WaitForWork(1ms));
  std::atomic<bool> woke{false};
  std::thread waiter([&] { woke = q->WaitForWork(60s); });
  MustEnqueue(*q, Doc(), "x");
  waiter.join();
  EXPECT_TRUE(woke.load());
  EXPECT_TRUE(q->WaitForWork(0ms)) << "already ready";
}

TEST_F(QueueTest, ClosedQueueRefusesCalls) {
  auto q = Open();
  ASSERT_TRUE(q->Close().ok());
  EXPECT_TRUE(q->Close().ok());
  EXPECT_EQ(q->Enqueue(Doc(), AsBytes("x")).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(q->Lease(1, 1, 1s).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(q->Admit().code(), StatusCode::kFailedPrecondition);
}

TEST_F(QueueTest, RejectsBadOptions) {
  QueueOptions o = Options();
  o.path.clear();
  EXPECT_EQ(Queue::Open(o, clock_).status().code(), StatusCode::kInvalidArgument);
  o = Options();
  o.low_watermark_count = o.high_watermark_count + 1;
  EXPECT_EQ(Queue::Open(o, clock_).status().code(), StatusCode::kInvalidArgument);
}

// --- Corruption ------------------------------------------------------------------------------

std::vector<rocksdb::ColumnFamilyDescriptor> AllFamilies() {
  std::vector<rocksdb::ColumnFamilyDescriptor> d;
  for (const char* n :
       {"default", "records", "pending", "payloads", "results", "expiry", "idempotency"}) {
    d.emplace_back(n, rocksdb::ColumnFamilyOptions());
  }
  return d;
}

// Overwrites the value of one record, behind the queue's back.
void ClobberRecord(const std::string& path, const DocumentId& id, const std::string& value) {
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, AllFamilies(), &handles, &db).ok());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  ASSERT_TRUE(db->Put(wo, handles[1],
                      rocksdb::Slice(reinterpret_cast<const char*>(id.data()), DocumentId::kSize),
                      value)
                  .ok());
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

TEST_F(QueueTest, PendingRecordThatDoesNotDecodeRefusesOpen) {
  DocumentId id;
  {
    auto q = Open();
    id = MustEnqueue(*q, Doc(), "x").id;
    ASSERT_TRUE(q->Close().ok());
  }
  ClobberRecord(Options().path, id, "garbage that is not a record");
  auto q = Queue::Open(Options(), clock_);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(q.status().message().find(id.ToString()), std::string::npos) << q.status();
}

TEST_F(QueueTest, FinalRecordThatDoesNotDecodeIsDataLossOnGet) {
  DocumentId id;
  {
    auto q = Open();
    id = MustEnqueue(*q, Doc(), "x").id;
    ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
    ASSERT_TRUE(q->Complete({{id, Bytes{1}, "x"}}).ok());
    ASSERT_TRUE(q->Close().ok());
  }
  ClobberRecord(Options().path, id, "garbage that is not a record");
  auto q = Open();
  EXPECT_EQ(q->Get(id).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(q->GetSeal(id).status().code(), StatusCode::kDataLoss);
}

TEST_F(QueueTest, CorruptCurrentFileRefusesOpenNamingTheProblem) {
  {
    auto q = Open();
    MustEnqueue(*q, Doc(), "x");
    ASSERT_TRUE(q->Close().ok());
  }
  qseal::testing::WriteFile(Options().path + "/CURRENT", "MANIFEST-999999\n");
  auto q = Queue::Open(Options(), clock_);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find(Options().path), std::string::npos) << q.status();
  EXPECT_NE(q.status().message().find("MANIFEST"), std::string::npos) << q.status();
}

TEST_F(QueueTest, MissingCurrentFileIsDataLossNotAFreshQueue) {
  {
    auto q = Open();
    MustEnqueue(*q, Doc(), "x");
    ASSERT_TRUE(q->Close().ok());
  }
  std::filesystem::remove(Options().path + "/CURRENT");
  auto q = Queue::Open(Options(), clock_);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(q.status().message().find("CURRENT"), std::string::npos) << q.status();
}

TEST_F(QueueTest, CorruptManifestRefusesOpen) {
  {
    auto q = Open();
    MustEnqueue(*q, Doc(), "x");
    ASSERT_TRUE(q->Close().ok());
  }
  std::string manifest;
  for (const auto& e : std::filesystem::directory_iterator(Options().path)) {
    if (e.path().filename().string().rfind("MANIFEST-", 0) == 0) manifest = e.path().string();
  }
  ASSERT_FALSE(manifest.empty());
  std::string bytes = qseal::testing::ReadFile(manifest);
  for (std::size_t i = 10; i < bytes.size(); i += 7) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
  qseal::testing::WriteFile(manifest, bytes);
  auto q = Queue::Open(Options(), clock_);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kDataLoss) << q.status();
  EXPECT_NE(q.status().message().find("corrupt"), std::string::npos) << q.status();
}

TEST_F(QueueTest, ForeignRocksDbIsRefused) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, Options().path, &db).ok());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "k", "v").ok());
  ASSERT_TRUE(db->Close().ok());
  delete db;
  auto q = Queue::Open(Options(), clock_);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(q.status().message().find("not a qseal queue"), std::string::npos) << q.status();
}

}  // namespace
}  // namespace qseal::queue
