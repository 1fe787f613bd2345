// An annotated mutex, so clang's -Wthread-safety can check GUARDED_BY / REQUIRES contracts.
// On GCC the annotations compile to nothing and the types behave like std::mutex.
//
// Rule of the house: never hold a Mutex across an HSM call, a RocksDB write or an Asio post.
//
// Mutex, MutexLock and CondVar are thread-safe (that is their purpose).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define QSEAL_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define QSEAL_THREAD_ANNOTATION(x)
#endif

#define QSEAL_CAPABILITY(x) QSEAL_THREAD_ANNOTATION(capability(x))
#define QSEAL_SCOPED_CAPABILITY QSEAL_THREAD_ANNOTATION(scoped_lockable)
#define QSEAL_GUARDED_BY(x) QSEAL_THREAD_ANNOTATION(guarded_by(x))
#define QSEAL_PT_GUARDED_BY(x) QSEAL_THREAD_ANNOTATION(pt_guarded_by(x))
#define QSEAL_REQUIRES(...) QSEAL_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define QSEAL_EXCLUDES(...) QSEAL_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define QSEAL_ACQUIRE(...) QSEAL_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define QSEAL_RELEASE(...) QSEAL_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define QSEAL_TRY_ACQUIRE(...) QSEAL_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define QSEAL_NO_THREAD_SAFETY_ANALYSIS QSEAL_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace qseal {

class QSEAL_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() QSEAL_ACQUIRE() { mu_.lock(); }
  void Unlock() QSEAL_RELEASE() { mu_.unlock(); }
  bool TryLock() QSEAL_TRY_ACQUIRE(true) { return mu_.try_lock(); }

  // BasicLockable spelling, so std::condition_variable_any can wait on a Mutex.
  void lock() QSEAL_ACQUIRE() { mu_.lock(); }
  void unlock() QSEAL_RELEASE() { mu_.unlock(); }

 private:
  std::mutex mu_;
};

// Holds a Mutex for the enclosing scope.
class QSEAL_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) QSEAL_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() QSEAL_RELEASE() { mu_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// A condition variable that waits on a Mutex the caller already holds.
class CondVar {
 public:
  void Wait(Mutex& mu) QSEAL_REQUIRES(mu) { cv_.wait(mu); }

  // Returns false when the deadline passed without a notification (spurious wakeups return true;
  // callers re-check their predicate in a loop as always).
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex& mu, std::chrono::time_point<Clock, Duration> deadline) QSEAL_REQUIRES(mu) {
    return cv_.wait_until(mu, deadline) == std::cv_status::no_timeout;
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace qseal
