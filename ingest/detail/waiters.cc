#include "ingest/detail/waiters.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>

#include <boost/asio/post.hpp>

namespace qseal::ingest::detail {

std::optional<std::chrono::milliseconds> ParseWait(const std::map<std::string, std::string>& query,
                                                   std::chrono::milliseconds max_wait) {
  std::chrono::milliseconds wait{0};
  if (auto w = query.find("wait"); w != query.end()) {
    char* end = nullptr;
    double secs = std::strtod(w->second.c_str(), &end);
    if (end == w->second.c_str() || *end != '\0' || !(secs >= 0)) return std::nullopt;
    wait = secs * 1000 >= static_cast<double>(max_wait.count())
               ? max_wait
               : std::chrono::milliseconds(static_cast<std::int64_t>(secs * 1000));
  }
  return wait;
}

Waiters::Waiters(boost::asio::thread_pool& pool) : pool_(pool) {}

Waiters::~Waiters() { Stop(); }

void Waiters::Start() {
  expiry_thread_ = std::thread([this] { ExpiryLoop(); });
}

void Waiters::Stop() {
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    cv_.SignalAll();
  }
  if (expiry_thread_.joinable()) expiry_thread_.join();
  Expire(/*all=*/true);
}

void Waiters::WaitForOne(const queue::DocumentId& id,
                         std::chrono::steady_clock::time_point deadline, Answer answer,
                         const IsSettled& settled) {
  bool registered = false;
  {
    MutexLock lock(mu_);
    if (!stopped_) {
      waiters_.emplace(id, Waiter{deadline, std::move(answer)});
      cv_.SignalAll();
      registered = true;
    }
  }
  if (!registered) return answer();
  // It may have finished before the waiter was registered: look once now.
  if (settled(id)) Notify(id);
}

void Waiters::WaitForAll(std::vector<queue::DocumentId> ids,
                         std::chrono::steady_clock::time_point deadline, Answer answer,
                         const IsSettled& settled) {
  auto g = std::make_shared<GroupWaiter>();
  g->ids = std::move(ids);
  g->outstanding.insert(g->ids.begin(), g->ids.end());
  g->deadline = deadline;
  g->answer = std::move(answer);
  bool answer_now = false;
  {
    MutexLock lock(mu_);
    if (stopped_) {
      g->answered = true;
      answer_now = true;
    } else {
      groups_.insert(g);
      for (const auto& id : g->outstanding) group_index_.emplace(id, g);
      cv_.SignalAll();
    }
  }
  if (answer_now) return g->answer();
  // Registered first, looked at second: a document that finished in between is not missed.
  for (const auto& id : g->ids) {
    if (settled(id)) Settle(g, id);
  }
}

void Waiters::Notify(const queue::DocumentId& id) {
  std::vector<Waiter> ready;
  {
    MutexLock lock(mu_);
    auto range = waiters_.equal_range(id);
    for (auto it = range.first; it != range.second; ++it) ready.push_back(std::move(it->second));
    waiters_.erase(range.first, range.second);
  }
  for (auto& w : ready) w.answer();
  std::vector<std::shared_ptr<GroupWaiter>> groups;
  {
    MutexLock lock(mu_);
    auto range = group_index_.equal_range(id);
    for (auto it = range.first; it != range.second; ++it) groups.push_back(it->second);
  }
  for (auto& g : groups) Settle(g, id);
}

void Waiters::Settle(const std::shared_ptr<GroupWaiter>& g, const queue::DocumentId& id) {
  {
    MutexLock lock(mu_);
    if (g->answered || g->outstanding.erase(id) == 0 || !g->outstanding.empty()) return;
    UnregisterLocked(g);
  }
  boost::asio::post(pool_, g->answer);
}

void Waiters::UnregisterLocked(const std::shared_ptr<GroupWaiter>& g) {
  g->answered = true;
  groups_.erase(g);
  for (const auto& id : g->ids) {
    auto range = group_index_.equal_range(id);
    for (auto it = range.first; it != range.second;) {
      it = it->second == g ? group_index_.erase(it) : std::next(it);
    }
  }
}

void Waiters::ExpiryLoop() {
  MutexLock lock(mu_);
  while (!stopped_) {
    auto next = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    for (const auto& [id, w] : waiters_) next = std::min(next, w.deadline);
    for (const auto& g : groups_) next = std::min(next, g->deadline);
    cv_.WaitUntil(mu_, next);
    if (stopped_) break;
    mu_.Unlock();
    Expire(false);
    mu_.Lock();
  }
}

void Waiters::Expire(bool all) {
  std::vector<Waiter> expired;
  std::vector<std::shared_ptr<GroupWaiter>> expired_groups;
  {
    MutexLock lock(mu_);
    auto now = std::chrono::steady_clock::now();
    for (auto it = groups_.begin(); it != groups_.end();) {
      auto g = *it++;
      if (all || g->deadline <= now) {
        UnregisterLocked(g);
        expired_groups.push_back(std::move(g));
      }
    }
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (all || it->second.deadline <= now) {
        expired.push_back(std::move(it->second));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : expired) w.answer();
  for (auto& g : expired_groups) boost::asio::post(pool_, g->answer);
}

}  // namespace qseal::ingest::detail
