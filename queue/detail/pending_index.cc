#include "queue/detail/pending_index.h"

#include <algorithm>
#include <functional>

namespace qseal::queue::detail {
namespace {

constexpr std::size_t kMinBuckets = 64;
// Heaps are rebuilt when their stale entries exceed the live ones by this slack (amortised O(1)).
constexpr std::size_t kHeapSlack = 1024;

std::uint64_t LoadBigEndian64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

template <typename T>
void HeapPush(std::vector<T>& heap, T value) {
  heap.push_back(std::move(value));
  std::push_heap(heap.begin(), heap.end(), std::greater<>{});
}

template <typename T>
void HeapPop(std::vector<T>& heap) {
  std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
  heap.pop_back();
}

}  // namespace

std::size_t PendingIndex::Home(const DocumentId& id) const {
  // Big-endian halves put the per-millisecond counter in the low bits of `lo`; the splitmix64
  // finaliser then spreads every input bit over the bits the mask keeps.
  std::uint64_t x =
      LoadBigEndian64(id.data()) * 0x9E3779B97F4A7C15ULL ^ LoadBigEndian64(id.data() + 8);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return static_cast<std::size_t>(x) & (buckets_.size() - 1);
}

std::size_t PendingIndex::Probe(const DocumentId& id) const {
  std::size_t mask = buckets_.size() - 1;
  for (std::size_t b = Home(id);; b = (b + 1) & mask) {
    std::uint32_t s = buckets_[b];
    if (s == kEmpty || slots_[s].id == id) return b;
  }
}

const PendingSlot* PendingIndex::Find(const DocumentId& id) const {
  if (buckets_.empty()) return nullptr;
  std::uint32_t s = buckets_[Probe(id)];
  return s == kEmpty ? nullptr : &slots_[s];
}

PendingSlot* PendingIndex::Mutable(const DocumentId& id) {
  return const_cast<PendingSlot*>(Find(id));
}

void PendingIndex::Rehash(std::size_t buckets) {
  buckets_.assign(buckets, kEmpty);
  buckets_.shrink_to_fit();
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    buckets_[Probe(slots_[s].id)] = static_cast<std::uint32_t>(s);
  }
}

void PendingIndex::Add(const DocumentId& id, std::uint64_t size, SysTime created_at) {
  if ((slots_.size() + 1) * 4 > buckets_.size() * 3) {
    Rehash(std::max(kMinBuckets, buckets_.size() * 2));
  }
  std::size_t b = Probe(id);
  if (buckets_[b] != kEmpty) return;  // already present: the caller's bug, keep the first
  buckets_[b] = static_cast<std::uint32_t>(slots_.size());
  PendingSlot slot;
  slot.id = id;
  slot.size = size;
  slot.created_at = created_at;
  slots_.push_back(slot);
  ++counts_[static_cast<std::size_t>(Where::kHeld)];
}

void PendingIndex::Move(PendingSlot& slot, Where where) {
  --counts_[static_cast<std::size_t>(slot.where)];
  ++counts_[static_cast<std::size_t>(where)];
  slot.where = where;
}

bool PendingIndex::SetReady(const DocumentId& id) {
  PendingSlot* slot = Mutable(id);
  if (slot == nullptr) return false;
  Move(*slot, Where::kReady);
  HeapPush(ready_, id);
  CompactHeaps();
  return true;
}

bool PendingIndex::SetDelayed(const DocumentId& id, SteadyTime not_before) {
  PendingSlot* slot = Mutable(id);
  if (slot == nullptr) return false;
  Move(*slot, Where::kDelayed);
  slot->due = not_before;
  HeapPush(delayed_, Timed(not_before, id));
  CompactHeaps();
  return true;
}

bool PendingIndex::SetLeased(const DocumentId& id, SteadyTime deadline) {
  PendingSlot* slot = Mutable(id);
  if (slot == nullptr) return false;
  Move(*slot, Where::kLeased);
  slot->due = deadline;
  HeapPush(leases_, Timed(deadline, id));
  CompactHeaps();
  return true;
}

bool PendingIndex::Erase(const DocumentId& id) {
  if (buckets_.empty()) return false;
  std::size_t mask = buckets_.size() - 1;
  std::size_t hole = Probe(id);
  std::uint32_t s = buckets_[hole];
  if (s == kEmpty) return false;
  --counts_[static_cast<std::size_t>(slots_[s].where)];
  // Backward-shift deletion keeps every probe chain unbroken without tombstones.
  buckets_[hole] = kEmpty;
  for (std::size_t j = (hole + 1) & mask; buckets_[j] != kEmpty; j = (j + 1) & mask) {
    std::size_t home = Home(slots_[buckets_[j]].id);
    // Entry j may move into the hole unless its home lies cyclically in (hole, j].
    bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      buckets_[hole] = buckets_[j];
      buckets_[j] = kEmpty;
      hole = j;
    }
  }
  // Keep the slots dense: the last slot takes the freed place.
  std::uint32_t last = static_cast<std::uint32_t>(slots_.size() - 1);
  if (s != last) {
    slots_[s] = slots_[last];
    for (std::size_t b = Home(slots_[s].id);; b = (b + 1) & mask) {
      if (buckets_[b] == last) {
        buckets_[b] = s;
        break;
      }
    }
  }
  slots_.pop_back();
  // Give memory back after a large backlog drained.
  if (slots_.capacity() > 4096 && slots_.size() < slots_.capacity() / 4) {
    slots_.shrink_to_fit();
    std::size_t want = kMinBuckets;
    while ((slots_.size() + 1) * 2 > want) want *= 2;
    if (want < buckets_.size() / 2) Rehash(want);
  }
  CompactHeaps();
  return true;
}

const PendingSlot* PendingIndex::FrontReady() {
  while (!ready_.empty()) {
    const PendingSlot* slot = Find(ready_.front());
    if (slot != nullptr && slot->where == Where::kReady) return slot;
    HeapPop(ready_);
  }
  return nullptr;
}

std::optional<DocumentId> PendingIndex::NextExpiredLease(SteadyTime now) {
  while (!leases_.empty() && leases_.front().first <= now) {
    Timed top = leases_.front();
    HeapPop(leases_);
    const PendingSlot* slot = Find(top.second);
    if (slot != nullptr && slot->where == Where::kLeased && slot->due == top.first) {
      return top.second;
    }
  }
  return std::nullopt;
}

std::size_t PendingIndex::PromoteDue(SteadyTime now) {
  std::size_t promoted = 0;
  while (!delayed_.empty() && delayed_.front().first <= now) {
    Timed top = delayed_.front();
    HeapPop(delayed_);
    PendingSlot* slot = Mutable(top.second);
    if (slot != nullptr && slot->where == Where::kDelayed && slot->due == top.first) {
      Move(*slot, Where::kReady);
      HeapPush(ready_, top.second);
      ++promoted;
    }
  }
  return promoted;
}

std::optional<PendingIndex::SysTime> PendingIndex::OldestQueuedCreatedAt() {
  std::optional<SysTime> oldest;
  if (const PendingSlot* front = FrontReady()) oldest = front->created_at;
  for (const Timed& d : delayed_) {
    const PendingSlot* slot = Find(d.second);
    if (slot == nullptr || slot->where != Where::kDelayed) continue;
    if (!oldest || slot->created_at < *oldest) oldest = slot->created_at;
  }
  return oldest;
}

void PendingIndex::CompactHeaps() {
  auto compact = [&](auto& heap, std::size_t live, auto&& valid) {
    if (heap.size() > 2 * live + kHeapSlack) {
      std::erase_if(heap, [&](const auto& e) { return !valid(e); });
      std::make_heap(heap.begin(), heap.end(), std::greater<>{});
    }
    // Give memory back after a large backlog drained (amortised: the capacity halves at least).
    if (heap.capacity() > 4 * heap.size() + kHeapSlack) heap.shrink_to_fit();
  };
  compact(ready_, count(Where::kReady), [&](const DocumentId& id) {
    const PendingSlot* slot = Find(id);
    return slot != nullptr && slot->where == Where::kReady;
  });
  auto timed_valid = [&](Where where) {
    return [this, where](const Timed& t) {
      const PendingSlot* slot = Find(t.second);
      return slot != nullptr && slot->where == where && slot->due == t.first;
    };
  };
  compact(delayed_, count(Where::kDelayed), timed_valid(Where::kDelayed));
  compact(leases_, count(Where::kLeased), timed_valid(Where::kLeased));
}

std::size_t PendingIndex::MemoryBytes() const {
  return slots_.capacity() * sizeof(PendingSlot) + buckets_.capacity() * sizeof(std::uint32_t) +
         ready_.capacity() * sizeof(DocumentId) +
         (delayed_.capacity() + leases_.capacity()) * sizeof(Timed);
}

}  // namespace qseal::queue::detail
