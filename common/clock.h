// The clock seam: components take a Clock& so tests can move time by hand.
//
// Wall time (Now) is what goes into signing-time and records; steady time (SteadyNow) is what
// deadlines, leases and back-off use, so a wall-clock jump never fires or freezes a timer.
//
// Clock implementations are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace qseal {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
  virtual std::chrono::steady_clock::time_point SteadyNow() const = 0;

  // The process-wide real clock. Never null, never destroyed.
  static Clock& Real();
};

// A clock that moves only when told to. Both readings advance together. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::chrono::system_clock::time_point start =
                           std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 *
                                                                                    56)));

  std::chrono::system_clock::time_point Now() const override;
  std::chrono::steady_clock::time_point SteadyNow() const override;

  void Advance(std::chrono::nanoseconds delta);
  // Moves only the wall clock (a clock jump); steady time is unaffected.
  void JumpWall(std::chrono::nanoseconds delta);

 private:
  std::atomic<std::int64_t> wall_ns_;
  std::atomic<std::int64_t> steady_ns_{0};
};

// RFC 3339 / ISO 8601 UTC with milliseconds: "2026-11-25T21:50:00.123Z".
std::string FormatUtc(std::chrono::system_clock::time_point t);

}  // namespace qseal
