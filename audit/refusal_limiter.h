// RefusalLimiter: keeps a flood of refused requests (bad tokens, unknown profiles) from filling the
// audit log, while never hiding that the flood happened.
//
// A token bucket: up to `burst` refusals get their own record at once, refilled at `per_second`.
// Refusals beyond that are only counted; the next admitted record (or a periodic summary taken
// with TakeSuppressed) carries the count. The metrics still count every refusal.
// Thread-safe.
#pragma once

#include <cstdint>

#include "common/clock.h"
#include "common/mutex.h"

namespace qseal::audit {

class RefusalLimiter {
 public:
  // per_second > 0 and burst >= 1.
  RefusalLimiter(double per_second, double burst, Clock& clock = Clock::Real());

  // True when this refusal gets its own record; then `*suppressed` is the number of refusals
  // dropped since the last admitted one (reset to 0), to be mentioned in its record.
  bool Admit(std::uint64_t* suppressed);

  // The refusals dropped and not yet reported, reset to 0.
  std::uint64_t TakeSuppressed();

 private:
  const double per_second_;
  const double burst_;
  Clock& clock_;
  Mutex mu_;
  double tokens_ QSEAL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_ QSEAL_GUARDED_BY(mu_);
  std::uint64_t suppressed_ QSEAL_GUARDED_BY(mu_) = 0;
};

}  // namespace qseal::audit
