// Named crash points for the reliability suite (tests/reliability): a test sets
// QSEAL_CRASH_AT=<point>[:<nth>] in qseald's environment and the process abort()s the nth time
// (default: the first) execution passes QSEAL_CRASH_POINT("<point>"), after printing
// `qseal crash point <point> reached` to stderr. The variable is read once, at first use.
//
// Points in the tree (docs/reliability.md lists them with their tests):
//   queue.synced_before_ack      queue/  an enqueue batch is synced, the callers not yet told
//   api.acked                    ingest/ the 202 has been handed to the connection
//   hsm.before_sign              hsm/    just before C_Sign
//   hsm.signed_before_verify     hsm/    C_Sign returned, the signature not yet verified
//   watch.written_before_rename  publish/ an outbox temp file is written and synced, not renamed
//   watch.renamed_before_commit  publish/ the seal and original are in outbox/, queue not committed
//
// Cost when QSEAL_CRASH_AT is unset: one relaxed load of a bool and a predictable branch.
// Thread-safe.
#pragma once

#include <atomic>

namespace qseal::detail {

// -1 not read yet, 0 unset, 1 set.
extern std::atomic<int> crash_point_state;
void CrashPointSlow(const char* name);

}  // namespace qseal::detail

#define QSEAL_CRASH_POINT(name)                                                               \
  do {                                                                                        \
    if (::qseal::detail::crash_point_state.load(std::memory_order_relaxed) != 0) [[unlikely]] \
      ::qseal::detail::CrashPointSlow(name);                                                  \
  } while (false)
