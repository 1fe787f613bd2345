#include "engine/detail/outcomes.h"

#include <string>

#include "metrics/metrics.h"

namespace qseal::engine::detail {

void CountOutcomes(const Jobs& batch, bool completed, bool failed,
                   std::chrono::system_clock::time_point now, metrics::Metrics& metrics) {
  for (const auto& job : batch) {
    std::string_view source = queue::SourceName(job->record.source);
    const std::string& profile = job->record.profile;
    if (job->error.ok()) {
      if (completed) metrics.DocumentSealed(source, profile, now - job->record.created_at);
    } else if (failed) {
      std::string_view code = StatusCodeName(job->error.code());
      if (job->retryable) {
        metrics.DocumentRequeued(source, profile, code);
      } else {
        metrics.DocumentFailed(source, profile, code);
      }
    }
  }
}

Missing WaitOrFail(const Status& why, std::string_view what, std::chrono::milliseconds waited,
                   std::chrono::milliseconds timestamp_wait) {
  if (why.code() == StatusCode::kFailedPrecondition) return {why.WithContext(what), false, false};
  if (waited < timestamp_wait) return {why.WithContext(what), true, true};
  return {UnavailableError("no " + std::string(what) + " within " +
                           std::to_string(timestamp_wait.count() / 1000) +
                           " s of acceptance: " + why.ToString()),
          false, false};
}

}  // namespace qseal::engine::detail
