// The public Queue: every method forwards to Queue::Impl (queue/detail/queue_impl.h).
#include "queue/queue.h"

#include <memory>
#include <utility>
#include <vector>

#include "queue/detail/open_with_env.h"
#include "queue/detail/queue_impl.h"

namespace qseal::queue {

Queue::Queue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Queue::~Queue() = default;

Result<std::unique_ptr<Queue>> Queue::Open(QueueOptions options, Clock& clock) {
  return detail::OpenWithEnv(std::move(options), clock, nullptr);
}

Result<std::unique_ptr<Queue>> detail::OpenWithEnv(QueueOptions options, Clock& clock,
                                                   rocksdb::Env* env) {
  QSEAL_ASSIGN_OR_RETURN(auto impl, Queue::Impl::Open(std::move(options), clock, env));
  return std::make_unique<Queue>(std::move(impl));
}

Result<EnqueueResult> Queue::Enqueue(const NewDocument& d, ByteSpan c) {
  return impl_->Enqueue(d, c);
}
Result<std::unique_ptr<PendingDocument>> Queue::Begin(const NewDocument& d) {
  return impl_->Begin(d);
}
Result<EnqueueResult> Queue::Commit(std::unique_ptr<PendingDocument> p) {
  return impl_->Commit(std::move(p));
}
std::vector<Result<EnqueueResult>> Queue::CommitMany(
    std::vector<std::unique_ptr<PendingDocument>> p) {
  return impl_->CommitMany(std::move(p));
}
Status Queue::Admit() const { return impl_->Admit(); }
Result<std::vector<Record>> Queue::Lease(std::size_t max_count, std::uint64_t max_bytes,
                                         std::chrono::milliseconds lease_duration) {
  return impl_->Lease(max_count, max_bytes, lease_duration);
}
bool Queue::WaitForWork(std::chrono::milliseconds max_wait) { return impl_->WaitForWork(max_wait); }
Result<std::unique_ptr<PayloadReader>> Queue::OpenPayload(const DocumentId& id) const {
  return impl_->OpenPayload(id);
}
Result<std::unique_ptr<PendingSeal>> Queue::BeginSeal(const DocumentId& id) {
  return impl_->BeginSeal(id);
}
Status Queue::FinishSeal(PendingSeal& seal) { return impl_->FinishSeal(seal); }
Status Queue::Complete(std::vector<Completion> c) { return impl_->Complete(std::move(c)); }
Status Queue::Fail(std::vector<Failure> f) { return impl_->Fail(std::move(f)); }
Result<Record> Queue::Get(const DocumentId& id) const { return impl_->Get(id); }
Result<Bytes> Queue::GetSeal(const DocumentId& id) const { return impl_->GetSeal(id); }
Result<std::unique_ptr<PayloadReader>> Queue::OpenSeal(const DocumentId& id) const {
  return impl_->OpenSeal(id);
}
Result<std::uint64_t> Queue::SweepRetention() { return impl_->SweepRetention(); }
QueueStats Queue::Stats() const { return impl_->Stats(); }
Status Queue::Health() const { return impl_->Health(); }
Status Queue::Close() { return impl_->Close(); }

}  // namespace qseal::queue
