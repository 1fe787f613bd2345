// The queue's in-memory scheduling index: one compact slot per pending (queued or leased)
// document, holding only what scheduling and admission need. The full record stays in RocksDB and
// is read when a document is leased, finalised or asked about (see docs/queue.md, "Memory").
//
// Layout, for about 70-100 bytes per pending document and no heap allocation per document:
//  - slots in one dense vector (48 bytes each), found by id through an open-addressing table of
//    32-bit slot numbers (linear probing, load factor at most 3/4);
//  - three binary heaps in vectors: ready ids (smallest id first, i.e. FIFO), delayed documents by
//    not_before, leased documents by lease deadline. A heap entry is checked against its slot when
//    it reaches the top and dropped if stale (the document moved on since), so a move never has to
//    search a heap; heaps are rebuilt without their stale entries when those outnumber the live
//    ones.
//
// Thread-compatible; the queue guards it with its state mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "queue/queue.h"

namespace qseal::queue::detail {

// Where a pending document is in its life. All but kLeased count as queued.
enum class Where : std::uint8_t {
  kHeld = 0,     // queued, but its enqueue batch is not written yet: not leasable
  kReady = 1,    // queued and leasable now
  kDelayed = 2,  // queued, waiting for its back-off (`due` = not_before)
  kLeased = 3,   // leased (`due` = lease deadline)
};

struct PendingSlot {
  DocumentId id;
  std::uint64_t size = 0;                            // document bytes
  std::chrono::system_clock::time_point created_at;  // for the oldest-queued age
  std::chrono::steady_clock::time_point due;         // kDelayed: not before; kLeased: deadline
  Where where = Where::kHeld;
};

class PendingIndex {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using SysTime = std::chrono::system_clock::time_point;

  std::size_t size() const { return slots_.size(); }
  std::size_t count(Where where) const { return counts_[static_cast<std::size_t>(where)]; }

  // The slot of `id`, or nullptr. Valid until the next non-const call.
  const PendingSlot* Find(const DocumentId& id) const;

  // Adds `id` (which must be absent) as kHeld.
  void Add(const DocumentId& id, std::uint64_t size, SysTime created_at);
  // Moves a present `id`; each returns false (and changes nothing) when `id` is absent.
  bool SetReady(const DocumentId& id);
  bool SetDelayed(const DocumentId& id, SteadyTime not_before);
  bool SetLeased(const DocumentId& id, SteadyTime deadline);
  // Removes `id` (the document became final). False when absent.
  bool Erase(const DocumentId& id);

  // The ready document with the smallest id (the oldest), or nullptr when none is ready.
  const PendingSlot* FrontReady();
  // A leased document whose deadline is at or before `now`, earliest first; nullopt if none.
  // Its slot stays kLeased: the caller moves it on.
  std::optional<DocumentId> NextExpiredLease(SteadyTime now);
  // Makes every delayed document whose not_before is at or before `now` ready; returns how many.
  std::size_t PromoteDue(SteadyTime now);
  // The earliest created_at among ready and delayed documents (O(delayed)); nullopt if none.
  std::optional<SysTime> OldestQueuedCreatedAt();

  template <typename F>
  void ForEach(F&& f) const {
    for (const PendingSlot& slot : slots_) f(slot);
  }

  // Bytes reserved by the index (capacities, not sizes): what it adds to RSS at most.
  std::size_t MemoryBytes() const;

 private:
  using Timed = std::pair<SteadyTime, DocumentId>;
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFU;

  std::size_t Home(const DocumentId& id) const;
  // The bucket holding `id`, or the empty bucket where it would go.
  std::size_t Probe(const DocumentId& id) const;
  PendingSlot* Mutable(const DocumentId& id);
  void Move(PendingSlot& slot, Where where);
  void Rehash(std::size_t buckets);
  void CompactHeaps();

  std::vector<PendingSlot> slots_;
  std::vector<std::uint32_t> buckets_;  // slot numbers; size a power of two (or zero)
  std::size_t counts_[4] = {0, 0, 0, 0};
  std::vector<DocumentId> ready_;  // min-heap
  std::vector<Timed> delayed_;     // min-heap
  std::vector<Timed> leases_;      // min-heap
};

}  // namespace qseal::queue::detail
