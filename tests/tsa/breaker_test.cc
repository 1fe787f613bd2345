#include "tsa/detail/breaker.h"

#include <gtest/gtest.h>

namespace qseal::tsa::detail {
namespace {

using std::chrono::milliseconds;

TEST(CircuitBreakerTest, OpensAfterThresholdAndProbesAfterCooldown) {
  ManualClock clock;
  CircuitBreaker breaker(clock, 3, milliseconds(1000));
  EXPECT_TRUE(breaker.Admit());
  breaker.RecordFailure();
  breaker.RecordFailure();
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  breaker.RecordFailure();
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_FALSE(breaker.Admit());
  clock.Advance(milliseconds(999));
  EXPECT_FALSE(breaker.Admit());
  clock.Advance(milliseconds(1));
  EXPECT_EQ(breaker.state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(breaker.Admit());   // the probe
  EXPECT_FALSE(breaker.Admit());  // only one
  breaker.RecordSuccess();
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_TRUE(breaker.Admit());
}

TEST(CircuitBreakerTest, FailedProbeReopensForAnotherCooldown) {
  ManualClock clock;
  CircuitBreaker breaker(clock, 1, milliseconds(100));
  breaker.RecordFailure();
  clock.Advance(milliseconds(100));
  ASSERT_TRUE(breaker.Admit());
  breaker.RecordFailure();
  EXPECT_EQ(breaker.state(), BreakerState::kOpen);
  EXPECT_FALSE(breaker.Admit());
  clock.Advance(milliseconds(100));
  EXPECT_TRUE(breaker.Admit());
}

TEST(CircuitBreakerTest, SuccessResetsTheFailureCount) {
  ManualClock clock;
  CircuitBreaker breaker(clock, 2, milliseconds(100));
  breaker.RecordFailure();
  breaker.RecordSuccess();
  breaker.RecordFailure();
  EXPECT_EQ(breaker.state(), BreakerState::kClosed);
  EXPECT_EQ(breaker.consecutive_failures(), 1);
}

TEST(TokenBucketTest, AllowsBurstThenRate) {
  ManualClock clock;
  TokenBucket bucket(clock, 10.0, 3);
  EXPECT_TRUE(bucket.TryTake());
  EXPECT_TRUE(bucket.TryTake());
  EXPECT_TRUE(bucket.TryTake());
  EXPECT_FALSE(bucket.TryTake());
  EXPECT_EQ(bucket.TimeToNext(), milliseconds(100));
  clock.Advance(milliseconds(100));
  EXPECT_TRUE(bucket.TryTake());
  EXPECT_FALSE(bucket.TryTake());
  clock.Advance(std::chrono::seconds(10));  // refills to the burst, not beyond
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.TryTake());
  EXPECT_FALSE(bucket.TryTake());
}

TEST(TokenBucketTest, ZeroRateNeverLimits) {
  ManualClock clock;
  TokenBucket bucket(clock, 0, 1);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(bucket.TryTake());
}

}  // namespace
}  // namespace qseal::tsa::detail
