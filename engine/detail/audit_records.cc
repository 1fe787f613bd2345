#include "engine/detail/audit_records.h"

#include <string>
#include <utility>

namespace qseal::engine::detail {

audit::Entry AuditEntry(audit::Event event, const Job& job) {
  audit::Entry e;
  e.event = event;
  e.id = job.record.id.ToString();
  e.profile = job.record.profile;
  e.client = job.record.client;
  if (job.profile != nullptr) e.key = job.profile->profile.key;
  e.document_sha256 = job.record.sha256_hex;
  return e;
}

std::vector<audit::Entry> OutcomeEntries(const Jobs& batch) {
  std::vector<audit::Entry> entries;
  entries.reserve(batch.size());
  for (const auto& job : batch) {
    audit::Entry e =
        AuditEntry(job->error.ok() ? audit::Event::kSealed : audit::Event::kFailed, *job);
    if (job->error.ok()) {
      e.signature_sha256 = job->signature_sha256;
      // A digest-only seal: the record's hash is of the submitted digest's bytes; the digest the
      // seal's message-digest states is recorded too.
      if (!job->record.digest_algorithm.empty()) e.detail = job->digest_only_detail;
    } else {
      e.detail = std::string(job->retryable ? "retry: " : "final: ") + job->error.ToString();
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

void RequeueUnaudited(const Jobs& batch, const Status& written) {
  for (const auto& job : batch) {
    if (job->error.ok()) {
      job->seal.clear();
      job->seal_file.reset();
    }
    job->error = written.WithContext("audit");
    job->retryable = true;
    job->undelivered = true;
  }
}

}  // namespace qseal::engine::detail
