// Unit tests of the queue's compact scheduling index (queue/detail/pending_index.h), checked
// against plain std::map / std::set models.
#include "queue/detail/pending_index.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

namespace qseal::queue::detail {
namespace {

using namespace std::chrono_literals;
using SteadyTime = std::chrono::steady_clock::time_point;
using SysTime = std::chrono::system_clock::time_point;

DocumentId Id(std::uint64_t hi, std::uint64_t lo) {
  std::uint8_t b[DocumentId::kSize];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(hi >> (8 * (7 - i)));
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(lo >> (8 * (7 - i)));
  return DocumentId::FromBytes(ByteSpan(b, DocumentId::kSize));
}

SteadyTime At(std::chrono::seconds s) { return SteadyTime{} + s; }

TEST(PendingIndexTest, AgreesWithAMapUnderRandomOperations) {
  const auto seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  PendingIndex index;
  std::map<DocumentId, std::pair<std::uint64_t, Where>> model;
  std::vector<DocumentId> known;
  for (int step = 0; step < 200000; ++step) {
    std::uint64_t r = rng() % 10;
    if (r < 4 || known.empty()) {
      // Ids share millisecond prefixes and count up, as the queue's do.
      DocumentId id = Id(rng() % 64, rng() % 4096);
      if (model.count(id) != 0) continue;
      std::uint64_t size = rng() % 100000;
      index.Add(id, size, SysTime{});
      model[id] = {size, Where::kHeld};
      known.push_back(id);
      continue;
    }
    const DocumentId id = known[rng() % known.size()];
    bool present = model.count(id) != 0;
    switch (r) {
      case 4:
      case 5:
        EXPECT_EQ(index.Erase(id), present);
        model.erase(id);
        break;
      case 6:
        EXPECT_EQ(index.SetReady(id), present);
        if (present) model[id].second = Where::kReady;
        break;
      case 7:
        EXPECT_EQ(index.SetDelayed(id, At(1s)), present);
        if (present) model[id].second = Where::kDelayed;
        break;
      default:
        EXPECT_EQ(index.SetLeased(id, At(2s)), present);
        if (present) model[id].second = Where::kLeased;
        break;
    }
    if (step % 20000 == 0 || HasFailure()) {
      ASSERT_FALSE(HasFailure()) << "at step " << step;
      for (const DocumentId& k : known) {
        const PendingSlot* slot = index.Find(k);
        auto m = model.find(k);
        ASSERT_EQ(slot != nullptr, m != model.end()) << k.ToString();
        if (slot != nullptr) {
          EXPECT_EQ(slot->size, m->second.first);
          EXPECT_EQ(slot->where, m->second.second);
        }
      }
    }
  }
  ASSERT_EQ(index.size(), model.size());
  std::size_t counts[4] = {0, 0, 0, 0};
  for (const auto& [id, v] : model) ++counts[static_cast<std::size_t>(v.second)];
  for (Where w : {Where::kHeld, Where::kReady, Where::kDelayed, Where::kLeased}) {
    EXPECT_EQ(index.count(w), counts[static_cast<std::size_t>(w)]);
  }
  // The ready heap yields exactly the ready ids, smallest first, despite its stale entries.
  std::vector<DocumentId> want;
  for (const auto& [id, v] : model) {
    if (v.second == Where::kReady) want.push_back(id);
  }
  std::vector<DocumentId> got;
  while (const PendingSlot* front = index.FrontReady()) {
    got.push_back(front->id);
    index.SetLeased(front->id, At(3s));
  }
  EXPECT_EQ(got, want);
}

TEST(PendingIndexTest, ReadyOrderIsByIdNotByArrival) {
  PendingIndex index;
  std::vector<DocumentId> ids;
  for (std::uint64_t i = 0; i < 1000; ++i) ids.push_back(Id(i / 7, i));
  std::vector<DocumentId> shuffled = ids;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(7));
  for (const DocumentId& id : shuffled) {
    index.Add(id, 1, SysTime{});
    index.SetReady(id);
  }
  std::vector<DocumentId> got;
  while (const PendingSlot* front = index.FrontReady()) {
    got.push_back(front->id);
    index.Erase(front->id);
  }
  EXPECT_EQ(got, ids);
  EXPECT_EQ(index.size(), 0u);
}

TEST(PendingIndexTest, DelayedDocumentsBecomeReadyAtTheirLatestTimeOnly) {
  PendingIndex index;
  DocumentId a = Id(1, 1), b = Id(1, 2);
  index.Add(a, 1, SysTime{});
  index.Add(b, 1, SysTime{});
  index.SetDelayed(a, At(10s));
  index.SetDelayed(a, At(20s));  // delayed again: the 10 s entry is stale
  index.SetDelayed(b, At(15s));
  EXPECT_EQ(index.PromoteDue(At(9s)), 0u);
  EXPECT_EQ(index.PromoteDue(At(10s)), 0u);
  EXPECT_EQ(index.FrontReady(), nullptr);
  EXPECT_EQ(index.PromoteDue(At(15s)), 1u);
  ASSERT_NE(index.FrontReady(), nullptr);
  EXPECT_EQ(index.FrontReady()->id, b);
  EXPECT_EQ(index.PromoteDue(At(20s)), 1u);
  EXPECT_EQ(index.count(Where::kReady), 2u);
  EXPECT_EQ(index.FrontReady()->id, a);
}

TEST(PendingIndexTest, ExpiredLeasesComeEarliestFirstAndSkipFinishedOnes) {
  PendingIndex index;
  DocumentId a = Id(1, 1), b = Id(1, 2), c = Id(1, 3);
  for (const DocumentId& id : {a, b, c}) index.Add(id, 1, SysTime{});
  index.SetLeased(a, At(5s));
  index.SetLeased(b, At(3s));
  index.SetLeased(c, At(7s));
  index.Erase(b);              // completed: its heap entry is stale
  index.SetLeased(c, At(4s));  // re-leased earlier (a new lease): the 7 s entry is stale
  EXPECT_EQ(index.NextExpiredLease(At(2s)), std::nullopt);
  EXPECT_EQ(index.NextExpiredLease(At(6s)), c);
  EXPECT_EQ(index.NextExpiredLease(At(6s)), a);
  EXPECT_EQ(index.NextExpiredLease(At(100s)), std::nullopt);
}

TEST(PendingIndexTest, OldestQueuedCoversReadyAndDelayedButNotLeased) {
  PendingIndex index;
  SysTime t0 = SysTime{} + 1000s;
  DocumentId a = Id(1, 1), b = Id(1, 2), c = Id(1, 3);
  index.Add(a, 1, t0);
  index.Add(b, 1, t0 + 1s);
  index.Add(c, 1, t0 + 2s);
  EXPECT_EQ(index.OldestQueuedCreatedAt(), std::nullopt);  // held ones are not leasable yet
  index.SetLeased(a, At(1s));
  index.SetReady(c);
  index.SetDelayed(b, At(5s));
  EXPECT_EQ(index.OldestQueuedCreatedAt(), t0 + 1s);
  index.Erase(b);
  EXPECT_EQ(index.OldestQueuedCreatedAt(), t0 + 2s);
}

// Issue 8: a million queued documents must fit in well under 512 MiB; the index is the part that
// grows with them.
TEST(PendingIndexTest, AQueuedDocumentCostsAtMostAHundredBytes) {
  constexpr std::uint64_t kDocs = 200000;
  PendingIndex index;
  for (std::uint64_t i = 0; i < kDocs; ++i) {
    DocumentId id = Id(i / 1000, 0x1234567800ULL + i);
    index.Add(id, 2048, SysTime{});
    index.SetReady(id);
  }
  EXPECT_EQ(index.count(Where::kReady), kDocs);
  double per_doc = static_cast<double>(index.MemoryBytes()) / kDocs;
  EXPECT_LE(per_doc, 100.0);
  RecordProperty("bytes_per_document", std::to_string(per_doc));
  // Draining gives the memory back.
  while (const PendingSlot* front = index.FrontReady()) index.Erase(front->id);
  EXPECT_LT(index.MemoryBytes(), 1u << 20);
}

}  // namespace
}  // namespace qseal::queue::detail
