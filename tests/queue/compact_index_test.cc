// Integration tests of the queue's memory model (issue 8): memory holds only a compact scheduling
// index, full records are read from RocksDB. The order of leases, the records' fields and the
// state after a restart must be what they were when every record lived in memory.
#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include "queue/queue.h"
#include "tests/queue/queue_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::queue {
namespace {

using namespace std::chrono_literals;
using testing::Doc;
using testing::MustEnqueue;
using testing::MustOpen;
using testing::ReadAll;

class CompactIndexTest : public ::testing::Test {
 protected:
  QueueOptions Options() {
    QueueOptions o;
    o.path = dir_.Sub("q");
    o.retention_sweep_interval = 0ms;
    o.max_attempts = 10;
    o.initial_backoff = 10s;
    return o;
  }
  std::unique_ptr<Queue> Open() { return MustOpen(Options(), clock_); }

  std::vector<DocumentId> LeaseAll(Queue& q) {
    std::vector<DocumentId> ids;
    for (;;) {
      auto leased = q.Lease(7, 1 << 20, 600s);  // small batches: the order across calls counts
      EXPECT_TRUE(leased.ok()) << leased.status();
      if (!leased.ok() || leased->empty()) return ids;
      for (const Record& r : *leased) ids.push_back(r.id);
    }
  }

  qseal::testing::TempDir dir_;
  ManualClock clock_;
};

// Queued, leased, backed-off and final documents: after a reopen the rebuilt index leases the
// same documents in the same (id) order, the backed-off ones only when their time comes.
TEST_F(CompactIndexTest, ReopenRebuildsTheIndexWithTheSameLeaseOrder) {
  std::vector<DocumentId> ids;
  std::vector<DocumentId> want_now, want_later;
  {
    auto q = Open();
    for (int i = 0; i < 300; ++i) {
      ids.push_back(MustEnqueue(*q, Doc("d" + std::to_string(i)), std::string(64 + i, 'x')).id);
    }
    auto leased = q->Lease(90, 1 << 30, 600s);
    ASSERT_TRUE(leased.ok());
    ASSERT_EQ(leased->size(), 90u);
    std::vector<Queue::Completion> done;
    std::vector<Queue::Failure> retry;
    for (std::size_t i = 0; i < leased->size(); ++i) {
      const DocumentId& id = (*leased)[i].id;
      if (i % 3 == 0) done.push_back({id, Bytes{1, 2, 3}, "application/pkcs7-signature"});
      if (i % 3 == 1) retry.push_back({id, UnavailableError("hsm down"), true});
      // i % 3 == 2 stays leased: requeued by the reopen
    }
    ASSERT_TRUE(q->Complete(done).ok());
    ASSERT_TRUE(q->Fail(retry).ok());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (i < 90 && i % 3 == 0) continue;
      (i < 90 && i % 3 == 1 ? want_later : want_now).push_back(ids[i]);
    }
    ASSERT_TRUE(q->Close().ok());
  }
  auto q = Open();
  QueueStats s = q->Stats();
  EXPECT_EQ(s.queued, 270u);
  EXPECT_EQ(s.leased, 0u);
  EXPECT_EQ(s.sealed, 30u);
  std::vector<DocumentId> now = LeaseAll(*q);
  EXPECT_EQ(now, want_now);
  clock_.Advance(10s);
  EXPECT_EQ(LeaseAll(*q), want_later);
  EXPECT_EQ(q->Stats().leased, 270u);
}

// Get of a pending document after a restart shows every field, from RocksDB.
TEST_F(CompactIndexTest, PendingDocumentStatusAfterReopenHasEveryField) {
  DocumentId id;
  auto created = clock_.Now();
  {
    auto q = Open();
    NewDocument d = Doc("invoice-7.pdf", "key-7");
    d.source = Source::kWatch;
    d.source_ref = "/watch/processing/invoice-7.pdf";
    id = MustEnqueue(*q, d, "hello").id;
    clock_.Advance(1s);
    ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
    ASSERT_TRUE(q->Fail({{id, UnavailableError("partition p1 down"), true}}).ok());
    ASSERT_TRUE(q->Close().ok());
  }
  auto q = Open();
  auto r = q->Get(id);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state, State::kQueued);
  EXPECT_EQ(r->profile, "invoices");
  EXPECT_EQ(r->client, "acme");
  EXPECT_EQ(r->name, "invoice-7.pdf");
  EXPECT_EQ(r->media_type, "application/pdf");
  EXPECT_EQ(r->source, Source::kWatch);
  EXPECT_EQ(r->source_ref, "/watch/processing/invoice-7.pdf");
  EXPECT_EQ(r->idempotency_key, "key-7");
  EXPECT_EQ(r->sha256_hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(r->size, 5u);
  EXPECT_EQ(r->attempts, 1u);
  EXPECT_EQ(r->created_at, created);
  EXPECT_EQ(r->not_before, created + 1s + 10s);
  EXPECT_EQ(r->error_code, "UNAVAILABLE");
  EXPECT_EQ(r->error_message, "partition p1 down");
  // The idempotency key still names it, and its bytes are there.
  auto again = q->Enqueue(Doc("invoice-7.pdf", "key-7"), AsBytes(std::string_view("hello")));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->id, id);
  auto payload = q->OpenPayload(id);
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(std::string(AsChars(ReadAll(**payload))), "hello");
}

// A state that is only in memory so far (a lease's unsynced write, a requeue) is what Get, the
// next Lease and Complete build on: nothing written earlier shadows it.
TEST_F(CompactIndexTest, NewestStateWinsOverWhatIsOnDisk) {
  QueueOptions o = Options();
  o.initial_backoff = 0ms;
  auto q = MustOpen(o, clock_);
  auto id = MustEnqueue(*q, Doc(), "content").id;
  ASSERT_EQ(q->Lease(1, 1 << 20, 60s)->size(), 1u);
  auto r = q->Get(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, State::kLeased);
  EXPECT_EQ(r->lease_deadline, clock_.Now() + 60s);
  ASSERT_TRUE(q->Fail({{id, UnavailableError("first"), true}}).ok());
  auto second = q->Lease(1, 1 << 20, 60s);
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].attempts, 2u);
  EXPECT_EQ((*second)[0].error_message, "first");  // the requeue's fields survive the lease
  EXPECT_EQ((*second)[0].name, "doc.pdf");
  ASSERT_TRUE(q->Complete({{id, Bytes{9}, "application/pkcs7-signature"}}).ok());
  r = q->Get(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, State::kSealed);
  EXPECT_EQ(r->attempts, 2u);
  EXPECT_EQ(r->error_message, "first");
  EXPECT_EQ(r->seal_media_type, "application/pkcs7-signature");
  EXPECT_EQ(*q->GetSeal(id), Bytes{9});
  EXPECT_EQ(q->Stats().queued + q->Stats().leased, 0u);
}

// A stream begun before another document is enqueued but committed after it still comes first
// (FIFO is by id), and leases expire in deadline order.
TEST_F(CompactIndexTest, LeaseOrderIsByIdAndExpiryByDeadline) {
  auto q = Open();
  auto stream = q->Begin(Doc("early"));
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE((*stream)->Append(AsBytes(std::string_view("abc"))).ok());
  auto late = MustEnqueue(*q, Doc("late"), "def").id;
  auto early = q->Commit(std::move(*stream));
  ASSERT_TRUE(early.ok());
  ASSERT_LT(early->id, late);
  auto a = q->Lease(1, 1 << 20, 20s);
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].id, early->id);
  auto b = q->Lease(1, 1 << 20, 10s);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].id, late);
  clock_.Advance(10s);  // only the second lease has expired
  auto c = q->Lease(5, 1 << 20, 60s);
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].id, late);
  EXPECT_EQ((*c)[0].attempts, 2u);
  clock_.Advance(10s);
  auto d = q->Lease(5, 1 << 20, 60s);
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].id, early->id);
}

}  // namespace
}  // namespace qseal::queue
