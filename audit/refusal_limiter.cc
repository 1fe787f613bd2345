#include "audit/refusal_limiter.h"

#include <algorithm>
#include <utility>

namespace qseal::audit {

RefusalLimiter::RefusalLimiter(double per_second, double burst, Clock& clock)
    : per_second_(per_second),
      burst_(burst),
      clock_(clock),
      tokens_(burst),
      last_(clock.SteadyNow()) {}

bool RefusalLimiter::Admit(std::uint64_t* suppressed) {
  MutexLock lock(mu_);
  const auto now = clock_.SteadyNow();
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) * per_second_);
  if (tokens_ < 1) {
    ++suppressed_;
    return false;
  }
  tokens_ -= 1;
  *suppressed = std::exchange(suppressed_, 0);
  return true;
}

std::uint64_t RefusalLimiter::TakeSuppressed() {
  MutexLock lock(mu_);
  return std::exchange(suppressed_, 0);
}

}  // namespace qseal::audit
