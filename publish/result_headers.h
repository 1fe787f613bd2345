// The headers of a broker result message, shared by the JetStream and the Kafka result sinks
// (publish/jetstream_publisher.h, publish/kafka_publisher.h), so a consumer of results reads the
// same names whichever broker carries them (docs/scale-out.md, "Result messages").
//
// Thread-safety: a pure function.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "queue/queue.h"

namespace qseal::publish {

// Qseal-Status (sealed | failed), Qseal-Document-Id, Qseal-Idempotency-Key, Qseal-Source,
// Qseal-Profile, Qseal-Sha256, Qseal-Filename, Content-Type (`content_type`, for seals) and for a
// failure (`error` not null) Qseal-Error-Code and Qseal-Error-Message; headers without a value
// are left out. Values are single lines (CR and LF become spaces).
std::vector<std::pair<std::string, std::string>> ResultHeaders(const queue::Record& record,
                                                               std::string_view content_type,
                                                               const Status* error);

}  // namespace qseal::publish
