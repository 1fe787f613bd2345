// What the broker sources (ingest/jetstream_source.h, ingest/kafka_source.h) decide alike: which
// profiles a message may ask for, how many messages a round may take, which refusals are final,
// and the record a final refusal's failure result describes. Not a public interface.
//
// Thread-safety: functions; RoundSize reads the queue's thread-safe Stats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "queue/queue.h"

namespace qseal::ingest::detail {

// Whether a message may ask for `profile`: the source's default or one of its other profiles.
bool ProfileAllowed(const std::string& profile, const std::string& default_profile,
                    const std::vector<std::string>& profiles);

// How many messages the next round may take: `batch`, but no more than the headroom below
// `local_high_watermark` (queued + leased documents; 0: no such bound), so a round never takes
// the queue above it.
int RoundSize(const queue::Queue& queue, std::uint64_t local_high_watermark, int batch);

// A Begin/Append/Commit error that will not go away by trying again (the message itself is at
// fault: a bad profile or size, an idempotency conflict): the message gets a failure result.
bool FinalRefusal(const Status& error);

// The record a failure result describes for a message refused before it was queued (no id).
queue::Record RefusedRecord(const queue::NewDocument& doc);

}  // namespace qseal::ingest::detail
