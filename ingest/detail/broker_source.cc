#include "ingest/detail/broker_source.h"

#include <algorithm>

namespace qseal::ingest::detail {

bool ProfileAllowed(const std::string& profile, const std::string& default_profile,
                    const std::vector<std::string>& profiles) {
  return profile == default_profile ||
         std::find(profiles.begin(), profiles.end(), profile) != profiles.end();
}

int RoundSize(const queue::Queue& queue, std::uint64_t local_high_watermark, int batch) {
  if (local_high_watermark == 0) return batch;
  const queue::QueueStats qs = queue.Stats();
  const std::uint64_t pending = qs.queued + qs.leased;
  const std::uint64_t room = pending >= local_high_watermark ? 0 : local_high_watermark - pending;
  return static_cast<int>(std::min<std::uint64_t>(room, static_cast<std::uint64_t>(batch)));
}

bool FinalRefusal(const Status& error) {
  return error.code() == StatusCode::kInvalidArgument ||
         error.code() == StatusCode::kFailedPrecondition;
}

queue::Record RefusedRecord(const queue::NewDocument& doc) {
  queue::Record r;
  r.profile = doc.profile;
  r.source = queue::Source::kBroker;
  r.client = doc.client;
  r.name = doc.name;
  r.source_ref = doc.source_ref;
  r.idempotency_key = doc.idempotency_key;
  return r;
}

}  // namespace qseal::ingest::detail
