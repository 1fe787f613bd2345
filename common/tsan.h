// Happens-before edges for ThreadSanitizer that pass through code it cannot see.
//
// TSan only knows the synchronisation done by instrumented code and intercepted calls. oneTBB's
// task queue (libtbb, not instrumented) orders "enqueue" before "the task runs", but TSan does not
// see that, so every plain write a task's creator made before enqueueing (its captured data)
// reports as a race with the task's reads. TsanRelease(key) before handing work over and
// TsanAcquire(key) where it is picked up restore the edge. The key must be an address unique to
// that hand-over while it is in flight (e.g. the task's own heap block). No-ops in other builds.
//
// Thread-safe.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define QSEAL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define QSEAL_TSAN 1
#endif
#endif

#if defined(QSEAL_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace qseal {

inline void TsanRelease([[maybe_unused]] const void* key) {
#if defined(QSEAL_TSAN)
  __tsan_release(const_cast<void*>(key));
#endif
}

inline void TsanAcquire([[maybe_unused]] const void* key) {
#if defined(QSEAL_TSAN)
  __tsan_acquire(const_cast<void*>(key));
#endif
}

}  // namespace qseal
