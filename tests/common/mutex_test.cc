#include "common/mutex.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace qseal {
namespace {

TEST(MutexTest, ProtectsACounterAcrossThreads) {
  Mutex mu;
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        MutexLock lock(mu);
        ++counter;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(counter, 40000);
}

TEST(CondVarTest, WaitUntilTimesOutWithoutSignal) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(mu);
  bool signalled =
      cv.WaitUntil(mu, std::chrono::steady_clock::now() + std::chrono::milliseconds(5));
  EXPECT_FALSE(signalled);
}

TEST(CondVarTest, SignalWakesWaiter) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  std::thread producer([&] {
    MutexLock lock(mu);
    ready = true;
    cv.SignalAll();
  });
  {
    MutexLock lock(mu);
    while (!ready) cv.Wait(mu);
  }
  producer.join();
  EXPECT_TRUE(ready);
}

}  // namespace
}  // namespace qseal
