// The reliability suite's ledger and checker: what the load generator was told, and an
// independent check of what qseald produced. The checker never trusts qseald's bookkeeping:
// it fetches every seal (API over HTTP, watched folders from outbox/), verifies it with
// `openssl cms -verify -binary` (no -purpose any) against the test CA and the ledger's own copy
// of the original bytes, and reads the signed attributes itself (libcrypto).
//
// Usage (see tests/reliability/crash_test.cc):
//
//   Ledger ledger(tmp.Sub("ledger"));
//   RunWindow window = RunWindow::StartNow();
//   LoadGenerator load(ledger, {...});   // or record submissions yourself:
//   ledger.Accepted({Via::kApi, id, name, ledger.Keep(bytes)});
//   ledger.TimedOut(Via::kApi, name);     // no answer: zero or one seal allowed
//   ledger.Rejected(Via::kApi, name, 503);
//   ...
//   RunOutputs out{qseald.api(), qseald.token(), {qseald.watch_root()}, qseald.ca_pem()};
//   ASSERT_TRUE(WaitUntilSettled(ledger, out, std::chrono::seconds(120)).ok());
//   window.Close();
//   CheckReport report = CheckRun(ledger, out, qseald.ca_pem(), window);
//   EXPECT_TRUE(report.ok()) << report.ToString();
//   qseald.Stop();
//   EXPECT_TRUE(CheckQueue(ledger, qseald.var() + "/queue").ok());  // with qseald stopped
//
// What CheckRun asserts, for every accepted document: exactly one seal (API: status "sealed"
// and a fetchable seal; watch: outbox/<name> equal to the submitted bytes plus exactly one
// outbox/<name>.p7s or .p7m); openssl verifies it with the original content; one SignerInfo
// whose message-digest equals the digest of the original and whose signing-time lies within the
// signer certificate's validity and within the run's wall-clock window. Timed-out submissions
// may have zero or one seal; nothing else may be sealed (no unexpected outbox/ or failed/ files,
// no leftover temp files; CheckQueue: the queue's sealed count is at most accepted + timed-out).
// Test-only code.
#pragma once

#include <chrono>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"

namespace qseal::reliability {

enum class Via { kApi, kWatch };

struct Submission {
  Via via = Via::kApi;
  std::string id;        // API: the id qseald answered with; watch: the file name in inbox/
  std::string name;      // X-Filename (API) or the inbox name (watch)
  std::string original;  // path of the ledger's own copy of the submitted bytes (Ledger::Keep)
  // When the submission started (API: before the request was sent). Default: epoch.
  std::chrono::steady_clock::time_point sent{};
};

// What the load generator was told. Thread-safe.
class Ledger {
 public:
  // Keeps copies of submitted documents under `dir` (created).
  explicit Ledger(std::string dir);

  // Stores `bytes` as a new file under the ledger's dir and returns its path.
  std::string Keep(const std::string& bytes);

  void Accepted(Submission s);
  // The submission's outcome is unknown (connection lost, timeout): zero or one seal.
  void TimedOut(Via via, const std::string& name);
  // Refused with an HTTP status (or 0 when the watch drop itself failed): no seal.
  void Rejected(Via via, const std::string& name, int http_status);

  std::vector<Submission> accepted() const;
  std::size_t accepted_count() const;
  std::size_t timed_out_count() const;
  std::size_t rejected_count() const;
  // "accepted=… (api=…, watch=…) timed_out=… rejected=…{503: n, …}".
  std::string Summary() const;
  const std::string& dir() const { return dir_; }

 private:
  const std::string dir_;
  mutable Mutex mu_;
  std::size_t next_file_ QSEAL_GUARDED_BY(mu_) = 0;
  std::vector<Submission> accepted_ QSEAL_GUARDED_BY(mu_);
  std::size_t timed_out_ QSEAL_GUARDED_BY(mu_) = 0;
  std::vector<int> rejected_ QSEAL_GUARDED_BY(mu_);
};

// Where the outputs are. `api`/`token` reach the (running) qseald that holds the API results.
struct RunOutputs {
  std::string api;    // URL (https://host:port)
  std::string token;  // bearer token
  std::vector<std::string> watch_roots;
  std::string ca_file;  // the API's trust anchor (PEM) for https
};

// The run's wall-clock window; signing times must lie inside it (with one second of slack for
// the seconds resolution of UTCTime).
struct RunWindow {
  std::chrono::system_clock::time_point begin;
  std::chrono::system_clock::time_point end;
  static RunWindow StartNow();
  void Close();  // end = now
};

struct CheckReport {
  std::vector<std::string> problems;  // empty: the run kept every promise
  std::size_t seals_verified = 0;
  bool ok() const { return problems.empty(); }
  // The first problems (up to 20) and the counts, for a failure message.
  std::string ToString() const;
};

struct CheckOptions {
  // Names (watch) or ids (API) of accepted documents that may end failed instead of sealed
  // (e.g. a scenario that expects a permanent error). Default: none.
  std::set<std::string> may_fail;
  // Parallel openssl processes. Default: 2.
  int parallelism = 2;
  // Run `openssl cms -verify` on every n-th seal only; the others still get the libcrypto
  // checks (message-digest, signing-time, certificate validity). For long soaks. Default: 1.
  std::size_t openssl_every = 1;
};

// Polls until every accepted API document is final (sealed|failed) and every watch root has
// empty inbox/ and processing/ and a seal or failure for every accepted name. kDeadlineExceeded
// with what is still missing after `timeout`.
Status WaitUntilSettled(const Ledger& ledger, const RunOutputs& outputs,
                        std::chrono::seconds timeout);

CheckReport CheckRun(const Ledger& ledger, const RunOutputs& outputs, const std::string& ca_pem,
                     const RunWindow& window, const CheckOptions& options = {});

// With qseald stopped: opens its queue directory and compares the queue's own counts with the
// ledger, as bounds only: sealed <= accepted + timed out (nothing sealed that nobody submitted),
// sealed + failed >= accepted, nothing left queued or leased.
CheckReport CheckQueue(const Ledger& ledger, const std::string& queue_path);

// Checks one seal file against its original: openssl cms -verify, message-digest, signing-time
// (certificate validity and `window`). "" when it holds, else what is wrong.
std::string CheckSeal(const std::string& seal_path, const std::string& original_path,
                      const std::string& ca_pem, const RunWindow& window, bool enveloping,
                      bool with_openssl = true);

// The seed of a scenario: $QSEAL_SEED when set, else a fresh one. Print it in every failure.
std::uint64_t SeedFromEnv();

}  // namespace qseal::reliability
