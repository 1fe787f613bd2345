// The regression guard of issue 21: after the scenario lines, one machine-readable line per
// performance target, so two commits' runs can be compared target by target,
//   e2e verdict target=NAME value=V goal=G unit=U met=yes|no|na note="..."
// A target whose scenario did not run (or whose baseline was not measured) prints met=na. The
// harness's exit code does not depend on verdicts: CI times nothing (docs: bench/RESULTS.md).
//
// Functions are thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "bench/e2e/options.h"
#include "bench/e2e/report.h"

namespace qseal::bench::e2e {

struct Verdict {
  std::string target;
  double value = -1;  // negative: not measured
  double goal = 0;
  bool at_most = false;  // the goal is an upper bound (CPU, seconds, MiB), else a lower one
  std::string unit;
  std::string note;
};

// The targets of issue 21 judged on `results` (raw = the raw C_Sign rate of the same run).
std::vector<Verdict> Verdicts(const Options& o, const std::vector<Figures>& results, double raw);

// The `e2e verdict ...` line of `v`.
std::string VerdictLine(const Verdict& v);

}  // namespace qseal::bench::e2e
