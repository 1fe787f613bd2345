// Checks that the sanitizer tiers (scripts/test-sanitizers) catch what they are there to catch.
// Each test runs only in the build it is about and is skipped elsewhere (QSEAL_TEST_SANITIZER is
// the build's QSEAL_SANITIZER).
#include <climits>
#include <memory>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <tbb/task_arena.h>

#include "common/mutex.h"
#include "common/tsan.h"

namespace qseal {
namespace {

bool Built(std::string_view sanitizer) {
  return std::string_view(QSEAL_TEST_SANITIZER).find(sanitizer) != std::string_view::npos;
}

// Both volatiles matter: GCC drops an UBSan check whose result is unused, and folds constants.
int Overflow(int x) {
  volatile int v = x;
  volatile int sum = v + 1;
  return sum;
}

// UBSan only prints by default; the build makes every report abort (-fno-sanitize-recover), so a
// report inside qseald (a child of the test, maybe without UBSAN_OPTIONS) fails its test too.
TEST(SanitizerTierTest, UbsanReportKillsTheProcess) {
  if (!Built("undefined")) GTEST_SKIP() << "not an UBSan build";
  EXPECT_DEATH(Overflow(INT_MAX), "signed integer overflow");
}

TEST(SanitizerTierTest, AsanReportKillsTheProcess) {
  if (!Built("address")) GTEST_SKIP() << "not an ASan build";
  EXPECT_DEATH(
      {
        int* volatile p = new int(1);  // volatile: the compiler cannot see the use after free
        delete p;
        volatile int x = *p;
        (void)x;
      },
      "heap-use-after-free");
}

// The engine's arena tasks (engine/engine.cc Spawn): oneTBB's queue is not instrumented, so
// without the TsanRelease/TsanAcquire edge TSan reported the task's read of the data its creator
// wrote before enqueueing as a race, and qseald halted mid-run (SealingE2eTest "hung" under TSan).
// Runs in every build; in the TSan build (halt_on_error=1) a report fails it.
TEST(SanitizerTierTest, TbbEnqueuedTaskSeesItsCreatorsWritesWithoutAReport) {
  tbb::task_arena arena(2);
  Mutex mu;
  CondVar cv;
  int done = 0;
  long sum = 0;
  constexpr int kTasks = 64;
  for (int t = 0; t < kTasks; ++t) {
    std::vector<int> data;  // written here, read by the task on a TBB worker
    for (int i = 0; i < 100; ++i) data.push_back(t + i);
    auto task = std::make_shared<std::vector<int>>(std::move(data));
    TsanRelease(task.get());
    arena.enqueue([&, task] {
      TsanAcquire(task.get());
      long s = 0;
      for (int v : *task) s += v;
      MutexLock lock(mu);
      sum += s;
      if (++done == kTasks) cv.SignalAll();
    });
  }
  MutexLock lock(mu);
  while (done < kTasks) cv.Wait(mu);
  EXPECT_EQ(sum, 64L * (99 * 100 / 2) + 100L * (63 * 64 / 2));
}

}  // namespace
}  // namespace qseal
