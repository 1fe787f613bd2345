// The audit records of refused requests (auth_denied, rejected), rate-limited per kind and caller:
// the client's name when one was authenticated, else the source address. A flood of bad tokens
// from one address then uses up only its own bucket, never the records of another address or of
// a real client. What a bucket drops is counted into its next record or into the once-a-second
// summary. Buckets are never removed and at most kMaxBuckets exist; callers beyond that share one
// overflow bucket. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_log.h"
#include "audit/refusal_limiter.h"
#include "common/mutex.h"
#include "daemon/config.h"

namespace qseal::daemon {

class RefusalAudit {
 public:
  static constexpr std::size_t kMaxBuckets = 4096;

  // `log` must outlive this object.
  RefusalAudit(const AuditConfig& config, audit::AuditLog* log) : config_(config), log_(log) {}

  // One refusal of `kind` ("auth_denied" or another kind, recorded as rejected): appended to the
  // log unless its bucket is over its rate.
  void Record(std::string_view kind, std::string_view client, std::string_view profile,
              std::string_view reason, std::string_view source);

  // The records counting what each bucket dropped since the last call, added to `entries`.
  void AddSummaries(std::vector<audit::Entry>* entries);

 private:
  struct Bucket {
    Bucket(const AuditConfig& a, audit::Event e, std::string c, std::string s)
        : limiter(a.refusal_records_per_second, a.refusal_burst),
          event(e),
          client(std::move(c)),
          source(std::move(s)) {}
    audit::RefusalLimiter limiter;
    const audit::Event event;
    const std::string client;
    const std::string source;
  };

  Bucket& BucketFor(std::string_view kind, std::string_view client, std::string_view source);
  std::string NotRecorded(std::uint64_t dropped) const;

  const AuditConfig config_;
  audit::AuditLog* const log_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<Bucket>> buckets_ QSEAL_GUARDED_BY(mu_);
};

}  // namespace qseal::daemon
