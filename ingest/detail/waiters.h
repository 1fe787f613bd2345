// The requests that wait for documents to reach a final state (?wait=SECONDS): one document
// (POST /v1/documents) or many at once (POST /v1/batches, POST /v1/batches/status). Each waiting
// request is answered exactly once: when the engine reports its documents final (Notify), when
// its deadline passes (an expiry thread), or when the server stops.
//
// Waiters is thread-safe; Start and Stop are called by the server's owner, Notify by the engine's
// committer, the rest by request handlers.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "common/mutex.h"
#include "queue/queue.h"

namespace qseal::ingest::detail {

// ?wait=SECONDS from a parsed query, capped at `max_wait`; 0 without it; nullopt when it is not a
// non-negative number.
std::optional<std::chrono::milliseconds> ParseWait(const std::map<std::string, std::string>& query,
                                                   std::chrono::milliseconds max_wait);

class Waiters {
 public:
  using Answer = std::function<void()>;
  // Whether a document needs no waiting (final already, unknown, or not the caller's).
  using IsSettled = std::function<bool(const queue::DocumentId&)>;

  // Group answers are posted to `pool`, which must outlive this object.
  explicit Waiters(boost::asio::thread_pool& pool);
  ~Waiters();
  Waiters(const Waiters&) = delete;
  Waiters& operator=(const Waiters&) = delete;

  // Starts the thread that answers requests whose deadline passed.
  void Start();
  // Answers every waiting request now (single ones on the caller's thread, groups on the pool)
  // and joins the expiry thread; requests registered later are answered at once. Idempotent.
  void Stop();

  // Waits for one document: `answer` runs once, on the thread of the Notify for `id`, on the
  // expiry thread at `deadline`, or on the thread calling Stop. Registered first, then
  // `settled(id)` is asked once, so a document that finished just before is not missed. When
  // stopped, `answer` runs at once on the caller's thread.
  void WaitForOne(const queue::DocumentId& id, std::chrono::steady_clock::time_point deadline,
                  Answer answer, const IsSettled& settled);

  // Waits for many documents: `answer` is posted to the pool once, when every id was notified or
  // found settled, or when `deadline` passed. `settled` is asked for each id after registering.
  // When stopped, `answer` runs at once on the caller's thread.
  void WaitForAll(std::vector<queue::DocumentId> ids,
                  std::chrono::steady_clock::time_point deadline, Answer answer,
                  const IsSettled& settled);

  // `id` reached a final state: answers its single waiters and settles it in its groups.
  // Non-blocking apart from the answers of single waiters, which run on the caller's thread.
  void Notify(const queue::DocumentId& id);

 private:
  struct Waiter {
    std::chrono::steady_clock::time_point deadline;
    Answer answer;
  };
  // `ids`, `deadline` and `answer` are fixed before it is registered; `outstanding` and
  // `answered` are guarded by mu_.
  struct GroupWaiter {
    std::vector<queue::DocumentId> ids;
    std::set<queue::DocumentId> outstanding;
    std::chrono::steady_clock::time_point deadline;
    Answer answer;
    bool answered = false;
  };

  // `id` of group `g` needs no more waiting; the last one answers the group.
  void Settle(const std::shared_ptr<GroupWaiter>& g, const queue::DocumentId& id);
  void UnregisterLocked(const std::shared_ptr<GroupWaiter>& g) QSEAL_REQUIRES(mu_);
  void ExpiryLoop();
  void Expire(bool all);

  boost::asio::thread_pool& pool_;
  std::thread expiry_thread_;

  Mutex mu_;
  CondVar cv_;
  bool stopped_ QSEAL_GUARDED_BY(mu_) = false;
  std::multimap<queue::DocumentId, Waiter> waiters_ QSEAL_GUARDED_BY(mu_);
  std::set<std::shared_ptr<GroupWaiter>> groups_ QSEAL_GUARDED_BY(mu_);
  std::multimap<queue::DocumentId, std::shared_ptr<GroupWaiter>> group_index_ QSEAL_GUARDED_BY(mu_);
};

}  // namespace qseal::ingest::detail
