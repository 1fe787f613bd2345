// Unit tests of the ?wait machinery: single and group waiters answered exactly once, by Notify,
// by their deadline or by Stop, and the ?wait=SECONDS parser.
#include "ingest/detail/waiters.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/thread_pool.hpp>
#include <gtest/gtest.h>

namespace qseal::ingest::detail {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

queue::DocumentId Id(std::uint8_t n) {
  std::uint8_t bytes[queue::DocumentId::kSize] = {};
  bytes[0] = 1;
  bytes[15] = n;
  return queue::DocumentId::FromBytes(ByteSpan(bytes, sizeof(bytes)));
}

// Counts its answers and lets a test block until the first one.
struct Probe {
  std::atomic<int> calls{0};
  std::promise<std::thread::id> first;
  std::future<std::thread::id> answered = first.get_future();

  Waiters::Answer Answer() {
    return [this] {
      if (calls.fetch_add(1) == 0) first.set_value(std::this_thread::get_id());
    };
  }
  bool Wait(milliseconds timeout = milliseconds(10'000)) {
    return answered.wait_for(timeout) == std::future_status::ready;
  }
};

const Waiters::IsSettled kNotYet = [](const queue::DocumentId&) { return false; };
const Waiters::IsSettled kAlready = [](const queue::DocumentId&) { return true; };
const auto kFar = [] { return Clock::now() + std::chrono::hours(1); };

TEST(ParseWaitTest, SecondsCappedAtTheMaximum) {
  milliseconds max(60'000);
  EXPECT_EQ(ParseWait({}, max), milliseconds(0));
  EXPECT_EQ(ParseWait({{"wait", "0"}}, max), milliseconds(0));
  EXPECT_EQ(ParseWait({{"wait", "2.5"}}, max), milliseconds(2'500));
  EXPECT_EQ(ParseWait({{"wait", "60"}}, max), max);
  EXPECT_EQ(ParseWait({{"wait", "1e9"}}, max), max);
  EXPECT_EQ(ParseWait({{"wait", "inf"}}, max), max);
  EXPECT_EQ(ParseWait({{"profile", "x"}}, max), milliseconds(0));
}

TEST(ParseWaitTest, RefusesWhatIsNotANonNegativeNumber) {
  milliseconds max(60'000);
  for (const char* bad : {"", "-1", "abc", "3s", "1 ", "nan", "-inf"}) {
    EXPECT_FALSE(ParseWait({{"wait", bad}}, max).has_value()) << bad;
  }
}

TEST(WaitersTest, NotifyAnswersASingleWaiterOnceOnTheNotifyingThread) {
  boost::asio::thread_pool pool(1);
  Waiters waiters(pool);
  waiters.Start();
  Probe p;
  waiters.WaitForOne(Id(1), kFar(), p.Answer(), kNotYet);
  EXPECT_EQ(p.calls.load(), 0);
  waiters.Notify(Id(2));  // another document
  EXPECT_EQ(p.calls.load(), 0);
  waiters.Notify(Id(1));
  ASSERT_TRUE(p.Wait(milliseconds(0)));
  EXPECT_EQ(p.answered.get(), std::this_thread::get_id());
  waiters.Notify(Id(1));
  waiters.Stop();
  pool.join();
  EXPECT_EQ(p.calls.load(), 1);
}

TEST(WaitersTest, AlreadySettledDocumentIsAnsweredAtOnce) {
  boost::asio::thread_pool pool(1);
  Waiters waiters(pool);
  waiters.Start();
  Probe p;
  waiters.WaitForOne(Id(1), kFar(), p.Answer(), kAlready);
  ASSERT_TRUE(p.Wait(milliseconds(0)));
  waiters.Stop();
  EXPECT_EQ(p.calls.load(), 1);
}

TEST(WaitersTest, DeadlineAnswersOnTheExpiryThread) {
  boost::asio::thread_pool pool(1);
  Waiters waiters(pool);
  waiters.Start();
  Probe p;
  waiters.WaitForOne(Id(1), Clock::now() + milliseconds(20), p.Answer(), kNotYet);
  ASSERT_TRUE(p.Wait());
  EXPECT_NE(p.answered.get(), std::this_thread::get_id());
  waiters.Notify(Id(1));  // too late: already answered
  waiters.Stop();
  EXPECT_EQ(p.calls.load(), 1);
}

TEST(WaitersTest, GroupIsAnsweredOnceWhenEveryIdIsDone) {
  boost::asio::thread_pool pool(2);
  Waiters waiters(pool);
  waiters.Start();
  Probe p;
  std::vector<queue::DocumentId> seen;
  // Id(2) finished before the group registered; Id(1) and Id(3) come later.
  waiters.WaitForAll({Id(1), Id(2), Id(3)}, kFar(), p.Answer(),
                     [](const queue::DocumentId& id) { return id == Id(2); });
  waiters.Notify(Id(1));
  waiters.Notify(Id(1));
  EXPECT_FALSE(p.Wait(milliseconds(50)));
  waiters.Notify(Id(3));
  ASSERT_TRUE(p.Wait());
  EXPECT_NE(p.answered.get(), std::this_thread::get_id());  // on the pool
  waiters.Notify(Id(3));
  waiters.Stop();
  pool.join();
  EXPECT_EQ(p.calls.load(), 1);
}

TEST(WaitersTest, GroupDeadlineAnswersWithIdsOutstanding) {
  boost::asio::thread_pool pool(1);
  Waiters waiters(pool);
  waiters.Start();
  Probe p;
  waiters.WaitForAll({Id(1), Id(2)}, Clock::now() + milliseconds(20), p.Answer(), kNotYet);
  ASSERT_TRUE(p.Wait());
  waiters.Notify(Id(1));
  waiters.Notify(Id(2));
  waiters.Stop();
  pool.join();
  EXPECT_EQ(p.calls.load(), 1);
}

TEST(WaitersTest, StopAnswersEverythingAndLaterWaitsAtOnce) {
  boost::asio::thread_pool pool(1);
  Waiters waiters(pool);
  waiters.Start();
  Probe one, group;
  waiters.WaitForOne(Id(1), kFar(), one.Answer(), kNotYet);
  waiters.WaitForAll({Id(2), Id(3)}, kFar(), group.Answer(), kNotYet);
  waiters.Stop();
  ASSERT_TRUE(one.Wait(milliseconds(0)));  // on Stop's thread, before it returns
  EXPECT_EQ(one.answered.get(), std::this_thread::get_id());
  ASSERT_TRUE(group.Wait());

  Probe late_one, late_group;
  bool asked = false;
  waiters.WaitForOne(Id(4), kFar(), late_one.Answer(), [&](const queue::DocumentId&) {
    asked = true;
    return false;
  });
  waiters.WaitForAll({Id(5)}, kFar(), late_group.Answer(), kNotYet);
  EXPECT_TRUE(late_one.Wait(milliseconds(0)));
  EXPECT_TRUE(late_group.Wait(milliseconds(0)));
  EXPECT_FALSE(asked);
  waiters.Stop();  // idempotent
  waiters.Notify(Id(1));
  pool.join();
  EXPECT_EQ(one.calls.load() + group.calls.load() + late_one.calls.load() + late_group.calls.load(),
            4);
}

TEST(WaitersTest, StopWithoutStartAnswersWaiters) {
  boost::asio::thread_pool pool(1);
  Probe p;
  {
    Waiters waiters(pool);
    waiters.WaitForOne(Id(1), kFar(), p.Answer(), kNotYet);
  }  // the destructor stops
  EXPECT_TRUE(p.Wait(milliseconds(0)));
  EXPECT_EQ(p.calls.load(), 1);
}

TEST(WaitersTest, ConcurrentNotifyAnswersEachWaiterExactlyOnce) {
  boost::asio::thread_pool pool(2);
  Waiters waiters(pool);
  waiters.Start();
  constexpr int kDocs = 64;
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < kDocs; ++i) {
    probes.push_back(std::make_unique<Probe>());
    waiters.WaitForOne(Id(static_cast<std::uint8_t>(i)), kFar(), probes.back()->Answer(), kNotYet);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kDocs; ++i) waiters.Notify(Id(static_cast<std::uint8_t>(i)));
    });
  }
  for (auto& t : threads) t.join();
  waiters.Stop();
  pool.join();
  for (const auto& p : probes) EXPECT_EQ(p->calls.load(), 1);
}

}  // namespace
}  // namespace qseal::ingest::detail
