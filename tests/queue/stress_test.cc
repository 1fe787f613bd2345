// Producers, engine threads and failures all at once: every document ends sealed exactly once,
// with its own seal, whatever the interleaving. The random choices are seeded and printed.
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "queue/queue.h"
#include "tests/queue/queue_test_util.h"
#include "tests/testing/testing.h"

namespace qseal::queue {
namespace {

using namespace std::chrono_literals;
using testing::Doc;

Bytes SealFor(const DocumentId& id) {
  std::string s = "seal:" + id.ToString();
  return Bytes(s.begin(), s.end());
}

TEST(QueueStressTest, ConcurrentEnqueueLeaseCompleteFail) {
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  qseal::testing::TempDir dir;
  QueueOptions o;
  o.path = dir.Sub("q");
  o.inline_payload_max_bytes = 512;  // some documents are spooled
  o.max_attempts = 1000;
  o.initial_backoff = 0ms;
  o.retention_sweep_interval = 0ms;
  auto opened = Queue::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Queue& q = **opened;

  constexpr int kProducers = 6;
  constexpr int kPerProducer = 200;
  constexpr int kTotal = kProducers * kPerProducer;
  std::atomic<int> produced{0};
  std::atomic<int> sealed{0};
  std::atomic<bool> failed_assertion{false};
  std::mutex error_mu;
  std::string first_error;
  auto fail = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.empty()) first_error = what;
    failed_assertion = true;
  };

  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        std::string body(static_cast<std::size_t>(100 + (i * 37) % 900),
                         static_cast<char>('a' + p));
        auto r = q.Enqueue(Doc(std::to_string(p) + "-" + std::to_string(i)), AsBytes(body));
        if (!r.ok()) fail("enqueue: " + r.status().ToString());
        ++produced;
      }
    });
  }
  for (int e = 0; e < 3; ++e) {
    threads.emplace_back([&, e] {
      std::mt19937_64 rng(seed + static_cast<std::uint64_t>(e));
      while (sealed.load() < kTotal && !failed_assertion.load()) {
        auto leased = q.Lease(1 + rng() % 16, 1 << 20, 60s);
        if (!leased.ok()) {
          fail("lease: " + leased.status().ToString());
          return;
        }
        if (leased->empty()) {
          q.WaitForWork(5ms);
          continue;
        }
        std::vector<Queue::Completion> done;
        std::vector<Queue::Failure> retry;
        for (const Record& r : *leased) {
          if (r.state != State::kLeased) failed_assertion = true;
          auto payload = q.OpenPayload(r.id);
          if (!payload.ok() || testing::ReadAll(**payload).size() != r.size)
            failed_assertion = true;
          if (rng() % 4 == 0) {
            retry.push_back({r.id, UnavailableError("transient"), true});
          } else {
            done.push_back({r.id, SealFor(r.id), "application/pkcs7-signature"});
          }
        }
        int n = static_cast<int>(done.size());
        Status c = q.Complete(std::move(done));
        Status f = q.Fail(std::move(retry));
        if (!c.ok() || !f.ok()) fail("complete/fail: " + c.ToString() + " " + f.ToString());
        sealed += n;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_FALSE(failed_assertion.load()) << first_error;
  EXPECT_EQ(sealed.load(), kTotal);
  QueueStats s = q.Stats();
  EXPECT_EQ(s.sealed, std::uint64_t{kTotal});
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.leased, 0u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_EQ(s.pending_bytes, 0u);
  EXPECT_TRUE(std::filesystem::is_empty(o.path + "/spool"));
  ASSERT_TRUE(q.Close().ok());

  // After a reopen every document is still sealed with its own seal.
  auto again = Queue::Open(o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Stats().sealed, std::uint64_t{kTotal});
  auto none = (*again)->Lease(1000, ~0ull, 60s);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace qseal::queue
