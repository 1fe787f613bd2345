#include "daemon/refusal_audit.h"

#include <utility>

namespace qseal::daemon {

RefusalAudit::Bucket& RefusalAudit::BucketFor(std::string_view kind, std::string_view client,
                                              std::string_view source) {
  const audit::Event event =
      kind == "auth_denied" ? audit::Event::kAuthDenied : audit::Event::kRejected;
  std::string key = std::string(kind) + (client.empty() ? " source " : " client ") +
                    std::string(client.empty() ? source : client);
  MutexLock lock(mu_);
  auto it = buckets_.find(key);
  if (it != buckets_.end()) return *it->second;
  if (buckets_.size() >= kMaxBuckets) {
    key = std::string(kind) + " overflow";
    auto overflow = buckets_.find(key);
    if (overflow != buckets_.end()) return *overflow->second;
    client = source = "";
  }
  auto bucket = std::make_unique<Bucket>(config_, event, std::string(client),
                                         client.empty() ? std::string(source) : "");
  return *buckets_.emplace(key, std::move(bucket)).first->second;
}

void RefusalAudit::Record(std::string_view kind, std::string_view client, std::string_view profile,
                          std::string_view reason, std::string_view source) {
  Bucket& bucket = BucketFor(kind, client, source);
  std::uint64_t dropped = 0;
  if (!bucket.limiter.Admit(&dropped)) return;
  audit::Entry e = audit::EventEntry(bucket.event);
  e.client = std::string(client);
  e.profile = std::string(profile);
  e.detail = std::string(reason);
  e.source = std::string(source);
  if (dropped > 0) e.detail += "; before it, " + NotRecorded(dropped);
  log_->AppendAsync({std::move(e)}, nullptr);
}

void RefusalAudit::AddSummaries(std::vector<audit::Entry>* entries) {
  std::vector<Bucket*> buckets;
  {
    MutexLock lock(mu_);
    for (auto& [key, bucket] : buckets_) buckets.push_back(bucket.get());
  }
  for (Bucket* b : buckets) {
    const std::uint64_t dropped = b->limiter.TakeSuppressed();
    if (dropped == 0) continue;
    audit::Entry e = audit::EventEntry(b->event);
    e.client = b->client;
    e.source = b->source;
    e.detail = NotRecorded(dropped);
    entries->push_back(std::move(e));
  }
}

std::string RefusalAudit::NotRecorded(std::uint64_t dropped) const {
  return std::to_string(dropped) + " refusals of this kind not recorded one by one (more than " +
         std::to_string(config_.refusal_records_per_second) + "/s, burst " +
         std::to_string(config_.refusal_burst) + ")";
}

}  // namespace qseal::daemon
