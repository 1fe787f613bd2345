// SeriesIndex: finds the series (a prometheus::Counter, an AtomicHistogram) of one label
// combination without a lock on the hot path.
//
// Readers load an immutable open-addressing table through one atomic pointer and probe it; the
// first call for a new combination takes the mutex, copies the table with the new entry and
// publishes the copy. Old tables are kept until the index dies, so a reader never sees freed
// memory; label sets are bounded, so the copies are few and small. Past kMaxSeries combinations
// further ones are folded into one series whose labels are all "other", so a caller passing
// unbounded values cannot grow memory without limit.
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/mutex.h"

namespace qseal::metrics::detail {

inline constexpr std::size_t kMaxSeries = 512;
inline constexpr std::string_view kOverflowValue = "other";

template <typename T, std::size_t N>
class SeriesIndex {
 public:
  using Key = std::array<std::string_view, N>;
  using Values = std::array<std::string, N>;
  // Called under the index mutex with the label values of a new combination; returns the series,
  // owned elsewhere and alive as long as the index.
  using Create = std::function<T*(const Values&)>;

  explicit SeriesIndex(Create create) : create_(std::move(create)) {}
  SeriesIndex(const SeriesIndex&) = delete;
  SeriesIndex& operator=(const SeriesIndex&) = delete;

  T* Get(const Key& key) {
    const std::size_t hash = Hash(key);
    if (T* found = Find(current_.load(std::memory_order_acquire), key, hash)) return found;
    return Insert(key, hash);
  }

  std::size_t size() const {
    const Table* t = current_.load(std::memory_order_acquire);
    return t == nullptr ? 0 : t->used;
  }

 private:
  struct Entry {
    std::size_t hash = 0;
    Values labels;
    T* value = nullptr;
  };
  struct Table {
    std::vector<Entry> slots;  // size is a power of two, at most half full
    std::size_t used = 0;
  };

  static std::size_t Hash(const Key& key) {
    std::size_t h = 0x9e3779b97f4a7c15ull;
    for (std::string_view part : key) {
      h ^= std::hash<std::string_view>{}(part) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    }
    return h;
  }

  static bool Equal(const Values& values, const Key& key) {
    for (std::size_t i = 0; i < N; ++i) {
      if (values[i] != key[i]) return false;
    }
    return true;
  }

  static T* Find(const Table* table, const Key& key, std::size_t hash) {
    if (table == nullptr) return nullptr;
    const std::size_t mask = table->slots.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const Entry& e = table->slots[i];
      if (e.value == nullptr) return nullptr;
      if (e.hash == hash && Equal(e.labels, key)) return e.value;
    }
  }

  static void Place(Table& table, Entry entry) {
    const std::size_t mask = table.slots.size() - 1;
    std::size_t i = entry.hash & mask;
    while (table.slots[i].value != nullptr) i = (i + 1) & mask;
    table.slots[i] = std::move(entry);
    ++table.used;
  }

  T* Insert(Key key, std::size_t hash) {
    MutexLock lock(mu_);
    const Table* old = current_.load(std::memory_order_acquire);
    if (T* found = Find(old, key, hash)) return found;
    if (old != nullptr && old->used >= kMaxSeries) {
      key.fill(kOverflowValue);
      hash = Hash(key);
      if (T* found = Find(old, key, hash)) return found;
    }
    Entry entry;
    entry.hash = hash;
    for (std::size_t i = 0; i < N; ++i) entry.labels[i] = std::string(key[i]);
    entry.value = create_(entry.labels);
    T* value = entry.value;

    const std::size_t needed = (old == nullptr ? 0 : old->used) + 1;
    std::size_t capacity = 8;
    while (capacity < 2 * needed) capacity *= 2;
    auto table = std::make_unique<Table>();
    table->slots.resize(capacity);
    if (old != nullptr) {
      for (const Entry& e : old->slots) {
        if (e.value != nullptr) Place(*table, e);
      }
    }
    Place(*table, std::move(entry));
    current_.store(table.get(), std::memory_order_release);
    tables_.push_back(std::move(table));
    return value;
  }

  Create create_;
  Mutex mu_;
  std::atomic<const Table*> current_{nullptr};
  std::vector<std::unique_ptr<Table>> tables_ QSEAL_GUARDED_BY(mu_);
};

}  // namespace qseal::metrics::detail
