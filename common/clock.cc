#include "common/clock.h"

namespace qseal {
namespace {

class RealClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point SteadyNow() const override {
    return std::chrono::steady_clock::now();
  }
};

}  // namespace

Clock& Clock::Real() {
  static RealClock* clock = new RealClock();  // Leaked on purpose: usable during static teardown.
  return *clock;
}

ManualClock::ManualClock(std::chrono::system_clock::time_point start)
    : wall_ns_(
          std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count()) {}

std::chrono::system_clock::time_point ManualClock::Now() const {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(wall_ns_.load())));
}

std::chrono::steady_clock::time_point ManualClock::SteadyNow() const {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(steady_ns_.load())));
}

void ManualClock::Advance(std::chrono::nanoseconds delta) {
  wall_ns_ += delta.count();
  steady_ns_ += delta.count();
}

void ManualClock::JumpWall(std::chrono::nanoseconds delta) { wall_ns_ += delta.count(); }

}  // namespace qseal
