// What one scenario measured (Figures) and how the harness reports it: progress lines on stderr
// ("[e2e] ..."), then one machine-readable line per scenario on stdout,
//   e2e scenario=NAME key=... corpus=... docs=... failed=... sessions=... docs_per_s=... ...
// which bench/e2e/run_results.sh, bench/RESULTS.md and the smoke test read: its keys, their order
// and their formatting are a contract.
//
// Functions are thread-safe (Say writes one line with one call); Figures is thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "bench/e2e/options.h"

namespace qseal::bench::e2e {

// One scenario's figures; negative values print as "na".
struct Figures {
  std::string scenario;
  int docs = 0;
  int failed = 0;
  double docs_per_s = -1;
  double p50_ms = -1;
  double p99_ms = -1;
  double rss_mb = -1;
  double cpu_s_per_1000 = -1;
  double ceiling_per_s = -1;          // shim only: sessions / latency
  double client_cpu_s_per_1000 = -1;  // api: the harness's own clients (same machine)
  double start_s = -1;                // backlog only: qseald's start on the backlog
  double arrival_per_s = -1;          // api_open only: the fixed arrival rate
  std::string sessions;
  std::string corpus;  // the format scenarios' own corpus (ubl, pdf); empty: --corpus
};

// `v` with `precision` decimals; "na" when negative or NaN (not measured).
std::string Fmt(double v, int precision = 1);

// A progress line "[e2e] s" on stderr, flushed.
void Say(const std::string& s);

// The `e2e scenario=...` line of `f`, with its ratios to the same run's baselines: `raw` (the raw
// C_Sign rate; replaced by the ceiling when f has one), `seq` and `xargs` (the openssl loops).
// A baseline that was not measured (negative) makes its ratio "na".
std::string Line(const Options& o, const Figures& f, double raw, double seq, double xargs);

// Prints Line() of every result on stdout, in order, then the verdict lines (verdicts.h). Returns
// the harness's exit code: 1 when a scenario other than the openssl baselines has a failed document
// or check, else 0.
int PrintReport(const Options& o, const std::vector<Figures>& results, double raw, double seq,
                double xargs);

}  // namespace qseal::bench::e2e
