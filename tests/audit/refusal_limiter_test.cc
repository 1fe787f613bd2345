#include "audit/refusal_limiter.h"

#include <gtest/gtest.h>

namespace qseal::audit {
namespace {

using std::chrono::milliseconds;

TEST(RefusalLimiterTest, BurstThenRateAndTheNextRecordCountsWhatWasDropped) {
  ManualClock clock;
  RefusalLimiter limiter(/*per_second=*/10, /*burst=*/3, clock);
  std::uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Admit(&suppressed)) << i;
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.Admit(&suppressed)) << i;
  clock.Advance(milliseconds(99));  // 0.99 of a token: still nothing
  EXPECT_FALSE(limiter.Admit(&suppressed));
  clock.Advance(milliseconds(2));
  ASSERT_TRUE(limiter.Admit(&suppressed));
  EXPECT_EQ(suppressed, 6u);  // the five and the one at 99 ms
  // A long quiet period refills only up to the burst.
  clock.Advance(std::chrono::hours(1));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit(&suppressed)) << i;
  EXPECT_FALSE(limiter.Admit(&suppressed));
}

TEST(RefusalLimiterTest, TakeSuppressedReportsEachDroppedRefusalOnce) {
  ManualClock clock;
  RefusalLimiter limiter(1, 1, clock);
  std::uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.Admit(&suppressed));
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(limiter.Admit(&suppressed));
  EXPECT_EQ(limiter.TakeSuppressed(), 4u);
  EXPECT_EQ(limiter.TakeSuppressed(), 0u);
  clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(limiter.Admit(&suppressed));
  EXPECT_EQ(suppressed, 0u);  // already reported by the summary
}

}  // namespace
}  // namespace qseal::audit
