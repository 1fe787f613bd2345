// How the engine classifies a document's end of a pass: the metrics of a committed batch, and the
// wait-or-fail decision for a B-T/B-LT document whose time-stamp or revocation data is missing.
// Pure functions; the engine applies them.
#pragma once

#include <chrono>
#include <string_view>

#include "common/status.h"
#include "engine/detail/job.h"

namespace qseal::metrics {
class Metrics;
}

namespace qseal::engine::detail {

// Counts each job of a commit batch at `now`: a seal when the completions were committed
// (`completed`), a requeue or a final failure when the failures were (`failed`).
void CountOutcomes(const Jobs& batch, bool completed, bool failed,
                   std::chrono::system_clock::time_point now, metrics::Metrics& metrics);

// What becomes of a document that lacks its `what` ("time-stamp", "revocation data") for `why`.
struct Missing {
  Status error;
  bool retryable = false;
  // Waiting spends no attempt: the document is not at fault.
  bool undelivered = false;
};
// A revoked chain (kFailedPrecondition) fails at once; otherwise the document waits until
// `timestamp_wait` has passed since its acceptance (`waited` ago), then fails with the last
// reason.
Missing WaitOrFail(const Status& why, std::string_view what, std::chrono::milliseconds waited,
                   std::chrono::milliseconds timestamp_wait);

}  // namespace qseal::engine::detail
