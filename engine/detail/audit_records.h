// What the engine writes to the audit trail (docs/audit.md) for its documents: the records built
// from jobs, and what a failed write does to a commit batch. Pure functions; the engine does the
// writing.
#pragma once

#include <vector>

#include "audit/audit_log.h"
#include "common/status.h"
#include "engine/detail/job.h"

namespace qseal::engine::detail {

// The record of `event` for `job`: id, profile, client, key (when the job's profile is known) and
// the document's hash.
audit::Entry AuditEntry(audit::Event event, const Job& job);

// The sealed or failed record of each job of a commit batch: a seal's signature hash (and for a
// digest-only seal the digest it states), a failure's "retry: " or "final: " reason.
std::vector<audit::Entry> OutcomeEntries(const Jobs& batch);

// The outcome records of `batch` could not be written (`written`): no outcome is committed, every
// document goes back to the queue as a retryable, undelivered failure and a seal is dropped,
// never released.
void RequeueUnaudited(const Jobs& batch, const Status& written);

}  // namespace qseal::engine::detail
