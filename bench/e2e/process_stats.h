// What the harness reads of processes: CPU seconds and peak RSS of qseald from /proc/PID, its own
// CPU (and its children's, the openssl loops) from getrusage, and an optional `perf record` of
// qseald per scenario (--perf-dir).
//
// The free functions are thread-safe; PerfRecord is not thread-safe, owned by the scenario that
// records.
#pragma once

#include <string>

#include "bench/e2e/options.h"
#include "bench/e2e/report.h"
#include "tests/testing/qseald_harness.h"
#include "tests/testing/testing.h"

namespace qseal::bench::e2e {

// utime+stime of `pid` in seconds (/proc/PID/stat); -1 when unreadable.
double ProcCpuSeconds(int pid);

// VmHWM of `pid` in MiB (/proc/PID/status); -1 when unreadable.
double ProcPeakRssMb(int pid);

// utime+stime in seconds of getrusage(`who`): RUSAGE_SELF or RUSAGE_CHILDREN (the children
// waited for).
double RusageCpu(int who);

// Sets fig->rss_mb to qseald's peak RSS and fig->cpu_s_per_1000 to the CPU it spent since
// `cpu0` (a ProcCpuSeconds of it) per 1 000 documents sealed (fig->docs - fig->failed).
void FillDaemonFigures(testing::Qseald& q, double cpu0, Figures* fig);

// `perf record -g` of process `pid` into o.perf_dir/SCENARIO.perf.data while the object lives,
// only when --perf-dir is given (otherwise it does nothing). A perf that does not start is said
// on stderr, not an error. The destructor stops it with SIGINT and waits up to 60 s.
class PerfRecord {
 public:
  PerfRecord(const Options& o, int pid, const std::string& scenario);
  ~PerfRecord();
  PerfRecord(const PerfRecord&) = delete;
  PerfRecord& operator=(const PerfRecord&) = delete;

 private:
  testing::ChildProcess child_;
};

}  // namespace qseal::bench::e2e
