#include "common/clock.h"

#include <gtest/gtest.h>

namespace qseal {
namespace {

using namespace std::chrono_literals;

TEST(ClockTest, RealClockMovesForward) {
  auto a = Clock::Real().SteadyNow();
  auto b = Clock::Real().SteadyNow();
  EXPECT_LE(a, b);
  auto wall = Clock::Real().Now();
  EXPECT_GT(wall.time_since_epoch(), std::chrono::hours(24 * 365 * 50));  // After 2020.
}

TEST(ManualClockTest, AdvanceMovesBothClocks) {
  ManualClock clock;
  auto wall = clock.Now();
  auto steady = clock.SteadyNow();
  clock.Advance(5s);
  EXPECT_EQ(clock.Now() - wall, 5s);
  EXPECT_EQ(clock.SteadyNow() - steady, 5s);
}

TEST(ManualClockTest, WallJumpLeavesSteadyAlone) {
  ManualClock clock;
  auto steady = clock.SteadyNow();
  auto wall = clock.Now();
  clock.JumpWall(std::chrono::hours(24 * 365));
  EXPECT_EQ(clock.SteadyNow(), steady);
  EXPECT_EQ(clock.Now() - wall, std::chrono::hours(24 * 365));
}

}  // namespace
}  // namespace qseal

namespace qseal {
namespace {

TEST(FormatUtcTest, Rfc3339WithMilliseconds) {
  auto t = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764107400123));
  EXPECT_EQ(FormatUtc(t), "2025-11-25T21:50:00.123Z");
}

}  // namespace
}  // namespace qseal
