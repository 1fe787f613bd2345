#include "common/clock.h"

#include <cstdio>
#include <ctime>

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

std::string FormatUtc(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

}  // namespace qseal
