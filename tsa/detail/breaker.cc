#include "tsa/detail/breaker.h"

#include <algorithm>
#include <cmath>

namespace qseal::tsa::detail {

BreakerState CircuitBreaker::state() const {
  if (!open_) return BreakerState::kClosed;
  return clock_.SteadyNow() - opened_at_ >= cooldown_ ? BreakerState::kHalfOpen
                                                      : BreakerState::kOpen;
}

bool CircuitBreaker::WouldAdmit() const {
  switch (state()) {
    case BreakerState::kClosed:
      return true;
    case BreakerState::kHalfOpen:
      return !probe_in_flight_;
    case BreakerState::kOpen:
      return false;
  }
  return false;
}

bool CircuitBreaker::Admit() {
  if (!WouldAdmit()) return false;
  if (open_) probe_in_flight_ = true;
  return true;
}

void CircuitBreaker::RecordSuccess() {
  failures_ = 0;
  open_ = false;
  probe_in_flight_ = false;
}

void CircuitBreaker::RecordFailure() {
  ++failures_;
  // A failed probe re-opens at once; a closed breaker opens on reaching the threshold.
  if (open_ || failures_ >= threshold_) {
    open_ = true;
    probe_in_flight_ = false;
    opened_at_ = clock_.SteadyNow();
  }
}

TokenBucket::TokenBucket(const Clock& clock, double rate, std::size_t burst)
    : clock_(clock),
      rate_(rate),
      burst_(static_cast<double>(std::max<std::size_t>(burst, 1))),
      tokens_(burst_),
      last_(clock.SteadyNow()) {}

void TokenBucket::Refill() {
  auto now = clock_.SteadyNow();
  if (now <= last_) return;
  std::chrono::duration<double> elapsed = now - last_;
  tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
  last_ = now;
}

bool TokenBucket::TryTake() {
  if (rate_ <= 0) return true;
  Refill();
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

std::chrono::nanoseconds TokenBucket::TimeToNext() {
  if (rate_ <= 0) return std::chrono::nanoseconds(0);
  Refill();
  if (tokens_ >= 1.0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(
      static_cast<std::int64_t>(std::ceil((1.0 - tokens_) / rate_ * 1e9)));
}

}  // namespace qseal::tsa::detail
