// Per-TSA admission: a circuit breaker and a token-bucket rate limit, both driven by the steady
// time of an injected Clock so tests move them by hand.
//
// Thread-compatible; owned by the client's I/O thread.
#pragma once

#include <chrono>
#include <cstddef>

#include "common/clock.h"
#include "tsa/tsa_client.h"

namespace qseal::tsa::detail {

// Closed: every request may go. Open (after `threshold` consecutive failures): none may, until
// `cooldown` has passed; then half-open: one probe goes, its success closes the breaker, its
// failure opens it again for another cool-down.
class CircuitBreaker {
 public:
  CircuitBreaker(const Clock& clock, int threshold, std::chrono::milliseconds cooldown)
      : clock_(clock), threshold_(threshold), cooldown_(cooldown) {}

  // True when a request may go now; in half-open state the first true marks the probe as sent.
  bool Admit();
  // True when Admit() would return true (does not take the probe).
  bool WouldAdmit() const;
  void RecordSuccess();
  void RecordFailure();

  BreakerState state() const;
  int consecutive_failures() const { return failures_; }

 private:
  const Clock& clock_;
  const int threshold_;
  const std::chrono::milliseconds cooldown_;
  int failures_ = 0;
  bool open_ = false;
  bool probe_in_flight_ = false;
  std::chrono::steady_clock::time_point opened_at_{};
};

// `rate` tokens per second up to `burst`; starts full. A rate of 0 never limits.
class TokenBucket {
 public:
  TokenBucket(const Clock& clock, double rate, std::size_t burst);

  // Takes one token when there is one.
  bool TryTake();
  // How long until the next token (zero when one is there).
  std::chrono::nanoseconds TimeToNext();

 private:
  void Refill();

  const Clock& clock_;
  const double rate_;
  const double burst_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace qseal::tsa::detail
