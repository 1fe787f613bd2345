// The reliability suite's load generator: documents of seeded pseudo-random content and size
// through the HTTP API (several client threads) and dropped into a watched folder (write under
// a dot-name, rename into inbox/), everything it is told recorded in a Ledger (checker.h).
//
// API answers: 202 with an id -> Ledger::Accepted; 4xx -> Rejected(status); 5xx or no answer
// (connection refused or lost, timeout) -> TimedOut: the outcome is unknown (a 503 after a failed
// sync may still leave a record that a restart recovers). A watch drop is accepted once
// its rename into inbox/ succeeded (the folder is the operator's own, DESIGN.md §5).
//
// Thread-safe; Start once, Stop (or destroy) once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "tests/reliability/checker.h"

namespace qseal::reliability {

struct LoadOptions {
  std::string api;         // URL (https://host:port); "" pauses the API threads (see SetApi)
  std::string token;       // bearer token
  std::string ca_file;     // the API's trust anchor (PEM) for https
  std::string watch_root;  // "" for no watched-folder load
  std::string profile = "default";
  int api_threads = 4;                    // Default: 4
  std::size_t max_api_documents = 300;    // then the API threads stop; 0: until Stop. Default: 300
  std::size_t max_watch_documents = 100;  // the same for drops. Default: 100
  std::size_t min_bytes = 0;              // sizes uniform in [min, max]. Default: 0 .. 16 KiB
  std::size_t max_bytes = 16 << 10;
  double api_per_second = 0;    // total API rate; 0: as fast as answers come. Default: 0
  double watch_per_second = 0;  // drops per second; 0: as fast as possible. Default: 0
  std::chrono::milliseconds timeout{15000};  // per request. Default: 15 s
  std::uint64_t seed = 1;
};

class LoadGenerator {
 public:
  LoadGenerator(Ledger& ledger, LoadOptions options);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  void Start();
  // Stops and joins every thread (in-flight requests finish or time out first).
  void Stop();
  // Points the API threads at another address (after a restart); "" pauses them.
  void SetApi(const std::string& api);
  // Blocks until the generator has finished (max_* reached) or `timeout`; true when finished.
  bool WaitUntilDone(std::chrono::milliseconds timeout);
  // Submissions attempted so far (API + watch).
  std::size_t submitted() const { return api_sent_.load() + watch_sent_.load(); }

  // Deterministic content of document `index` for `seed`.
  static std::string Content(std::uint64_t seed, std::uint64_t index, std::size_t size);

 private:
  void ApiLoop(int thread);
  void WatchLoop();
  std::string Api() const;

  Ledger& ledger_;
  const LoadOptions options_;
  mutable Mutex mu_;
  std::string api_ QSEAL_GUARDED_BY(mu_);
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> api_next_{0};
  std::atomic<std::size_t> api_sent_{0};
  std::atomic<std::size_t> watch_sent_{0};
  std::atomic<int> running_{0};
  std::vector<std::thread> threads_;
};

}  // namespace qseal::reliability
